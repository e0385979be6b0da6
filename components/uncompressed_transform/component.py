"""``UncompressedTransform``: TFX's Transform, same interface, uncompressed TFRecord output."""

from __future__ import annotations

from tfx.components.transform import component as tfx_transform_component
from tfx.dsl.components.base import executor_spec

from components.uncompressed_transform import executor


class UncompressedTransform(tfx_transform_component.Transform):
    """Takes TFX Transform's arguments; writes ``transformed_examples`` as uncompressed
    TFRecords (``*.tfrecord``) with the custom property ``compression`` = ``NONE``.

    Give it the id ``Transform`` (``.with_id("Transform")``) to keep a pipeline's node id, and
    so its history, its cache and the names that benchmarks and reports look up.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
