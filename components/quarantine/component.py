"""``Quarantine``: the component between ImportExampleGen and everything else.

TFX's standard components report anomalies but let bad records through; a record without an
image, with an undecodable image or an out-of-range label then crashes Transform deep in Beam,
or is trained on. Quarantine passes on only the records that ``data.image_check`` accepts and
sets the others aside, with a report, in a ``QuarantineReport`` artifact.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.quarantine import executor
from data import records

# Fail the run when more than this share of a split's records is bad.
MAX_REJECTED_FRACTION = 0.05
# Larger images are rejected from their header, before decoding: ILSVRC-2012's largest is
# ~12 megapixels, and a 10,000 x 10,000 image would take 300 MB decoded.
MAX_IMAGE_PIXELS = 50_000_000


class QuarantineReport(types.Artifact):
    """report.json (counts per split and reason, one entry per rejected record) and the
    rejected records' original bytes, one ``rejected-<split>.tfrecord.gz`` per split."""

    # "<module>.<Class>", importable: on Kubeflow, TFX's container entrypoint imports a custom
    # artifact type by its name (the spec's schema title), and TFX's compiler takes only a
    # one-word module. ``components`` exports the class for that.
    TYPE_NAME = "components.QuarantineReport"


class QuarantineSpec(ComponentSpec):
    PARAMETERS = {
        executor.RECORD_FORMAT_KEY: ExecutionParameter(type=str),
        executor.MAX_IMAGE_PIXELS_KEY: ExecutionParameter(type=int),
        executor.MAX_REJECTED_FRACTION_KEY: ExecutionParameter(type=float),
    }
    # Spec keys are unique across inputs and outputs, and "examples" is the output that
    # downstream components read; the constructor still takes ``examples=``.
    INPUTS = {executor.UNCHECKED_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.REPORT_KEY: ChannelParameter(type=QuarantineReport),
    }


class Quarantine(base_beam_component.BaseBeamComponent):
    """Passes on the valid records of every split, byte-identical; quarantines the rest.

    ``outputs["examples"]`` has the input's splits and file layout; ``outputs["report"]`` is a
    ``QuarantineReport``. The run fails, with the report written, when a split keeps no valid
    record or rejects more than ``max_rejected_fraction`` of its records.
    """

    SPEC_CLASS = QuarantineSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        *,
        record_format: str,
        max_image_pixels: int = MAX_IMAGE_PIXELS,
        max_rejected_fraction: float = MAX_REJECTED_FRACTION,
    ):
        """Args:
        examples: ImportExampleGen's output (tf.train.Example records in GZIP TFRecords).
        record_format: ``build_imagenet`` or ``tfds`` (``data.records.FORMATS``).
        max_image_pixels: width x height above which an image is rejected without decoding.
        max_rejected_fraction: 0..1, the share of a split that may be rejected.
        """
        records.get_format(record_format)  # an unknown name fails here, at pipeline build time
        if not isinstance(max_image_pixels, int) or max_image_pixels <= 0:
            raise ValueError(f"max_image_pixels must be a positive int, got {max_image_pixels!r}")
        if not 0.0 <= max_rejected_fraction <= 1.0:
            raise ValueError(
                f"max_rejected_fraction must be within 0..1, got {max_rejected_fraction}"
            )
        spec = QuarantineSpec(
            unchecked_examples=examples,
            record_format=record_format,
            max_image_pixels=max_image_pixels,
            max_rejected_fraction=float(max_rejected_fraction),
            examples=types.Channel(type=standard_artifacts.Examples),
            report=types.Channel(type=QuarantineReport),
        )
        super().__init__(spec=spec)
