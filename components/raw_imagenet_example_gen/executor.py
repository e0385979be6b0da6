"""The executor: ``data.convert``'s Beam transforms as an ExampleGen input source.

Each split pattern's files are labelled, decoded, re-encoded where needed and turned into
build_imagenet_data.py records exactly as ``alexnet-tfx convert-imagenet`` does; ExampleGen then
writes them (gzipped TFRecords under ``Split-<name>/``). Files that cannot become records are
listed, one JSON object per line with path and reason, in ``rejects/<split>.jsonl`` inside the
examples artifact, and counted in its ``rejected_files`` custom property.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from absl import logging
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from data import convert, preflight

VALIDATION_LABELS_KEY = "validation_labels"
BOUNDING_BOXES_DIR_KEY = "bounding_boxes_dir"
REJECTS_DIR = "rejects"
REJECTED_FILES_PROPERTY = "rejected_files"

_REJECTS_DIR_KEY = "_rejects_dir"  # handed from Do to the per-split transform
# Files are grouped by shuffle key and converted group by group in key order, so the records
# ExampleGen writes come out mixed across classes, not folder by folder. The group count bounds
# the parallelism of the conversion.
_GROUPS = 1024


def custom_options(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The component's options, packed as a Struct in ExampleGen's ``custom_config``."""
    text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not text:
        return {}
    config = proto_utils.json_to_proto(text, example_gen_pb2.CustomConfig())
    options = struct_pb2.Struct()
    if not config.custom_config.Unpack(options):
        raise ValueError(f"custom_config must hold a google.protobuf.Struct, got {text}")
    return json_format.MessageToDict(options)


def _split_name(exec_properties: dict[str, Any], split_pattern: str) -> str:
    input_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input()
    )
    return next(s.name for s in input_config.splits if s.pattern == split_pattern)


class _Convert(beam.DoFn):
    def process(self, element):
        _, images = element
        for _, record in convert.convert_in_order(images):
            if isinstance(record, dict):
                yield beam.pvalue.TaggedOutput(convert.REJECTS, record)
            else:
                yield record


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _RawImagesToExamples(
    pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    options = custom_options(exec_properties)
    labels = None
    if options.get(VALIDATION_LABELS_KEY):
        labels = preflight.read_validation_labels(options[VALIDATION_LABELS_KEY])
    rejects, boxes = [], None
    if options.get(BOUNDING_BOXES_DIR_KEY):
        parsed = pipeline | "ReadBoxes" >> convert.ReadBoxes(options[BOUNDING_BOXES_DIR_KEY])
        boxes = parsed.boxes
        rejects.append(parsed[convert.REJECTS])

    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    images, unlabelled = pipeline | "Read" >> convert.ReadRawImages(pattern, labels, boxes)
    converted = (
        images
        | "ByShuffleKey"
        >> beam.Map(lambda image: (convert.shuffle_key(image.path) % _GROUPS, image))
        | "Group" >> beam.GroupByKey()
        | "Convert" >> beam.ParDo(_Convert()).with_outputs(convert.REJECTS, main="examples")
    )
    rejects_file = os.path.join(
        exec_properties[_REJECTS_DIR_KEY], _split_name(exec_properties, split_pattern)
    )
    (
        [*rejects, unlabelled, converted[convert.REJECTS]]
        | "AllRejects" >> beam.Flatten()
        | "ToJson" >> beam.Map(json.dumps, sort_keys=True)
        | "WriteRejects"
        >> beam.io.WriteToText(rejects_file, file_name_suffix=".jsonl", shard_name_template="")
    )
    return converted.examples


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor that reads a raw ILSVRC-2012 tree (see the component)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _RawImagesToExamples

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        rejects_dir = os.path.join(examples.uri, REJECTS_DIR)
        super().Do(input_dict, output_dict, {**exec_properties, _REJECTS_DIR_KEY: rejects_dir})

        # Every split reads the bounding-box folder, so a bad XML file is listed once per split.
        rejected = set()
        for path in tf.io.gfile.glob(os.path.join(rejects_dir, "*.jsonl")):
            with tf.io.gfile.GFile(path) as rejects_file:
                rejected.update(json.loads(line)["path"] for line in rejects_file)
        examples.set_int_custom_property(REJECTED_FILES_PROPERTY, len(rejected))
        if rejected:
            logging.warning(
                "%d files did not become examples; %s lists each with the reason",
                len(rejected),
                rejects_dir,
            )
