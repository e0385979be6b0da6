"""The raw-ImageNet converter, run for real (Beam DirectRunner) on a small tree of real photos."""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image
from sklearn.datasets import load_sample_image

from data import convert, preflight
from data.errors import UserError

# The classes of the tree and their build_imagenet_data.py labels: the 1-based line of each
# synset in the sorted ILSVRC-2012 synset list.
TABBY, PALACE, ESPRESSO, DAISY = "n02123045", "n03877845", "n07920052", "n11939491"
LABELS = {TABBY: 282, PALACE: 699, ESPRESSO: 968, DAISY: 986}

CORRUPT = f"{DAISY}_3.JPEG"
CMYK = f"{TABBY}_2.JPEG"
GREY = f"{TABBY}_3.JPEG"
PNG = f"{ESPRESSO}_2.JPEG"
# The good training files: name -> synset.
TRAIN = {
    f"{TABBY}_1.JPEG": TABBY,
    CMYK: TABBY,
    GREY: TABBY,
    f"{ESPRESSO}_1.JPEG": ESPRESSO,
    PNG: ESPRESSO,
    f"{PALACE}_1.JPEG": PALACE,
    f"{PALACE}_2.JPEG": PALACE,
    f"{DAISY}_1.JPEG": DAISY,
    f"{DAISY}_2.JPEG": DAISY,
}
VALIDATION = {
    "ILSVRC2012_val_00000001.JPEG": TABBY,
    "ILSVRC2012_val_00000002.JPEG": ESPRESSO,
    "ILSVRC2012_val_00000003.JPEG": PALACE,
    "ILSVRC2012_val_00000004.JPEG": DAISY,
}
UNLABELLED_VALIDATION = "ILSVRC2012_val_00000005.JPEG"  # beyond the 4 lines of the labels file


def _photos() -> dict[str, np.ndarray]:
    return {
        TABBY: skimage.data.chelsea(),  # Chelsea, a tabby cat
        ESPRESSO: skimage.data.coffee(),  # a cup of coffee
        PALACE: load_sample_image("china.jpg"),  # a Chinese temple building
        DAISY: load_sample_image("flower.jpg"),  # a flower
    }


def _save(path: str, pixels: np.ndarray, image_format: str = "JPEG", mode: str = "RGB") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path, image_format, quality=90)


def _box_xml(width: int, height: int, objects: list[tuple[str, tuple[int, ...]]]) -> str:
    boxes = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, (x0, y0, x1, y1) in objects
    )
    return (
        f"<annotation><size><width>{width}</width><height>{height}</height>"
        f"<depth>3</depth></size>{boxes}</annotation>"
    )


