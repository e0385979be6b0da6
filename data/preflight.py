"""What a data root holds, checked before anything runs: its layout and record format.

Two layouts are accepted. TFRecord shards (``train-*``, ``validation-*``) in one of the formats
of ``data.records``, detected from the first record and read through once, so that a corrupt or
truncated shard is named by file and record index instead of failing deep inside Beam. Or the
raw ILSVRC-2012 tree, as ImageNet ships it:

* ``train/<synset>/*.JPEG``: the folder names the class.
* ``val/<synset>/*.JPEG``, or flat ``val/*.JPEG`` plus a labels file: TensorFlow's
  ``imagenet_2012_validation_synset_labels.txt``, one synset per line, line *n* labelling
  ``ILSVRC2012_val_<n, 8 digits>.JPEG``. The devkit's ``ILSVRC2012_validation_ground_truth.txt``
  is refused with an explanation: its numbers are ILSVRC2012_IDs from ``meta.mat``, not indices
  into the sorted synsets.

The runner, the converter and the raw-tree example gen all read the layout from here, so a tree
the converter would refuse is refused by ``run`` too, before the pipeline starts.
"""

from __future__ import annotations

import dataclasses
import os

from data import imagenet_classes, records
from data.errors import UserError

TRAIN_DIR = "train"  # the raw tree's folders
VALIDATION_DIR = "val"


def class_folders_pattern(directory: str) -> str:
    """The files of a folder of synset folders."""
    return os.path.join(directory, "*", "*")


def flat_pattern(directory: str) -> str:
    """The files directly in a folder."""
    return os.path.join(directory, "*")


def raw_tree_patterns(flat_validation: bool) -> dict[str, str]:
    """Each split's files as a pattern relative to the tree's root."""
    validation = flat_pattern if flat_validation else class_folders_pattern
    return {
        records.TRAIN_SPLIT: class_folders_pattern(TRAIN_DIR),
        records.VALIDATION_SPLIT: validation(VALIDATION_DIR),
    }


@dataclasses.dataclass(frozen=True)
class RawSplit:
    """One split of a raw tree: its folder, and the labels of a flat validation folder."""

    name: str
    directory: str
    validation_labels: tuple[str, ...] | None = None  # line N labels ILSVRC2012_val_<N>

    @property
    def pattern(self) -> str:
        flat = self.validation_labels is not None
        return (flat_pattern if flat else class_folders_pattern)(self.directory)


@dataclasses.dataclass(frozen=True)
class DataInput:
    """A checked data root: where, in which record format, and how it is laid out."""

    root: str
    record_format: str  # a name in data.records.FORMATS; a raw tree becomes build_imagenet
    raw_tree: bool = False
    validation_labels: str | None = None  # the labels file of a raw tree's flat val/

    def describe(self) -> str:
        return "raw ILSVRC-2012 tree" if self.raw_tree else f"{self.record_format} records"


def is_raw_tree(data_root: str) -> bool:
    """A raw ILSVRC-2012 tree (``train/<synset>/*.JPEG``) rather than TFRecord shards."""
    return os.path.isdir(os.path.join(data_root, TRAIN_DIR))


def check_data_root(
    data_root: str, record_format: str = "auto", validation_labels: str | None = None
) -> DataInput:
    """The layout and record format of ``data_root``; UserError naming what is wrong."""
    data_root = os.path.abspath(data_root)
    if not os.path.isdir(data_root):
        raise UserError(f"--data-root {data_root!r} is not a directory")
    if validation_labels:
        validation_labels = os.path.abspath(validation_labels)
    if is_raw_tree(data_root):
        if record_format not in ("auto", records.BUILD_IMAGENET.name):
            raise UserError(
                f"--record-format {record_format}: a raw tree becomes build_imagenet records"
            )
        check_raw_tree(
            os.path.join(data_root, TRAIN_DIR),
            os.path.join(data_root, VALIDATION_DIR),
            validation_labels,
        )
        return DataInput(data_root, records.BUILD_IMAGENET.name, True, validation_labels)
    if validation_labels:
        raise UserError(
            f"--validation-labels is for a raw ILSVRC-2012 tree, but {data_root} holds no "
            f"{TRAIN_DIR}/ folder"
        )
    return DataInput(data_root, detect_shards_format(data_root, record_format))


