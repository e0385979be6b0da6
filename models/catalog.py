"""The models the pipeline can train, by name: how to build each and what input it takes.

One table serves the CLI (the names), Transform (the resize and crop sizes) and the Trainer
(the builder), so a model's input geometry is stated once. Builders are imported lazily so the
CLI can list names without importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
import importlib

# Options a model's builder may take beyond the common ones; each entry lists those it accepts.
MODEL_OPTIONS = ("dropout_rate", "initialization")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    builder: str  # "module:function"
    kwargs: dict
    resize_size: int  # shorter side after resize; the stored region's side
    crop_size: int  # the model's input side
    options: tuple[str, ...] = ()  # of MODEL_OPTIONS

    @property
    def module(self) -> str:
        """The module that defines the builder."""
        return self.builder.split(":")[0]

    def build(self, **kwargs):
        build_fn = getattr(importlib.import_module(self.module), self.builder.split(":")[1])
        return build_fn(**self.kwargs, **kwargs)


_ALEXNET = "models.alexnet:build_alexnet"
MODELS = {
    "alexnet": ModelEntry(_ALEXNET, {"input_size": 227}, 256, 227, MODEL_OPTIONS),
    # The paper's stated 224, zero-padded by 3 pixels inside the model.
    "alexnet-224": ModelEntry(_ALEXNET, {"input_size": 224}, 256, 224, MODEL_OPTIONS),
    # The paper's two-GPU split of conv2, conv4 and conv5.
    "alexnet-grouped": ModelEntry(
        _ALEXNET, {"input_size": 227, "grouped": True}, 256, 227, MODEL_OPTIONS
    ),
    # No dropout, and an initialisation of its own.
    "cifar10": ModelEntry("models.cifar10:build_cifar10_net", {"input_size": 32}, 36, 32),
}


def get(name: str) -> ModelEntry:
    """The entry called ``name``; a clear error listing the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}") from None
