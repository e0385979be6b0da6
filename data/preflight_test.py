"""The checks before anything runs, on real files: shards corrupted byte by byte, stray files,
missing splits, and raw ILSVRC-2012 trees laid out right and wrong. No pipeline runs here."""

from __future__ import annotations

import os
import shutil
import struct

import pytest
import tensorflow as tf
from PIL import Image

from data import bundled, preflight, records
from data.convert_test import make_raw_tree
from data.errors import UserError


def sample_copy(directory) -> str:
    os.makedirs(directory)
    for split in records.SPLITS:
        for path in records.split_files(bundled.SAMPLE_DIR, split):
            shutil.copy(path, directory)
    return str(directory)


def record_offsets(path: str) -> list[tuple[int, int]]:
    """(offset, data length) of each record, read off the TFRecord framing: length (8 bytes),
    its CRC (4), data, data CRC (4)."""
    with open(path, "rb") as f:
        data = f.read()
    offsets, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        offsets.append((offset, length))
        offset += 12 + length + 4
    return offsets


def _refused(data_root: str, *fragments: str, **kwargs) -> None:
    with pytest.raises(UserError) as error:
        preflight.check_data_root(data_root, **kwargs)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_the_bundled_sample_is_build_imagenet_shards():
    data = preflight.check_data_root(bundled.SAMPLE_DIR)
    assert data == preflight.DataInput(bundled.SAMPLE_DIR, "build_imagenet")
    assert data.describe() == "build_imagenet records"


def test_tfds_shards_are_detected_and_a_contradicting_flag_is_refused(tmp_path):
    example = tf.train.Example()
    example.features.feature[records.TFDS_IMAGE].bytes_list.value.append(b"jpeg")
    example.features.feature[records.TFDS_LABEL].int64_list.value.append(3)
    for split in records.SPLITS:
        with tf.io.TFRecordWriter(str(tmp_path / records.shard_name(split, 0, 1))) as writer:
            writer.write(example.SerializeToString())
    assert preflight.check_data_root(str(tmp_path)).record_format == "tfds"
    _refused(str(tmp_path), "--record-format build_imagenet but", record_format="build_imagenet")


def test_a_corrupt_record_is_named_by_file_and_index(tmp_path):
    data_root = sample_copy(tmp_path / "data")
    path = records.split_files(data_root, "train")[0]
    offset, length = record_offsets(path)[5]
    with open(path, "r+b") as f:  # flip one byte inside record 5's data: its CRC fails
        f.seek(offset + 12 + length // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    _refused(data_root, f"{path}: record 5 (0-based) is unreadable", "corrupted record")


def test_a_truncated_shard_is_named_by_file_and_index(tmp_path):
    data_root = sample_copy(tmp_path / "data")
    path = records.split_files(data_root, "validation")[0]
    offset, length = record_offsets(path)[9]
    with open(path, "r+b") as f:  # an interrupted copy: the file ends inside record 9
        f.truncate(offset + 12 + length // 2)
    _refused(data_root, f"{path}: record 9 (0-based) is unreadable", "truncated record")


def test_a_file_that_is_no_tfrecord_is_named(tmp_path):
    data_root = sample_copy(tmp_path / "data")
    path = os.path.join(data_root, "train-00002-of-00002")
    Image.new("RGB", (8, 8)).save(path, "JPEG")  # a stray image matching the pattern
    _refused(data_root, f"{path}: record 0 (0-based) is unreadable")


@pytest.mark.parametrize("present", [(), ("train",)])
def test_a_pattern_matching_no_file_is_named(tmp_path, present):
    data_root = tmp_path / "data"
    os.makedirs(data_root)
    for split in present:
        for path in records.split_files(bundled.SAMPLE_DIR, split):
            shutil.copy(path, data_root)
    missing = next(s for s in records.SPLITS if s not in present)
    pattern = records.split_pattern(str(data_root), missing)
    _refused(str(data_root), f"no {missing} shards match {pattern!r}")


def test_a_data_root_that_is_no_directory(tmp_path):
    _refused(str(tmp_path / "nowhere"), f"--data-root '{tmp_path}/nowhere' is not a directory")


def test_a_raw_tree_with_class_folders_and_a_flat_validation_folder(tmp_path):
    make_raw_tree(str(tmp_path))
    labels = str(tmp_path / "labels.txt")
    data = preflight.check_data_root(str(tmp_path), validation_labels=labels)
    assert data == preflight.DataInput(str(tmp_path), "build_imagenet", True, labels)
    train, validation = preflight.check_raw_tree(
        str(tmp_path / "train"), str(tmp_path / "val"), labels
    )
    assert train.pattern == f"{tmp_path}/train/*/*"
    assert validation.pattern == f"{tmp_path}/val/*"
    assert len(validation.validation_labels) == 4
    assert preflight.raw_tree_patterns(flat_validation=True) == {
        "train": "train/*/*",
        "validation": "val/*",
    }


def test_a_flat_validation_folder_without_labels_is_refused_before_the_run(tmp_path):
    make_raw_tree(str(tmp_path))
    _refused(str(tmp_path), "holds images directly (flat layout)", "--validation-labels")


def test_labels_for_a_tree_with_validation_class_folders_are_refused(tmp_path):
    make_raw_tree(str(tmp_path), flat_validation=False)
    assert preflight.check_data_root(str(tmp_path)).raw_tree
    labels = tmp_path / "labels.txt"
    labels.write_text("n02123045\n")
    _refused(str(tmp_path), "has class folders", validation_labels=str(labels))
    _refused(str(tmp_path), "a raw tree becomes build_imagenet", record_format="tfds")


def test_labels_for_shards_are_refused():
    _refused(bundled.SAMPLE_DIR, "is for a raw ILSVRC-2012 tree", validation_labels="x.txt")
