"""The record contract: format detection, the label convention, shard naming, make_example."""

import pytest
import tensorflow as tf

from data import records

# Key strings written out on purpose: they pin the contract to the real formats.
BUILD_IMAGENET_KEYS = [
    "image/encoded",
    "image/format",
    "image/class/label",
    "image/class/synset",
    "image/height",
    "image/width",
    "image/filename",
]
TFDS_KEYS = ["image", "label", "file_name"]


def test_detect_format_build_imagenet():
    assert records.detect_format(BUILD_IMAGENET_KEYS) is records.BUILD_IMAGENET


def test_detect_format_tfds():
    assert records.detect_format(TFDS_KEYS) is records.TFDS


def test_detect_format_needs_both_image_and_label():
    with pytest.raises(records.RecordFormatError, match="image/encoded"):
        records.detect_format(["image/encoded", "image/format"])


def test_detect_format_error_names_the_source_and_the_keys_found():
    with pytest.raises(records.RecordFormatError) as error:
        records.detect_format(["pixels", "target"], source="/data/train-00000-of-00002")
    message = str(error.value)
    assert "/data/train-00000-of-00002" in message
    assert "'pixels'" in message and "'target'" in message
    # The expected keys of both formats, so the user sees what would have matched.
    for key in ("image/encoded", "image/class/label", "image", "label"):
        assert f"{key}" in message


def test_get_format_by_name():
    assert records.get_format("build_imagenet") is records.BUILD_IMAGENET
    assert records.get_format("tfds") is records.TFDS


def test_get_format_unknown_name_lists_the_known_ones():
    with pytest.raises(records.RecordFormatError, match=r"'coco'.*build_imagenet.*tfds"):
        records.get_format("coco")


@pytest.mark.parametrize(
    ("fmt", "raw", "index"),
    [
        (records.BUILD_IMAGENET, 1, 0),
        (records.BUILD_IMAGENET, 1000, 999),
        (records.BUILD_IMAGENET, 282, 281),
        (records.TFDS, 0, 0),
        (records.TFDS, 999, 999),
        (records.TFDS, 281, 281),
    ],
)
def test_class_index_in_range(fmt, raw, index):
    assert fmt.class_index(raw) == index


@pytest.mark.parametrize(
    ("fmt", "raw"),
    [
        (records.BUILD_IMAGENET, 0),  # build_imagenet_data.py leaves 0 unused
        (records.BUILD_IMAGENET, 1001),
        (records.BUILD_IMAGENET, -1),
        (records.TFDS, 1000),
        (records.TFDS, -1),
    ],
)
def test_class_index_out_of_range_names_label_and_format(fmt, raw):
    with pytest.raises(ValueError, match=rf"label {raw} .*{fmt.name}"):
        fmt.class_index(raw)


def test_label_ranges():
    assert records.BUILD_IMAGENET.label_range == (1, 1000)
    assert records.TFDS.label_range == (0, 999)


def test_shard_name_matches_build_imagenet_data():
    assert records.shard_name("train", 0, 1024) == "train-00000-of-01024"
    assert records.shard_name("validation", 127, 128) == "validation-00127-of-00128"


def test_split_files_sorted(tmp_path):
    for index in (1, 0):
        (tmp_path / records.shard_name("train", index, 2)).write_bytes(b"")
    (tmp_path / records.shard_name("validation", 0, 1)).write_bytes(b"")
    assert records.split_files(str(tmp_path), "train") == [
        str(tmp_path / "train-00000-of-00002"),
        str(tmp_path / "train-00001-of-00002"),
    ]


def test_split_files_empty_pattern_names_pattern_and_flag(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        records.split_files(str(tmp_path), "validation")
    message = str(error.value)
    assert str(tmp_path / "validation-*") in message
    assert "--data-root" in message


def _parse(serialized: bytes) -> dict:
    spec = {
        key: tf.io.FixedLenFeature([], dtype)
        for key, dtype in [
            ("image/encoded", tf.string),
            ("image/format", tf.string),
            ("image/class/label", tf.int64),
            ("image/class/synset", tf.string),
            ("image/class/text", tf.string),
            ("image/height", tf.int64),
            ("image/width", tf.int64),
            ("image/colorspace", tf.string),
            ("image/channels", tf.int64),
            ("image/filename", tf.string),
        ]
    }
    for key in ("xmin", "ymin", "xmax", "ymax"):
        spec[f"image/object/bbox/{key}"] = tf.io.VarLenFeature(tf.float32)
    spec["image/object/bbox/label"] = tf.io.VarLenFeature(tf.int64)
    parsed = tf.io.parse_single_example(serialized, spec)
    return {
        key: tf.sparse.to_dense(value).numpy().tolist()
        if isinstance(value, tf.SparseTensor)
        else value.numpy()
        for key, value in parsed.items()
    }


def test_make_example_round_trip():
    jpeg = tf.io.encode_jpeg(tf.zeros([3, 5, 3], tf.uint8)).numpy()
    example = records.make_example(
        encoded=jpeg,
        class_index=281,
        synset="n02123045",
        text="tabby",
        height=3,
        width=5,
        filename="n02123045_7.JPEG",
        bboxes=[(0.25, 0.0, 0.75, 1.0), (0.5, 0.5, 1.0, 1.0)],
    )
    parsed = _parse(example.SerializeToString())

    assert parsed["image/encoded"] == jpeg
    assert parsed["image/format"] == b"JPEG"
    assert parsed["image/class/label"] == 282  # 1-based in build_imagenet_data.py records
    assert parsed["image/class/synset"] == b"n02123045"
    assert parsed["image/class/text"] == b"tabby"
    assert parsed["image/height"] == 3
    assert parsed["image/width"] == 5
    assert parsed["image/colorspace"] == b"RGB"
    assert parsed["image/channels"] == 3
    assert parsed["image/filename"] == b"n02123045_7.JPEG"
    assert parsed["image/object/bbox/xmin"] == [0.25, 0.5]
    assert parsed["image/object/bbox/ymin"] == [0.0, 0.5]
    assert parsed["image/object/bbox/xmax"] == [0.75, 1.0]
    assert parsed["image/object/bbox/ymax"] == [1.0, 1.0]
    assert parsed["image/object/bbox/label"] == [282, 282]
    assert records.detect_format(example.features.feature) is records.BUILD_IMAGENET


def test_make_example_without_boxes_has_empty_box_lists():
    example = records.make_example(b"x", 0, "n01440764", "tench", 1, 1, "a.JPEG")
    parsed = _parse(example.SerializeToString())
    assert parsed["image/class/label"] == 1
    for key in ("xmin", "ymin", "xmax", "ymax", "label"):
        assert parsed[f"image/object/bbox/{key}"] == []


def test_make_example_describes_unconverted_bytes():
    example = records.make_example(
        b"x", 0, "n01440764", "tench", 1, 1, "a.JPEG", colorspace="CMYK", channels=4
    )
    parsed = _parse(example.SerializeToString())
    assert parsed["image/colorspace"] == b"CMYK"
    assert parsed["image/channels"] == 4