def make_raw_tree(root: str, flat_validation: bool = True) -> None:
    """root/train/<synset>/*.JPEG, root/val/ (flat + root/labels.txt, or by synset), root/bbox/.

    Training crops and validation crops differ, so no record is a copy of another.
    """
    photos = _photos()
    for synset, pixels in photos.items():
        _save(f"{root}/train/{synset}/{synset}_1.JPEG", pixels[:300, :400])
        if synset != TABBY:
            _save(f"{root}/train/{synset}/{synset}_2.JPEG", pixels[60:280, 100:380])
    _save(f"{root}/train/{TABBY}/{CMYK}", photos[TABBY][40:260, 50:350], mode="CMYK")
    _save(f"{root}/train/{TABBY}/{GREY}", photos[TABBY][:200, 200:], mode="L")
    _save(f"{root}/train/{ESPRESSO}/{PNG}", photos[ESPRESSO][100:300, 200:500], "PNG")
    with open(f"{root}/train/{DAISY}/{DAISY}_1.JPEG", "rb") as good:
        truncated = good.read()[:4000]
    with open(f"{root}/train/{DAISY}/{CORRUPT}", "wb") as corrupt:
        corrupt.write(truncated)

    for name, synset in VALIDATION.items():
        folder = f"{root}/val" if flat_validation else f"{root}/val/{synset}"
        _save(f"{folder}/{name}", photos[synset][100:300, 150:450])
    if flat_validation:
        _save(f"{root}/val/{UNLABELLED_VALIDATION}", photos[DAISY][:200, :200])
        with open(f"{root}/labels.txt", "w") as labels:
            labels.write("".join(f"{VALIDATION[name]}\n" for name in sorted(VALIDATION)))

    os.makedirs(f"{root}/bbox/{TABBY}")
    os.makedirs(f"{root}/bbox/{ESPRESSO}")
    os.makedirs(f"{root}/bbox/val")
    with open(f"{root}/bbox/{TABBY}/{TABBY}_1.xml", "w") as xml:
        # The second box reaches past the 400x300 image; the third is of another class.
        objects = [(TABBY, (100, 30, 300, 270)), (TABBY, (200, 150, 420, 300))]
        xml.write(_box_xml(400, 300, [*objects, (ESPRESSO, (0, 0, 10, 10))]))
    with open(f"{root}/bbox/val/ILSVRC2012_val_00000002.xml", "w") as xml:
        xml.write(_box_xml(300, 200, [(ESPRESSO, (30, 20, 270, 180))]))
    with open(f"{root}/bbox/{ESPRESSO}/{ESPRESSO}_1.xml", "w") as xml:
        xml.write("<annotation><size><width>400</width>")  # cut short


def _convert(
    root: str, output_dir: str, labels: str | None = None, boxes_dir: str | None = None
) -> convert.Conversion:
    """The conversion ``alexnet-tfx convert-imagenet`` runs: the tree checked, then Beam."""
    train, validation = preflight.check_raw_tree(f"{root}/train", f"{root}/val", labels)
    return convert.convert([(train, 3), (validation, 2)], output_dir, boxes_dir)


def _read(shard_path: str) -> list[dict]:
    records = []
    for serialized in tf.data.TFRecordDataset(shard_path).as_numpy_iterator():
        feature = tf.train.Example.FromString(serialized).features.feature
        records.append(
            {
                key.split("/", 1)[1]: list(
                    getattr(feature[key], feature[key].WhichOneof("kind")).value
                )
                for key in feature
            }
        )
    return records


def _shuffle_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("raw"))
    make_raw_tree(root)
    return root


@pytest.fixture(scope="module")
def converted(tree, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("converted"))
    conversion = _convert(tree, output_dir, f"{tree}/labels.txt", f"{tree}/bbox")
    shards = {
        name: _read(os.path.join(output_dir, name))
        for name in os.listdir(output_dir)
        if name != "manifest.json"
    }
    by_file = {r["filename"][0].decode(): r for records in shards.values() for r in records}
    with open(os.path.join(output_dir, "manifest.json")) as manifest:
        written = json.load(manifest)
    assert conversion.manifest == written
    assert conversion.counters["images_converted"] == 13
    return {"dir": output_dir, "shards": shards, "by_file": by_file, "manifest": written}


def test_writes_the_planned_shards_and_a_manifest(converted):
    assert sorted(os.listdir(converted["dir"])) == [
        "manifest.json",
        "train-00000-of-00003",
        "train-00001-of-00003",
        "train-00002-of-00003",
        "validation-00000-of-00002",
        "validation-00001-of-00002",
    ]


def test_every_good_file_is_one_record_with_its_label(converted):
    files = [r["filename"][0].decode() for records in converted["shards"].values() for r in records]
    assert sorted(files) == sorted([*TRAIN, *VALIDATION])
    for name, synset in {**TRAIN, **VALIDATION}.items():
        record = converted["by_file"][name]
        assert record["class/synset"] == [synset.encode()]
        assert record["class/label"] == [LABELS[synset]]
        assert record["format"] == [b"JPEG"]
        assert record["colorspace"] == [b"RGB"] and record["channels"] == [3]
    assert converted["by_file"][f"{TABBY}_1.JPEG"]["class/text"] == [b"tabby"]