def detect_shards_format(data_root: str, requested: str = "auto") -> str:
    """The record format of the shards under ``data_root``, every shard read through."""
    try:
        files = {split: records.split_files(data_root, split) for split in records.SPLITS}
    except FileNotFoundError as error:
        raise UserError(str(error)) from None
    import tensorflow as tf

    for split_files in files.values():
        for path in split_files:
            verify_shard(path)
    first_file = files[records.TRAIN_SPLIT][0]
    first = next(iter(tf.data.TFRecordDataset(first_file)), None)
    if first is None:
        raise UserError(f"{first_file} holds no records")
    example = tf.train.Example.FromString(first.numpy())
    try:
        detected = records.detect_format(example.features.feature, source=first_file)
    except records.RecordFormatError as error:
        raise UserError(str(error)) from None
    if requested not in ("auto", detected.name):
        raise UserError(
            f"--record-format {requested} but {first_file} is in the {detected.name} format"
        )
    return detected.name


def verify_shard(path: str) -> None:
    """Reads every record of a TFRecord file, checking its CRCs.

    ImportExampleGen would stop at the first bad record with a Beam error that names neither the
    file nor the record. Reading costs about a second per GB.
    """
    import tensorflow as tf

    from data.image_check import tf_error_reason

    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path):
            count += 1
    except tf.errors.OpError as error:
        raise UserError(
            f"{path}: record {count} (0-based) is unreadable ({tf_error_reason(error)}), and so "
            "is every record after it in this file. Replace the file, or move it out of "
            "--data-root."
        ) from None


# --- the raw tree ---------------------------------------------------------------------------


def is_synset(name: str) -> bool:
    try:
        imagenet_classes.index_of(name)
    except ValueError:
        return False
    return True


def check_raw_tree(
    train_dir: str, validation_dir: str, validation_labels: str | None = None
) -> tuple[RawSplit, RawSplit]:
    """The two splits of a raw tree; UserError for a tree that cannot be read as one."""
    subfolders, files = _subfolders_and_files(train_dir, "train")
    _check_class_folders(train_dir, subfolders, files, "train")
    train = RawSplit(records.TRAIN_SPLIT, train_dir)

    subfolders, files = _subfolders_and_files(validation_dir, "validation")
    if subfolders:
        if validation_labels:
            raise UserError(
                f"--validation-labels is for a flat validation folder, but {validation_dir!r} "
                "has class folders, which already label its images"
            )
        _check_class_folders(validation_dir, subfolders, files, "validation")
        return train, RawSplit(records.VALIDATION_SPLIT, validation_dir)
    if not validation_labels:
        raise UserError(
            f"the validation folder {validation_dir!r} holds images directly (flat layout); "
            "give --validation-labels imagenet_2012_validation_synset_labels.txt"
        )
    labels = read_validation_labels(validation_labels)
    return train, RawSplit(records.VALIDATION_SPLIT, validation_dir, labels)


def read_validation_labels(path: str) -> tuple[str, ...]:
    """The synsets of ILSVRC2012_val_00000001, _00000002, ... from a one-synset-a-line file."""
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "r") as labels_file:
            lines = [line.strip() for line in labels_file.read().splitlines()]
    except (OSError, tf.errors.OpError) as error:
        raise UserError(f"cannot read validation labels {path!r}: {error}") from None
    if not lines:
        raise UserError(f"validation labels {path!r} is empty")
    for number, synset in enumerate(lines, start=1):
        if synset.isdigit():
            raise UserError(
                f"{path}:{number}: {synset!r} is a number, not a synset: this looks like the "
                "devkit's ILSVRC2012_validation_ground_truth.txt, whose ILSVRC2012_IDs are not "
                "label indices; give imagenet_2012_validation_synset_labels.txt (one synset per "
                "line) instead"
            )
        if not is_synset(synset):
            raise UserError(f"{path}:{number}: {synset!r} is not an ILSVRC-2012 synset")
    return tuple(lines)


def _subfolders_and_files(folder: str, split: str) -> tuple[list[str], list[str]]:
    import tensorflow as tf

    if not tf.io.gfile.isdir(folder):
        raise UserError(f"the {split} folder {folder!r} is not a directory")
    entries = sorted(entry.rstrip("/") for entry in tf.io.gfile.listdir(folder))
    if not entries:
        raise UserError(f"the {split} folder {folder!r} is empty")
    subfolders = [e for e in entries if tf.io.gfile.isdir(os.path.join(folder, e))]
    return subfolders, [e for e in entries if e not in subfolders]


def _check_class_folders(folder: str, subfolders: list[str], files: list[str], split: str):
    if files:
        raise UserError(
            f"the {split} folder {folder!r} holds files directly ({files[0]!r}, ...) beside "
            f"class folders; expected {folder}/<synset>/*.JPEG"
        )
    unknown = [name for name in subfolders if not is_synset(name)]
    if unknown:
        shown = ", ".join(repr(name) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise UserError(
            f"the {split} folder {folder!r} has folders that are not ILSVRC-2012 synsets: "
            f"{shown}{more} (expected synset ids such as n01440764)"
        )
