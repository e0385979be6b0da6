"""How a run's settings resolve: defaults < preset < flags, each value with its source."""

from __future__ import annotations

import dataclasses

import pytest

from data.errors import UserError
from models.config import TrainerConfig, TransformConfig
from pipeline import presets
from pipeline.eval_config import GateConfig


def test_the_sample_preset_sets_its_values_on_the_papers_defaults():
    resolved = presets.resolve("sample", {})
    trainer = resolved.settings.trainer
    assert (trainer.batch_size, trainer.learning_rate, trainer.initialization) == (
        16,
        0.005,
        "glorot",
    )
    assert (trainer.train_steps, trainer.eval_steps) == (100, 5)
    # Everything the preset leaves alone is the paper's, as the dataclasses state it.
    assert (trainer.momentum, trainer.weight_decay, trainer.lighting_std) == (0.9, 5e-4, 0.1)
    assert resolved.settings.gate == GateConfig(min_top1=0.5, max_top1_drop=0.0)
    assert resolved.settings.transform == TransformConfig(
        resize_size=256, crop_size=227, analyzer_sample_one_in=1
    )
    assert resolved.sources["trainer.batch_size"] == "preset sample"
    assert resolved.sources["trainer.momentum"] == "default"
    assert resolved.sources["transform.crop_size"] == "model alexnet"


def test_a_flag_overrides_the_preset_and_says_so():
    flags = {
        "trainer.batch_size": (32, "--batch-size"),
        "gate.min_top1": (0.7, "--min-top1"),
        "transform.store_full_region": (True, "--store-full-region"),
    }
    resolved = presets.resolve("sample", flags)
    assert resolved.settings.trainer.batch_size == 32
    assert resolved.settings.gate.min_top1 == 0.7
    assert resolved.settings.transform.stored_size == 256
    assert resolved.sources["trainer.batch_size"] == "--batch-size"
    lines = resolved.lines()
    assert any(
        line.startswith("trainer.batch_size") and line.endswith("(--batch-size)") for line in lines
    )
    fields = sum(len(dataclasses.fields(step)) for step in presets.STEPS.values())
    assert len(lines) == fields


def test_the_model_sets_the_transform_geometry():
    resolved = presets.resolve("sample", {"trainer.model": ("cifar10", "--model")})
    assert (resolved.settings.transform.resize_size, resolved.settings.transform.crop_size) == (
        36,
        32,
    )


def test_a_preset_option_the_model_does_not_take_is_dropped_a_flag_one_refused():
    resolved = presets.resolve("sample", {"trainer.model": ("cifar10", "--model")})
    assert resolved.settings.trainer.initialization is None
    assert resolved.sources["trainer.initialization"] == "not taken by model cifar10"
    flags = {
        "trainer.model": ("cifar10", "--model"),
        "trainer.initialization": ("paper", "--initialization"),
    }
    with pytest.raises(UserError, match="--initialization: model cifar10 takes no initialization"):
        presets.resolve("sample", flags)


def test_an_unknown_preset_is_named():
    with pytest.raises(UserError, match="--preset 'imagenet': expected one of"):
        presets.resolve("imagenet", {})


def test_the_trainer_config_refuses_an_option_its_model_does_not_take():
    with pytest.raises(ValueError, match="model cifar10 takes no dropout_rate"):
        TrainerConfig(model="cifar10", dropout_rate=0.5)


def test_the_paper_preset_is_the_papers_recipe():
    """Krizhevsky et al. 2012, §4.1 and §5, written here from the paper."""
    settings = presets.resolve("paper", {}).settings
    trainer = settings.trainer
    assert (trainer.batch_size, trainer.momentum, trainer.weight_decay) == (128, 0.9, 0.0005)
    assert (trainer.learning_rate, trainer.dropout_rate, trainer.initialization) == (
        0.01,
        0.5,
        "paper",
    )
    assert (trainer.epochs, trainer.train_steps, trainer.eval_steps) == (90, None, None)
    assert trainer.lighting_std == 0.1
    assert settings.transform.store_full_region and settings.transform.stored_size == 256
    assert settings.transform.crop_size == 227


def test_epochs_as_a_flag_replace_a_presets_steps_and_both_flags_are_refused():
    resolved = presets.resolve("sample", {"trainer.epochs": (2, "--epochs")})
    assert (resolved.settings.trainer.epochs, resolved.settings.trainer.train_steps) == (2, None)
    assert resolved.sources["trainer.train_steps"] == "none: --epochs given"
    flags = {"trainer.epochs": (2, "--epochs"), "trainer.train_steps": (5, "--train-steps")}
    with pytest.raises(UserError, match="--epochs and --train-steps"):
        presets.resolve("sample", flags)
    steps = presets.resolve("paper", {"trainer.train_steps": (7, "--train-steps")})
    assert steps.settings.trainer.train_steps == 7  # a step count overrides the epochs
