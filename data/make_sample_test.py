"""The committed sample: byte-for-byte reproducible, big enough, labelled right, quirky."""

import collections
import dataclasses
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data import imagenet_classes, make_sample, records

SAMPLE_DIR = make_sample.DEFAULT_OUTPUT_DIR
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read(split: str) -> list[dict]:
    rows = []
    for path in records.split_files(str(SAMPLE_DIR), split):
        for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
            feature = tf.train.Example.FromString(serialized).features.feature
            rows.append(
                {
                    "encoded": feature[records.ENCODED].bytes_list.value[0],
                    "format": feature[records.FORMAT].bytes_list.value[0],
                    "label": feature[records.LABEL].int64_list.value[0],
                    "synset": feature[records.SYNSET].bytes_list.value[0].decode(),
                    "text": feature[records.TEXT].bytes_list.value[0].decode(),
                    "height": feature[records.HEIGHT].int64_list.value[0],
                    "width": feature[records.WIDTH].int64_list.value[0],
                    "channels": feature[records.CHANNELS].int64_list.value[0],
                    "filename": feature[records.FILENAME].bytes_list.value[0].decode(),
                }
            )
    return rows


@pytest.fixture(scope="module")
def sample() -> dict[str, list[dict]]:
    return {split: _read(split) for split in records.SPLITS}


def test_regenerating_gives_identical_files(tmp_path):
    stale = tmp_path / "train-00007-of-00009"
    stale.write_bytes(b"left over from an older layout")
    make_sample.main(["--output-dir", str(tmp_path)])

    committed = sorted(p.name for p in SAMPLE_DIR.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), name


def test_shards_are_named_as_build_imagenet_data_names_them():
    names = sorted(p.name for p in SAMPLE_DIR.glob("*-of-*"))
    assert names == ["train-00000-of-00002", "train-00001-of-00002", "validation-00000-of-00001"]


def test_counts_and_balance(sample):
    assert len(sample["train"]) >= 300
    assert len(sample["validation"]) >= 60
    for rows in sample.values():
        per_class = collections.Counter(row["label"] for row in rows)
        assert len(per_class) >= 6
        assert max(per_class.values()) <= 1.5 * min(per_class.values())
    assert {r["label"] for r in sample["train"]} == {r["label"] for r in sample["validation"]}


def test_total_size_at_most_10_mb():
    assert sum(p.stat().st_size for p in SAMPLE_DIR.iterdir()) <= 10 * 1024 * 1024


def test_labels_agree_with_the_class_list(sample):
    for rows in sample.values():
        for row in rows:
            index = imagenet_classes.index_of(row["synset"])
            assert row["label"] == index + 1, row["filename"]  # build_imagenet: 1-based
            assert row["text"] == imagenet_classes.name_of(index)


def test_every_image_decodes_to_its_recorded_size(sample):
    for rows in sample.values():
        for row in rows:
            image = tf.io.decode_image(row["encoded"], channels=3, expand_animations=False)
            assert image.shape == (row["height"], row["width"], 3), row["filename"]


def test_filenames_are_unique_and_imagenet_style(sample):
    train = [row["filename"] for row in sample["train"]]
    validation = [row["filename"] for row in sample["validation"]]
    assert len(set(train)) == len(train) and len(set(validation)) == len(validation)
    assert all(row["filename"].startswith(row["synset"] + "_") for row in sample["train"])
    assert validation[0] == "ILSVRC2012_val_00000001.JPEG"
    assert all(name.endswith(".JPEG") for name in train + validation)


def test_no_validation_image_repeats_a_training_image(sample):
    train = {row["encoded"] for row in sample["train"]}
    assert not any(row["encoded"] in train for row in sample["validation"])


@pytest.mark.parametrize("split", records.SPLITS)
def test_imagenet_quirks_are_present(sample, split):
    rows = sample[split]
    modes = {row["filename"]: Image.open(io.BytesIO(row["encoded"])).mode for row in rows}

    cmyk = [r for r in rows if modes[r["filename"]] == "CMYK"]
    assert len(cmyk) == 1 and cmyk[0]["channels"] == 4

    grayscale = [r for r in rows if modes[r["filename"]] == "L"]
    assert len(grayscale) == 1 and grayscale[0]["channels"] == 1

    png = [r for r in rows if r["encoded"].startswith(PNG_MAGIC)]
    assert len(png) == 1
    assert png[0]["format"] == b"JPEG" and png[0]["filename"].endswith(".JPEG")
    # The reason readers must use decode_image: the JPEG-only decoder refuses these bytes.
    with pytest.raises(tf.errors.InvalidArgumentError, match="PNG"):
        tf.image.decode_and_crop_jpeg(png[0]["encoded"], [0, 0, 8, 8], channels=3)

    long_sides = sorted(max(r["height"], r["width"]) for r in rows)
    assert long_sides[0] <= 48  # a tiny image, like ImageNet's smallest
    assert long_sides[-1] >= 1800  # a huge one
    assert long_sides[1] >= 200 and long_sides[-2] <= 400  # the rest are ordinary sizes


def test_crops_stay_inside_their_photograph():
    # Rendered from all-white stand-ins, any pixel sampled outside a photograph shows as dark.
    for split in records.SPLITS:
        aug = make_sample.AUGMENTATION[split]
        rng = np.random.default_rng(aug.seed)
        for photo in make_sample.PHOTOS:
            region = photo.region or (0, 0, *photo.load().size)
            white = Image.new("RGB", (region[2] - region[0], region[3] - region[1]), "white")
            for _ in range(aug.per_class):
                v = make_sample._draw(rng, aug, photo, white.size)
                v = dataclasses.replace(v, brightness=1.0, contrast=1.0, saturation=1.0)
                rendered = make_sample._render(white, v, round(max(v.size)))
                assert np.asarray(rendered).min() == 255, (split, photo.synset)
