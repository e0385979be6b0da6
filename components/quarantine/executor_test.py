"""The executor on real records in ExampleGen's layout, with real Beam and real TensorFlow."""

import io
import json
import os

import pytest
import tensorflow as tf
from PIL import Image
from skimage import data as skimage_data
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.quarantine import executor
from components.quarantine.component import QuarantineReport
from data import image_check, records

# Written from the ILSVRC-2012 synset list, independently of data.imagenet_classes.
SYNSETS = {0: "n01440764", 1: "n01443537", 2: "n01484850"}


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cat() -> Image.Image:
    return Image.fromarray(skimage_data.chelsea()).resize((48, 32))


def _record(encoded: bytes, class_index: int, name: str, **changes) -> bytes:
    """A build_imagenet record; ``changes`` maps a feature key to a new Feature or None."""
    example = records.make_example(
        encoded, class_index, SYNSETS.get(class_index, "n01440764"), "", 32, 48, name
    )
    for key, feature in changes.items():
        del example.features.feature[key]
        if feature is not None:
            example.features.feature[key].CopyFrom(feature)
    return example.SerializeToString()


def _tfds_record(encoded: bytes, label: int, name: str) -> bytes:
    feature = {
        records.TFDS_IMAGE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        records.TFDS_LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        records.TFDS_FILE_NAME: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[name.encode()])
        ),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def dataset(cat):
    """split -> shards -> (serialized record, the reason it must be rejected or None)."""
    jpeg = _encode(cat, "JPEG")

    def good(class_index, name, encoded=jpeg):
        return _record(encoded, class_index, name), None

    label_1001 = tf.train.Feature(int64_list=tf.train.Int64List(value=[1001]))
    return {
        "train": [
            [
                good(0, "t0.JPEG"),
                # Class 2's only train record is bad: class 2 must count as absent.
                (_record(b"\x89PNG not really", 2, "t1.JPEG"), image_check.UNDECODABLE),
                good(1, "t2.JPEG"),
                (_record(jpeg[:-300], 0, "t3.JPEG"), image_check.UNDECODABLE),
                good(0, "t4.JPEG"),
            ],
            [
                good(1, "t5.JPEG"),
                (
                    _record(jpeg, 0, "t6.JPEG", **{records.LABEL: label_1001}),
                    image_check.LABEL_OUT_OF_RANGE,
                ),
                (_record(jpeg, 0, "t7.JPEG", **{records.ENCODED: None}), image_check.MISSING_IMAGE),
                good(0, "t8.JPEG", _encode(cat.convert("L"), "JPEG")),
                (
                    _record(jpeg, 0, "t9.JPEG", **{records.SYNSET: _bytes(SYNSETS[1])}),
                    image_check.SYNSET_MISMATCH,
                ),
                (_record(b"", 1, "t10.JPEG"), image_check.EMPTY_IMAGE),
                (
                    _record(_encode(Image.new("1", (10_000, 10_000)), "PNG"), 1, "t11.JPEG"),
                    image_check.TOO_LARGE,
                ),
                good(1, "t12.JPEG", _encode(cat, "PNG")),  # a PNG under a .JPEG name
                (b"\xff\xff\xff", image_check.NOT_AN_EXAMPLE),
            ],
        ],
        "validation": [
            [
                good(0, "v0.JPEG"),
                (_record(jpeg, 2, "v1.JPEG"), executor.ABSENT_FROM_TRAINING),
                good(1, "v2.JPEG"),
                (_record(jpeg[:100], 1, "v3.JPEG"), image_check.UNDECODABLE),
            ]
        ],
    }


def _bytes(text: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))


def _examples_artifact(root, splits) -> standard_artifacts.Examples:
    """Lay out ``splits`` as ImportExampleGen does: Split-<name>/data_tfrecord-*-of-*.gz."""
    for split, shards in splits.items():
        os.makedirs(os.path.join(root, f"Split-{split}"))
        for i, shard in enumerate(shards):
            path = os.path.join(
                root, f"Split-{split}", f"data_tfrecord-{i:05d}-of-{len(shards):05d}.gz"
            )
            with tf.io.TFRecordWriter(path, options="GZIP") as writer:
                for serialized, _ in shard:
                    writer.write(serialized)
    examples = standard_artifacts.Examples()
    examples.uri = str(root)
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
    return examples