def test_splits_hold_their_own_files(converted):
    for shard, records in converted["shards"].items():
        expected = TRAIN if shard.startswith("train-") else VALIDATION
        assert {r["filename"][0].decode() for r in records} <= set(expected)


def _source_path(tree: str, name: str) -> str:
    if name in VALIDATION:
        return f"{tree}/val/{name}"
    return f"{tree}/train/{TRAIN[name]}/{name}"


def test_images_are_jpegs_of_the_source_pixels(converted, tree):
    for name in {**TRAIN, **VALIDATION}:
        record = converted["by_file"][name]
        encoded = record["encoded"][0]
        # The accurate IDCT, so that only the encoding's error is measured, not the decoder's.
        decoded = tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE").numpy()
        assert decoded.shape == (record["height"][0], record["width"][0], 3)
        with open(_source_path(tree, name), "rb") as source_file:
            source_bytes = source_file.read()
        source = np.asarray(Image.open(io.BytesIO(source_bytes)).convert("RGB"), dtype=float)
        assert np.abs(decoded - source).mean() < 1.0, name
        if name in (CMYK, PNG):
            assert Image.open(io.BytesIO(encoded)).mode == "RGB"
            assert encoded != source_bytes
        else:  # RGB and grey JPEGs pass through untouched, as in build_imagenet_data.py
            assert encoded == source_bytes


def test_shard_and_order_come_from_a_hash_of_the_file_name(converted):
    for shard, records in converted["shards"].items():
        index, count = int(shard[-14:-9]), int(shard[-5:])
        keys = [_shuffle_key(r["filename"][0].decode()) for r in records]
        assert all(key % count == index for key in keys), shard
        assert keys == sorted(keys), shard


def test_bounding_boxes_are_normalised_clipped_and_of_the_image_class(converted):
    record = converted["by_file"][f"{TABBY}_1.JPEG"]  # 400 x 300
    assert record["object/bbox/xmin"] == pytest.approx([100 / 400, 200 / 400])
    assert record["object/bbox/ymin"] == pytest.approx([30 / 300, 150 / 300])
    assert record["object/bbox/xmax"] == pytest.approx([300 / 400, 1.0])
    assert record["object/bbox/ymax"] == pytest.approx([270 / 300, 1.0])
    assert record["object/bbox/label"] == [LABELS[TABBY]] * 2
    record = converted["by_file"]["ILSVRC2012_val_00000002.JPEG"]  # 300 x 200
    assert record["object/bbox/xmin"] == pytest.approx([0.1])
    assert record["object/bbox/ymax"] == pytest.approx([0.9])
    assert record["object/bbox/label"] == [LABELS[ESPRESSO]]
    assert converted["by_file"][f"{ESPRESSO}_1.JPEG"]["object/bbox/xmin"] == []


def test_manifest_counts_and_rejects(converted, tree):
    manifest = converted["manifest"]
    train, validation = manifest["splits"]["train"], manifest["splits"]["validation"]
    assert train["records"] == 9 and validation["records"] == 4
    assert train["classes"] == {TABBY: 3, PALACE: 2, ESPRESSO: 2, DAISY: 2}
    assert validation["classes"] == {TABBY: 1, PALACE: 1, ESPRESSO: 1, DAISY: 1}
    assert train["shards"] == [f"train-0000{i}-of-00003" for i in range(3)]
    assert validation["shards"] == [f"validation-0000{i}-of-00002" for i in range(2)]
    for split in (train, validation):
        shard_counts = [len(converted["shards"][s]) for s in split["shards"]]
        assert sum(shard_counts) == split["records"]
    assert train["rejects"] == 1 and validation["rejects"] == 1
    rejects = {r["path"]: r for r in manifest["rejects"]}
    assert set(rejects) == {
        f"{tree}/bbox/{ESPRESSO}/{ESPRESSO}_1.xml",
        f"{tree}/train/{DAISY}/{CORRUPT}",
        f"{tree}/val/{UNLABELLED_VALIDATION}",
    }
    assert rejects[f"{tree}/train/{DAISY}/{CORRUPT}"]["split"] == "train"
    assert "truncated" in rejects[f"{tree}/train/{DAISY}/{CORRUPT}"]["reason"].lower()
    assert (
        "no line in the validation labels"
        in rejects[f"{tree}/val/{UNLABELLED_VALIDATION}"]["reason"]
    )
    assert rejects[f"{tree}/bbox/{ESPRESSO}/{ESPRESSO}_1.xml"]["split"] == "bounding_boxes"


