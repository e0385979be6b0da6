"""``CodecTrainer``: TFX's Trainer, same interface; ``run_fn`` learns its examples' codec."""

from __future__ import annotations

from tfx.components.trainer import component as tfx_trainer_component
from tfx.dsl.components.base import executor_spec

from components.codec_trainer import executor


class CodecTrainer(tfx_trainer_component.Trainer):
    """Takes TFX Trainer's arguments; ``run_fn`` gets ``fn_args.examples_compression``, the
    TFRecord codec recorded on the examples artifact (``data.compression``).

    Give it the id ``Trainer`` (``.with_id("Trainer")``) to keep a pipeline's node id, and so
    its history and the step that ``compile-kubeflow`` gives the GPUs.
    """

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