def _artifacts(tmp_path, splits):
    """The input Examples, and the two outputs' directories made as the TFX launcher makes them."""
    examples = _examples_artifact(tmp_path / "examples", splits)
    clean = standard_artifacts.Examples()
    clean.uri = str(tmp_path / "clean")
    report = QuarantineReport()
    report.uri = str(tmp_path / "report")
    for artifact in (clean, report):
        os.makedirs(artifact.uri)
    return examples, clean, report


def _do(artifacts, max_rejected_fraction=1.0, record_format="build_imagenet") -> None:
    examples, clean, report = artifacts
    executor.Executor().Do(
        {executor.UNCHECKED_EXAMPLES_KEY: [examples]},
        {executor.EXAMPLES_KEY: [clean], executor.REPORT_KEY: [report]},
        {
            executor.RECORD_FORMAT_KEY: record_format,
            executor.MAX_IMAGE_PIXELS_KEY: 50_000_000,
            executor.MAX_REJECTED_FRACTION_KEY: max_rejected_fraction,
        },
    )


def _read(pattern: str) -> list[bytes]:
    files = tf.io.gfile.glob(pattern)
    assert files, pattern
    return sorted(r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _report(report) -> dict:
    with open(os.path.join(report.uri, executor.REPORT_FILE)) as f:
        return json.load(f)


def test_valid_records_pass_byte_identical_and_the_rest_are_quarantined(tmp_path, dataset):
    artifacts = _artifacts(tmp_path, dataset)
    _do(artifacts)
    _, clean, report = artifacts

    for split, shards in dataset.items():
        records_ = [record for shard in shards for record in shard]
        valid = sorted(serialized for serialized, reason in records_ if reason is None)
        rejected = sorted(serialized for serialized, reason in records_ if reason is not None)
        assert _read(os.path.join(clean.uri, f"Split-{split}", "data_tfrecord-*.gz")) == valid
        assert _read(os.path.join(report.uri, f"rejected-{split}.tfrecord.gz")) == rejected

    summary = _report(report)
    assert summary["splits"] == {
        "train": {
            "records": 14,
            "valid": 6,
            "rejected": 8,
            "reasons": {
                image_check.EMPTY_IMAGE: 1,
                image_check.TOO_LARGE: 1,
                image_check.LABEL_OUT_OF_RANGE: 1,
                image_check.MISSING_IMAGE: 1,
                image_check.NOT_AN_EXAMPLE: 1,
                image_check.SYNSET_MISMATCH: 1,
                image_check.UNDECODABLE: 2,
            },
            "rejected_file": "rejected-train.tfrecord.gz",
        },
        "validation": {
            "records": 4,
            "valid": 2,
            "rejected": 2,
            "reasons": {executor.ABSENT_FROM_TRAINING: 1, image_check.UNDECODABLE: 1},
            "rejected_file": "rejected-validation.tfrecord.gz",
        },
    }
    expected = [
        (split, f"Split-{split}/data_tfrecord-{s:05d}-of-{len(shards):05d}.gz", i, reason)
        for split, shards in dataset.items()
        for s, shard in enumerate(shards)
        for i, (_, reason) in enumerate(shard)
        if reason is not None
    ]
    found = [
        (e["split"], os.path.relpath(e["file"], tmp_path / "examples"), e["index"], e["reason"])
        for e in summary["rejected"]
    ]
    assert found == expected
    by_file_name = {e["filename"]: e for e in summary["rejected"]}
    assert (
        by_file_name["t6.JPEG"]["detail"]
        == "label 1001 is outside 1..1000 of the build_imagenet format"
    )
    assert "10000x10000" in by_file_name["t11.JPEG"]["detail"]
    assert by_file_name["v1.JPEG"]["detail"] == "class 2 has no valid record in the train split"
    assert by_file_name[None]["reason"] == image_check.NOT_AN_EXAMPLE

    assert report.get_int_custom_property("record_count") == 18
    assert report.get_int_custom_property("rejected_count") == 10
    assert report.get_int_custom_property("rejected_count_train") == 8
    assert report.get_int_custom_property("rejected_count_validation") == 2
    assert artifact_utils.decode_split_names(clean.split_names) == ["train", "validation"]
    assert examples_utils.get_payload_format(clean) == example_gen_pb2.FORMAT_TF_EXAMPLE


def test_too_many_rejections_fail_with_one_message_after_writing_the_report(tmp_path, dataset):
    artifacts = _artifacts(tmp_path, dataset)
    with pytest.raises(executor.QuarantineError) as raised:
        _do(artifacts, max_rejected_fraction=0.4)
    report = artifacts[2]
    message = str(raised.value)
    # train rejects 8/14 = 57% > 40%; validation 2/4 = 50% > 40%.
    assert (
        "split 'train': 8 of 14 records rejected (57.1%), more than max_rejected_fraction 40.0%"
        in message
    )
    assert "split 'validation': 2 of 4 records rejected (50.0%)" in message
    first_train = os.path.join(
        tmp_path, "examples", "Split-train", "data_tfrecord-00000-of-00002.gz"
    )
    assert f"train: {first_train} record 1 (t1.JPEG): undecodable image" in message
    assert "validation: " in message and "(v1.JPEG): class absent from training" in message
    assert os.path.join(report.uri, "report.json") in message
    assert _report(report)["splits"]["train"]["rejected"] == 8
    assert report.get_int_custom_property("rejected_count") == 10


def test_a_split_without_valid_records_fails_even_when_any_fraction_is_allowed(tmp_path, cat):
    jpeg = _encode(cat, "JPEG")
    splits = {
        "train": [[(_record(jpeg, 0, "t0.JPEG"), None)]],
        "validation": [[(_record(jpeg[:50], 0, "v0.JPEG"), image_check.UNDECODABLE)]],
    }
    artifacts = _artifacts(tmp_path, splits)
    with pytest.raises(
        executor.QuarantineError, match=r"'validation': no valid records left \(1 of 1"
    ):
        _do(artifacts, max_rejected_fraction=1.0)
    assert _report(artifacts[2])["rejected"][0]["filename"] == "v0.JPEG"


def test_tfds_records_are_checked_against_their_zero_based_labels(tmp_path, cat):
    jpeg = _encode(cat, "JPEG")
    splits = {
        "train": [
            [
                (_tfds_record(jpeg, 0, "a.JPEG"), None),
                (_tfds_record(jpeg, 999, "b.JPEG"), None),
                (_tfds_record(jpeg, 1000, "c.JPEG"), image_check.LABEL_OUT_OF_RANGE),
                (_tfds_record(jpeg, -1, "d.JPEG"), image_check.LABEL_OUT_OF_RANGE),
            ]
        ],
        "validation": [[(_tfds_record(jpeg, 999, "e.JPEG"), None)]],
    }
    artifacts = _artifacts(tmp_path, splits)
    _do(artifacts, record_format="tfds")
    _, clean, report = artifacts
    assert [e["filename"] for e in _report(report)["rejected"]] == ["c.JPEG", "d.JPEG"]
    assert len(_read(os.path.join(clean.uri, "Split-validation", "*.gz"))) == 1


def test_a_damaged_tfrecord_file_is_named_in_the_error(tmp_path, cat):
    artifacts = _artifacts(
        tmp_path, {"train": [[(_record(_encode(cat, "JPEG"), 0, "a.JPEG"), None)]]}
    )
    damaged = tmp_path / "examples" / "Split-train" / "data_tfrecord-00000-of-00001.gz"
    damaged.write_bytes(damaged.read_bytes()[:-20])
    with pytest.raises(
        OSError,
        match=r"cannot read record 0 \(0-based\) of .*data_tfrecord-00000-of-00001\.gz: truncated",
    ):
        _do(artifacts)


def test_examples_in_another_file_format_are_refused_before_any_work(tmp_path, cat):
    artifacts = _artifacts(
        tmp_path, {"train": [[(_record(_encode(cat, "JPEG"), 0, "a.JPEG"), None)]]}
    )
    examples_utils.set_file_format(artifacts[0], "parquet")
    with pytest.raises(ValueError, match="tf.train.Example records in tfrecords_gzip files"):
        _do(artifacts)
