"""The Transform's and the Trainer's settings: typed, frozen, every default stated once.

The pipeline passes each step its dataclass as ``custom_config`` (plain JSON), and the step
parses it back here, refusing keys it does not know, so a flag is traceable from the CLI to the
code that uses it. The defaults are the paper's recipe; named presets (``pipeline.presets``)
are sets of values on top of them. This module imports no TensorFlow, so the CLI can resolve
and print a configuration at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from models import catalog

_Config = TypeVar("_Config")


def from_dict(cls: type[_Config], values: dict[str, Any] | None, what: str) -> _Config:
    """``cls(**values)``, with unknown keys named instead of a TypeError."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values or {}) - known
    if unknown:
        raise ValueError(f"unknown {what} keys {sorted(unknown)}; expected some of {sorted(known)}")
    return cls(**(values or {}))


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    """How Transform turns a record into the stored image (the paper's geometry, §2)."""

    record_format: str = "build_imagenet"  # a name in data.records.FORMATS
    resize_size: int = 256  # the shorter side is scaled to this; the central square is kept
    crop_size: int = 227  # the model's input side
    store_full_region: bool = False  # store the resize_size² square, not the central crop
    # The pixel statistics (normalisation, PCA lighting) from the training images whose bytes
    # hash to bucket 0 of k: the analysis pass decodes ~1/k of them (docs/benchmarks.md has the
    # measured deviation from the full pass). 1: every image.
    analyzer_sample_one_in: int = 8

    def __post_init__(self):
        if self.analyzer_sample_one_in < 1:
            raise ValueError(
                f"analyzer_sample_one_in must be >= 1, got {self.analyzer_sample_one_in}"
            )

    @classmethod
    def for_model(cls, model: str, **values) -> TransformConfig:
        """The geometry that ``model`` (a name in ``models.catalog``) takes."""
        entry = catalog.get(model)
        return cls(resize_size=entry.resize_size, crop_size=entry.crop_size, **values)

    @property
    def stored_size(self) -> int:
        """Side of the square Transform stores: the region random crops are taken from."""
        return self.resize_size if self.store_full_region else self.crop_size


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """The training recipe (§5): SGD with momentum, the learning-rate schedule, augmentation."""

    model: str = "alexnet"  # a name in models.catalog.MODELS
    epochs: int = 90  # passes over the training split, when train_steps is None
    train_steps: int | None = None  # steps in all, instead of epochs
    steps_per_epoch: int | None = None  # between validations; None: a pass over the split
    eval_steps: int | None = None  # validation batches per epoch; None: the whole split
    batch_size: int = 128
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout_rate: float | None = None  # None: the model's own (AlexNet: the paper's 0.5)
    initialization: str | None = None  # None: the model's own (AlexNet: the paper's)
    lighting_std: float = 0.1
    lrn_implementation: str = "tf_nn"
    lr_patience: int = 2  # epochs without a better validation accuracy before lr /= 10
    distribution: str = "auto"  # "auto": MirroredStrategy over GPUs if any; "mirrored": always
    mixed_precision: str | None = None  # None, "mixed_float16" or "mixed_bfloat16"
    xla: bool = False
    checkpoint_root: str | None = None  # where the training state survives crashes (resume)
    # The same data, code, settings and seed give the same weights, bit for bit
    # (docs/reproducibility.md): TensorFlow's deterministic kernels and an input order that
    # depends on the seed only. False trades that for parallel reads (and allows XLA and
    # tf.data service).
    seed: int = 0
    deterministic: bool = True
    # Host input (models.input_pipeline): hold the decoded training images in RAM after the
    # first epoch; or run the training input on tf.data service workers (grpc://HOST:PORT).
    cache_dataset: bool = False
    data_service: str | None = None

    def __post_init__(self):
        if self.deterministic and self.data_service:
            raise ValueError(
                "a tf.data service hands out files to workers in the order they ask: a "
                "deterministic run cannot use one (add --nondeterministic)"
            )
        if self.deterministic and self.xla:
            raise ValueError(
                'XLA has no deterministic max-pool gradient in TensorFlow 2.16 ("MaxPool '
                'gradient ops do not yet have a deterministic XLA implementation", on CPUs '
                "too): --xla needs --nondeterministic"
            )
        entry = catalog.get(self.model)
        for option in catalog.MODEL_OPTIONS:
            if getattr(self, option) is not None and option not in entry.options:
                raise ValueError(
                    f"model {self.model} takes no {option} (it takes "
                    f"{', '.join(entry.options) or 'no model options'})"
                )

    def model_options(self) -> dict[str, Any]:
        """The model options that are set, for the model's builder."""
        return {
            option: getattr(self, option)
            for option in catalog.MODEL_OPTIONS
            if getattr(self, option) is not None
        }


# The fingerprint of the step's code (pipeline.code_fingerprint): part of its custom_config
# only so that TFX's cache key changes with the code; the step itself does not read it.
CODE_FINGERPRINT_KEY = "code_fingerprint"


def transform_custom_config(transform: TransformConfig, code_fingerprint: str) -> dict:
    """Transform's ``custom_config``: its settings, and the fingerprint of its code."""
    return {"transform": dataclasses.asdict(transform), CODE_FINGERPRINT_KEY: code_fingerprint}


def parse_transform_custom_config(custom_config: dict | None) -> TransformConfig:
    values = _without_fingerprint(custom_config, "Transform")
    return from_dict(TransformConfig, values.pop("transform", None), "Transform config")


def trainer_custom_config(
    transform: TransformConfig, trainer: TrainerConfig, code_fingerprint: str
) -> dict:
    """The Trainer's ``custom_config``: its own settings, those its input was made with, and
    the fingerprint of its code."""
    return {
        "transform": dataclasses.asdict(transform),
        "trainer": dataclasses.asdict(trainer),
        CODE_FINGERPRINT_KEY: code_fingerprint,
    }


def parse_trainer_custom_config(
    custom_config: dict | None,
) -> tuple[TransformConfig, TrainerConfig]:
    """The two configs that ``trainer_custom_config`` wrote."""
    values = _without_fingerprint(custom_config, "Trainer")
    transform = from_dict(TransformConfig, values.pop("transform", None), "Transform config")
    trainer = from_dict(TrainerConfig, values.pop("trainer", None), "Trainer config")
    if transform.crop_size != catalog.get(trainer.model).crop_size:
        raise ValueError(
            f"Transform stored {transform.crop_size}-pixel crops, but model {trainer.model} "
            f"takes {catalog.get(trainer.model).crop_size}"
        )
    return transform, trainer


def _without_fingerprint(custom_config: dict | None, step: str) -> dict:
    values = dict(custom_config or {})
    values.pop(CODE_FINGERPRINT_KEY, None)
    unknown = set(values) - {"transform", "trainer"}
    if unknown:
        raise ValueError(f"unknown {step} custom_config keys {sorted(unknown)}")
    return values
