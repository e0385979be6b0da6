"""The curated schemas: they match the record contract, pass the sample, and catch bad labels."""

import pathlib

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from data import make_sample, records

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"


def _schema(fmt: records.RecordFormat) -> schema_pb2.Schema:
    text = (SCHEMA_DIR / f"{fmt.name}.pbtxt").read_text(encoding="utf-8")
    return text_format.Parse(text, schema_pb2.Schema())


def _feature(schema: schema_pb2.Schema, name: str) -> schema_pb2.Feature:
    (feature,) = [f for f in schema.feature if f.name == name]
    return feature


def _anomalies(pattern: str, fmt: records.RecordFormat) -> dict:
    stats = tfdv.generate_statistics_from_tfrecord(data_location=pattern)
    return dict(tfdv.validate_statistics(stats, _schema(fmt)).anomaly_info)


@pytest.mark.parametrize("fmt", [records.BUILD_IMAGENET, records.TFDS], ids=lambda f: f.name)
def test_image_and_label_are_required_single_values(fmt):
    schema = _schema(fmt)
    image, label = _feature(schema, fmt.image_key), _feature(schema, fmt.label_key)
    assert image.type == schema_pb2.BYTES and image.HasField("image_domain")
    assert label.type == schema_pb2.INT
    assert (label.int_domain.min, label.int_domain.max) == fmt.label_range
    for feature in (image, label):
        assert feature.presence.min_fraction == 1.0
        assert [d.size for d in feature.shape.dim] == [1]


def test_other_build_imagenet_keys_are_optional():
    schema = _schema(records.BUILD_IMAGENET)
    required = {f.name for f in schema.feature if f.presence.min_fraction > 0}
    assert required == {records.ENCODED, records.LABEL}
    assert {f.name for f in schema.feature} >= {records.SYNSET, records.FILENAME, records.TEXT}


def test_bundled_sample_has_no_anomalies():
    shards = make_sample.DEFAULT_OUTPUT_DIR / "*-of-*"  # train and validation
    assert _anomalies(str(shards), records.BUILD_IMAGENET) == {}


def _write(path: pathlib.Path, examples: list[tf.train.Example]) -> str:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    return str(path)


def test_build_imagenet_label_1001_is_an_anomaly(tmp_path):
    def example(class_index):  # label = class_index + 1
        return records.make_example(b"jpeg", class_index, "n01440764", "tench", 8, 8, "a.JPEG")

    good = _write(tmp_path / "good", [example(0), example(999)])
    assert _anomalies(good, records.BUILD_IMAGENET) == {}
    bad = _write(tmp_path / "bad", [example(0), example(1000)])
    assert list(_anomalies(bad, records.BUILD_IMAGENET)) == [records.LABEL]


def test_tfds_label_1000_and_missing_image_are_anomalies(tmp_path):
    def example(label, image=True):
        feature = {
            records.TFDS_LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            records.TFDS_FILE_NAME: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a"])),
        }
        if image:
            feature[records.TFDS_IMAGE] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[b"jpeg"])
            )
        return tf.train.Example(features=tf.train.Features(feature=feature))

    good = _write(tmp_path / "good", [example(0), example(999)])
    assert _anomalies(good, records.TFDS) == {}
    bad = _write(tmp_path / "bad", [example(1000), example(5, image=False)])
    assert set(_anomalies(bad, records.TFDS)) == {records.TFDS_LABEL, records.TFDS_IMAGE}
