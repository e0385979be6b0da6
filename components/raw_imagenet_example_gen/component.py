"""``RawImageNetExampleGen``: a pipeline that starts from the raw ILSVRC-2012 JPEG tree.

A ``FileBasedExampleGen`` whose executor is ``data.convert``'s Beam transform, so the records
are the ones ``alexnet-tfx convert-imagenet`` writes, without a separate conversion step.
"""

from __future__ import annotations

from google.protobuf import any_pb2, struct_pb2
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.raw_imagenet_example_gen import executor
from data import preflight


def default_input_config(flat_validation: bool) -> example_gen_pb2.Input:
    """Splits ``train`` (train/<synset>/*) and ``validation`` (val/<synset>/* or flat val/*)."""
    return example_gen_pb2.Input(
        splits=[
            example_gen_pb2.Input.Split(name=split, pattern=pattern)
            for split, pattern in preflight.raw_tree_patterns(flat_validation).items()
        ]
    )


class RawImageNetExampleGen(FileBasedExampleGen):
    """Examples in the build_imagenet_data.py format from ``input_base`` = the raw tree's root.

    Args:
      input_base: the folder holding ``train/`` and ``val/``.
      validation_labels: ``imagenet_2012_validation_synset_labels.txt`` for a flat ``val/``
        (line N labels ILSVRC2012_val_<N>.JPEG); None when ``val/`` has synset folders.
      bounding_boxes_dir: the unpacked ILSVRC bounding-box XML files, or None.
      input_config: other split patterns, relative to ``input_base``; by default
        ``train/*/*`` and ``val/*`` (flat, with labels) or ``val/*/*``.

    ``outputs["examples"]`` has one split per input split; files that could not become
    examples are listed in its ``rejects/<split>.jsonl`` and counted in its
    ``rejected_files`` custom property.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        input_base: str,
        validation_labels: str | None = None,
        bounding_boxes_dir: str | None = None,
        input_config: example_gen_pb2.Input | None = None,
    ):
        options = struct_pb2.Struct()
        if validation_labels:
            options[executor.VALIDATION_LABELS_KEY] = validation_labels
        if bounding_boxes_dir:
            options[executor.BOUNDING_BOXES_DIR_KEY] = bounding_boxes_dir
        packed = any_pb2.Any()
        packed.Pack(options)
        super().__init__(
            input_base=input_base,
            input_config=input_config or default_input_config(bool(validation_labels)),
            custom_config=example_gen_pb2.CustomConfig(custom_config=packed),
        )
