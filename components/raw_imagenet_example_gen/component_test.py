"""RawImageNetExampleGen: its configuration, and a real LocalDagRunner run on a raw tree."""

import json
import os

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata, pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from components.raw_imagenet_example_gen.component import RawImageNetExampleGen
from components.raw_imagenet_example_gen.executor import custom_options
from data.convert_test import (
    CORRUPT,
    DAISY,
    ESPRESSO,
    LABELS,
    TABBY,
    TRAIN,
    UNLABELLED_VALIDATION,
    VALIDATION,
    make_raw_tree,
)


def _patterns(example_gen) -> dict[str, str]:
    config = proto_utils.json_to_proto(
        example_gen.exec_properties["input_config"], example_gen_pb2.Input()
    )
    return {split.name: split.pattern for split in config.splits}


def test_flat_validation_with_labels():
    example_gen = RawImageNetExampleGen(
        input_base="/raw", validation_labels="/raw/labels.txt", bounding_boxes_dir="/raw/bbox"
    )
    assert _patterns(example_gen) == {"train": "train/*/*", "validation": "val/*"}
    assert custom_options(example_gen.exec_properties) == {
        "validation_labels": "/raw/labels.txt",
        "bounding_boxes_dir": "/raw/bbox",
    }


def test_validation_in_synset_folders_by_default():
    example_gen = RawImageNetExampleGen(input_base="/raw")
    assert _patterns(example_gen) == {"train": "train/*/*", "validation": "val/*/*"}
    assert custom_options(example_gen.exec_properties) == {}


def _records(examples_uri: str, split: str) -> dict[str, dict]:
    files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*.gz"))
    records = {}
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        feature = tf.train.Example.FromString(serialized).features.feature
        records[feature["image/filename"].bytes_list.value[0].decode()] = feature
    return records


@pytest.mark.slow
def test_in_a_pipeline_it_publishes_both_splits_and_lists_the_rejects(tmp_path):
    root = str(tmp_path / "raw")
    make_raw_tree(root)
    example_gen = RawImageNetExampleGen(
        input_base=root,
        validation_labels=f"{root}/labels.txt",
        bounding_boxes_dir=f"{root}/bbox",
    )
    connection = metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite"))
    LocalDagRunner().run(
        pipeline.Pipeline(
            pipeline_name="raw-example-gen-test",
            pipeline_root=str(tmp_path / "root"),
            components=[example_gen],
            metadata_connection_config=connection,
        )
    )
    (examples,) = metadata_store.MetadataStore(connection).get_artifacts_by_type("Examples")
    assert examples.properties["split_names"].string_value == '["train", "validation"]'

    for split, expected in (("train", TRAIN), ("validation", VALIDATION)):
        records = _records(examples.uri, split)
        assert sorted(records) == sorted(expected)
        for name, synset in expected.items():
            assert records[name]["image/class/label"].int64_list.value == [LABELS[synset]]
            encoded = records[name]["image/encoded"].bytes_list.value[0]
            assert tf.io.decode_jpeg(encoded, channels=3).shape[2] == 3
    tabby = _records(examples.uri, "train")[f"{TABBY}_1.JPEG"]
    assert tabby["image/object/bbox/xmin"].float_list.value == pytest.approx([0.25, 0.5])

    # The bad box file is read by both splits, and counted once.
    assert examples.custom_properties["rejected_files"].int_value == 3
    rejects = {}
    for split in ("train", "validation"):
        with open(os.path.join(examples.uri, "rejects", f"{split}.jsonl")) as rejects_file:
            rejects[split] = {json.loads(line)["path"]: json.loads(line) for line in rejects_file}
    bad_xml = f"{root}/bbox/{ESPRESSO}/{ESPRESSO}_1.xml"
    assert set(rejects["train"]) == {f"{root}/train/{DAISY}/{CORRUPT}", bad_xml}
    assert set(rejects["validation"]) == {f"{root}/val/{UNLABELLED_VALIDATION}", bad_xml}
    assert "truncated" in rejects["train"][f"{root}/train/{DAISY}/{CORRUPT}"]["reason"].lower()
