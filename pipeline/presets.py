"""A run's settings: the three step configs, the named presets, and how they resolve.

A value comes from, in rising order: the step config's default (``models.config``,
``pipeline.eval_config``), the chosen preset, a flag. Each resolved value keeps its source, so
``--print-config`` can say where every number came from. A preset is only a set of values; it
adds no behaviour of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from data.errors import UserError
from models import catalog
from models.config import TrainerConfig, TransformConfig
from pipeline.eval_config import GateConfig

STEPS = {"transform": TransformConfig, "trainer": TrainerConfig, "gate": GateConfig}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The bundled sample, blessed in minutes on a CPU: the paper's initialisation needs many
    # epochs to leave its starting plateau (docs/benchmarks.md, "The sample preset").
    "sample": {
        # Its 308 training images are too few to sample for the pixel statistics.
        "transform": {"analyzer_sample_one_in": 1},
        "trainer": {
            "train_steps": 100,
            "steps_per_epoch": 20,
            "eval_steps": 5,
            "batch_size": 16,
            "learning_rate": 0.005,
            "initialization": "glorot",
        },
    },
    # Krizhevsky et al. 2012, §4 and §5, on full ImageNet (docs/paper.md). Most of it is the
    # step configs' defaults already; stated here so the preset reads as the paper's recipe.
    "paper": {
        "transform": {"store_full_region": True},  # random 227 crops of the 256 square
        "trainer": {
            "epochs": 90,
            "batch_size": 128,
            "learning_rate": 0.01,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "dropout_rate": 0.5,
            "initialization": "paper",
            "lighting_std": 0.1,
            "eval_steps": None,  # the whole validation split
        },
    },
}
DEFAULT_PRESET = "sample"

DEFAULT = "default"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one run is configured with, one typed config per step."""

    transform: TransformConfig
    trainer: TrainerConfig
    gate: GateConfig


@dataclasses.dataclass(frozen=True)
class Resolved:
    settings: Settings
    sources: dict[str, str]  # "trainer.batch_size" -> "default", "preset sample", "--batch-size"

    def lines(self) -> list[str]:
        """``step.name = value  (source)`` for every setting, steps in data order."""
        lines = []
        for step in STEPS:
            for field in dataclasses.fields(getattr(self.settings, step)):
                key = f"{step}.{field.name}"
                value = getattr(getattr(self.settings, step), field.name)
                lines.append(f"{key:<32} {value!r:<24} ({self.sources[key]})")
        return lines


def resolve(preset: str, flags: dict[str, tuple[Any, str]]) -> Resolved:
    """The settings of ``preset`` with ``flags`` on top: {"trainer.batch_size": (32, "--b")}.

    The Transform's geometry follows the model. A preset's model option (e.g. an
    initialisation) is dropped for a model that takes none; a flag's is an error.
    """
    if preset not in PRESETS:
        raise UserError(f"--preset {preset!r}: expected one of {sorted(PRESETS)}")
    values: dict[str, dict[str, Any]] = {step: {} for step in STEPS}
    sources: dict[str, str] = {}
    for step, step_values in PRESETS[preset].items():
        for name, value in step_values.items():
            values[step][name], sources[f"{step}.{name}"] = value, f"preset {preset}"
    for key, (value, flag) in flags.items():
        step, name = key.split(".")
        values[step][name], sources[key] = value, flag
    _epochs_or_steps(values["trainer"], sources)

    model = values["trainer"].get("model", TrainerConfig.model)
    entry = catalog.get(model)
    for option in catalog.MODEL_OPTIONS:
        key = f"trainer.{option}"
        if option in values["trainer"] and option not in entry.options:
            if not sources[key].startswith("preset"):
                raise UserError(f"{sources[key]}: model {model} takes no {option}")
            del values["trainer"][option]
            sources[key] = f"not taken by model {model}"
    try:
        settings = Settings(
            transform=TransformConfig.for_model(model, **values["transform"]),
            trainer=TrainerConfig(**values["trainer"]),
            gate=GateConfig(**values["gate"]),
        )
    except (TypeError, ValueError) as error:
        raise UserError(str(error)) from None
    for step in STEPS:
        for field in dataclasses.fields(STEPS[step]):
            sources.setdefault(f"{step}.{field.name}", DEFAULT)
    for key in ("transform.resize_size", "transform.crop_size"):
        sources[key] = f"model {model}"
    return Resolved(settings, sources)


def _epochs_or_steps(trainer: dict[str, Any], sources: dict[str, str]) -> None:
    """A flag's ``--epochs`` replaces a preset's step count; both as flags contradict."""
    epochs, steps = sources.get("trainer.epochs", ""), sources.get("trainer.train_steps", "")
    if epochs.startswith("--") and steps.startswith("--"):
        raise UserError(f"{epochs} and {steps}: give the length of training once")
    if epochs.startswith("--") and "train_steps" in trainer:
        trainer["train_steps"] = None
        sources["trainer.train_steps"] = f"none: {epochs} given"