def test_rerun_writes_identical_bytes(converted, tree, tmp_path):
    _convert(tree, str(tmp_path), f"{tree}/labels.txt", f"{tree}/bbox")
    for name in os.listdir(converted["dir"]):
        with (
            open(os.path.join(converted["dir"], name), "rb") as first,
            open(tmp_path / name, "rb") as second,
        ):
            assert first.read() == second.read(), name


def test_validation_in_synset_folders(tmp_path):
    root = str(tmp_path / "raw")
    make_raw_tree(root, flat_validation=False)
    _convert(root, str(tmp_path / "out"))
    records = [
        r for i in range(2) for r in _read(str(tmp_path / f"out/validation-0000{i}-of-00002"))
    ]
    labels = {r["filename"][0].decode(): r["class/label"][0] for r in records}
    assert labels == {name: LABELS[synset] for name, synset in VALIDATION.items()}


# --- user errors: refused before any work, with what is wrong ---------------------------------


def _error(root: str, output_dir: str, labels: str | None = None) -> str:
    with pytest.raises(UserError) as error:
        _convert(root, output_dir, labels)
    assert not os.path.exists(output_dir)
    return str(error.value)


def test_missing_directory(tmp_path):
    message = _error(str(tmp_path / "nowhere"), str(tmp_path / "out"))
    assert f"the train folder '{tmp_path}/nowhere/train' is not a directory" in message


def test_unknown_synset_folder(tmp_path):
    root = str(tmp_path / "raw")
    make_raw_tree(root)
    _save(f"{root}/train/cats/cat.JPEG", skimage.data.chelsea())
    message = _error(root, str(tmp_path / "out"), f"{root}/labels.txt")
    assert "not ILSVRC-2012 synsets: 'cats'" in message
    assert f"{root}/train" in message


def test_flat_validation_needs_labels(tree, tmp_path):
    message = _error(tree, str(tmp_path / "out"))
    assert "--validation-labels" in message and "flat" in message


def test_devkit_ground_truth_is_refused_with_the_reason(tree, tmp_path):
    devkit = tmp_path / "ILSVRC2012_validation_ground_truth.txt"
    devkit.write_text("490\n361\n171\n822\n")
    message = _error(tree, str(tmp_path / "out"), str(devkit))
    assert f"{devkit}:1" in message and "ILSVRC2012_IDs" in message


def test_labels_naming_an_unknown_synset(tree, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text(f"{TABBY}\nn99999999\n")
    message = _error(tree, str(tmp_path / "out"), str(labels))
    assert f"{labels}:2: 'n99999999' is not an ILSVRC-2012 synset" in message


def test_empty_train_directory(tmp_path):
    (tmp_path / "train").mkdir()
    message = _error(str(tmp_path), str(tmp_path / "out"))
    assert "is empty" in message


def test_refuses_to_mix_with_shards_of_another_run(tree, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train-00000-of-00004").write_bytes(b"")
    with pytest.raises(UserError, match="train-00000-of-00004"):
        _convert(tree, str(tmp_path / "out"), f"{tree}/labels.txt")
