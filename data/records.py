"""The ImageNet TFRecord contract: feature keys, the two record formats, the label convention.

Every module that reads or writes records imports its keys from here. Two formats exist in the
wild and both are accepted:

* ``build_imagenet``: TensorFlow's ``build_imagenet_data.py`` (the de-facto standard), labels
  1..1000 in sorted-synset order, 0 unused.
* ``tfds``: TensorFlow Datasets' ``imagenet2012``, labels 0..999.

Internally a class is its **0-based index** into the sorted ILSVRC-2012 synsets
(``data.imagenet_classes``); ``RecordFormat.label_offset`` converts a raw label to it.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Iterable, Mapping

# build_imagenet_data.py keys.
ENCODED = "image/encoded"
FORMAT = "image/format"
LABEL = "image/class/label"
SYNSET = "image/class/synset"
TEXT = "image/class/text"
HEIGHT = "image/height"
WIDTH = "image/width"
COLORSPACE = "image/colorspace"
CHANNELS = "image/channels"
FILENAME = "image/filename"
BBOX_XMIN = "image/object/bbox/xmin"
BBOX_YMIN = "image/object/bbox/ymin"
BBOX_XMAX = "image/object/bbox/xmax"
BBOX_YMAX = "image/object/bbox/ymax"
BBOX_LABEL = "image/object/bbox/label"

# TensorFlow Datasets imagenet2012 keys.
TFDS_IMAGE = "image"
TFDS_LABEL = "label"
TFDS_FILE_NAME = "file_name"

NUM_CLASSES = 1000
TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"
SPLITS = (TRAIN_SPLIT, VALIDATION_SPLIT)


class RecordFormatError(ValueError):
    """Records that match neither supported format, or a format name that does not exist."""


@dataclasses.dataclass(frozen=True)
class RecordFormat:
    """Where one record format keeps the image, the label and the file name."""

    name: str
    image_key: str
    label_key: str
    filename_key: str
    label_offset: int  # raw label - label_offset = 0-based class index

    @property
    def label_range(self) -> tuple[int, int]:
        """The inclusive range of valid raw labels."""
        return self.label_offset, self.label_offset + NUM_CLASSES - 1

    def class_index(self, raw_label: int) -> int:
        """The 0-based class index of a raw label; ValueError when out of range."""
        low, high = self.label_range
        if not low <= raw_label <= high:
            raise ValueError(
                f"label {raw_label} is outside {low}..{high} of the {self.name} format"
            )
        return raw_label - self.label_offset


BUILD_IMAGENET = RecordFormat(
    name="build_imagenet",
    image_key=ENCODED,
    label_key=LABEL,
    filename_key=FILENAME,
    label_offset=1,
)
TFDS = RecordFormat(
    name="tfds",
    image_key=TFDS_IMAGE,
    label_key=TFDS_LABEL,
    filename_key=TFDS_FILE_NAME,
    label_offset=0,
)
FORMATS: Mapping[str, RecordFormat] = {f.name: f for f in (BUILD_IMAGENET, TFDS)}


def get_format(name: str) -> RecordFormat:
    """The format called ``name``; a clear error listing the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise RecordFormatError(
            f"unknown record format {name!r}; expected one of {sorted(FORMATS)}"
        ) from None


def detect_format(feature_keys: Iterable[str], source: str = "the records") -> RecordFormat:
    """The format whose image and label keys are present among ``feature_keys``."""
    keys = set(feature_keys)
    for fmt in FORMATS.values():
        if {fmt.image_key, fmt.label_key} <= keys:
            return fmt
    expected = "; ".join(f"{f.name}: {f.image_key} + {f.label_key}" for f in FORMATS.values())
    raise RecordFormatError(
        f"{source} match no supported ImageNet record format (found keys {sorted(keys)}; "
        f"expected {expected})"
    )


def split_glob(split: str) -> str:
    """The file-name pattern of one split's shards, named as build_imagenet_data.py names them."""
    return f"{split}-*"


def split_pattern(data_root: str, split: str) -> str:
    """The path pattern of one split's shards under ``data_root``."""
    return os.path.join(data_root, split_glob(split))


def split_files(data_root: str, split: str) -> list[str]:
    """The shard files of one split; a clear error when the pattern matches nothing."""
    pattern = split_pattern(data_root, split)
    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"no {split} shards match {pattern!r}: --data-root must be a directory of "
            f"{split}-NNNNN-of-NNNNN TFRecord files"
        )
    return files


def shard_name(split: str, index: int, num_shards: int) -> str:
    """``train-00000-of-01024``: the shard naming of build_imagenet_data.py."""
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def make_example(
    encoded: bytes,
    class_index: int,
    synset: str,
    text: str,
    height: int,
    width: int,
    filename: str,
    bboxes: Iterable[tuple[float, float, float, float]] = (),
    colorspace: str = "RGB",
    channels: int = 3,
):
    """A tf.train.Example in the build_imagenet_data.py format (1-based label).

    build_imagenet_data.py converts PNG and CMYK files to RGB JPEGs and marks every record RGB
    with 3 channels; ``colorspace`` and ``channels`` describe bytes stored unconverted instead
    (a CMYK or grayscale JPEG), as the bundled sample does to exercise readers.
    """
    import tensorflow as tf

    def _bytes(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def _ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def _floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    bboxes = list(bboxes)
    label = class_index + BUILD_IMAGENET.label_offset
    features = {
        ENCODED: _bytes([encoded]),
        FORMAT: _bytes([b"JPEG"]),
        LABEL: _ints([label]),
        SYNSET: _bytes([synset.encode()]),
        TEXT: _bytes([text.encode()]),
        HEIGHT: _ints([height]),
        WIDTH: _ints([width]),
        COLORSPACE: _bytes([colorspace.encode()]),
        CHANNELS: _ints([channels]),
        FILENAME: _bytes([filename.encode()]),
        BBOX_XMIN: _floats([b[0] for b in bboxes]),
        BBOX_YMIN: _floats([b[1] for b in bboxes]),
        BBOX_XMAX: _floats([b[2] for b in bboxes]),
        BBOX_YMAX: _floats([b[3] for b in bboxes]),
        BBOX_LABEL: _ints([label] * len(bboxes)),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))
