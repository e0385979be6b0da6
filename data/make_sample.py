"""Regenerates ``data/sample``: a small ImageNet-format dataset made of real photographs.

The sample is the default ``--data-root``, so the pipeline runs out of the box with no download.
Its photographs ship inside packages already installed (scikit-learn, scikit-image, matplotlib),
each labelled with the ILSVRC-2012 class it truly shows. One photograph per class is stretched to
hundreds of records by random crops, rotations, flips, colour jitter, sizes and JPEG qualities;
validation draws its own, milder augmentations from another seed, so no validation image copies a
training one (it measures robustness to these variations, not generalisation to new photos).
A few records carry ImageNet's real quirks: a CMYK JPEG, a PNG named .JPEG, a grayscale JPEG, a
tiny and a huge image.

Everything is deterministic (fixed seeds, fixed encoder settings, fixed record order, protobuf
maps serialized sorted), so with the pinned packages the output is byte-for-byte reproducible:
``python -m data.make_sample [--output-dir DIR]``. It also writes ``SOURCES.md``, which says
where each photograph came from, its licence, and why it has its label.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import pathlib
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageEnhance

from data import bundled, imagenet_classes, records

DEFAULT_OUTPUT_DIR = pathlib.Path(bundled.SAMPLE_DIR)
SOURCES_FILE = "SOURCES.md"
NUM_SHARDS = {records.TRAIN_SPLIT: 2, records.VALIDATION_SPLIT: 1}

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


def _sklearn(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name))


def _skimage(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _matplotlib(name: str) -> Image.Image:
    from matplotlib import cbook

    with cbook.get_sample_data(name) as file:
        return Image.open(file).convert("RGB")


@dataclasses.dataclass(frozen=True)
class Photo:
    """One bundled photograph and the class it shows."""

    synset: str
    origin: str  # how to load it
    licence: str
    why: str  # why the label is right
    load: Callable[[], Image.Image]
    region: Box | None  # the part of the photograph used; None = all of it
    subject: Box  # where the labelled object is, within the region; crops centre on it


PHOTOS = (
    Photo(
        synset="n02123045",
        origin="scikit-image `skimage.data.chelsea()` (Chelsea the cat)",
        licence="CC0, photographer Stefan van der Walt",
        why="a domestic cat with a tawny coat striped and mottled in black, the 'M' mark on its "
        "forehead: WordNet's tabby ('a cat with a grey or tawny coat mottled with black')",
        load=lambda: _skimage("chelsea"),
        region=None,
        subject=(0, 0, 451, 300),
    ),
    Photo(
        synset="n07920052",
        origin="scikit-image `skimage.data.coffee()` (courtesy of Pikolo Espresso Bar)",
        licence="CC0, photographer Rachel Michetti",
        why="a demitasse of espresso with crema on its saucer, photographed at an espresso bar",
        load=lambda: _skimage("coffee"),
        region=None,
        subject=(40, 30, 510, 400),
    ),
    Photo(
        synset="n03763968",
        origin="matplotlib `cbook.get_sample_data('grace_hopper.jpg')`",
        licence="public domain (official U.S. Navy portrait of Rear Admiral Grace Hopper)",
        why="a naval officer in dress uniform: the officer's cap with insignia, the uniform "
        "jacket with ribbons and name tag",
        load=lambda: _matplotlib("grace_hopper.jpg"),
        region=None,
        subject=(30, 20, 512, 600),
    ),
    Photo(
        synset="n03877845",
        origin="scikit-learn `load_sample_image('china.jpg')`",
        licence="CC BY 2.0, danielbuechele on Flickr (see scikit-learn's images/README.txt)",
        why="the Tower of Buddhist Incense in the Summer Palace, Beijing, an imperial palace",
        load=lambda: _sklearn("china.jpg"),
        region=None,
        subject=(60, 25, 360, 395),
    ),
    Photo(
        synset="n04266014",
        origin="scikit-image `skimage.data.astronaut()`, the top-right corner only",
        licence="public domain (NASA portrait of astronaut Eileen Collins)",
        why="the model of the Space Shuttle stack (orbiter, external tank, boosters) standing "
        "behind the astronaut; the region excludes her",
        load=lambda: _skimage("astronaut"),
        region=(320, 0, 500, 290),
        subject=(30, 0, 150, 280),
    ),
    Photo(
        synset="n04485082",
        origin="scikit-image `skimage.data.camera()` (grayscale)",
        licence="CC0, photographer Lav Varshney",
        why="a video camera on a three-legged tripod in the foreground, its operator behind it; "
        "crops centre on the tripod",
        load=lambda: _skimage("camera"),
        region=None,
        subject=(220, 135, 410, 512),
    ),
    Photo(
        synset="n04548280",
        origin="scikit-image `skimage.data.clock()` (grayscale, motion-blurred)",
        licence="public domain, photographer Stefan van der Walt",
        why="scikit-image describes it as 'this photograph of a wall clock': a round clock "
        "hanging on a plain wall",
        load=lambda: _skimage("clock"),
        region=None,
        subject=(135, 85, 280, 220),
    ),
)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The random variation of one split's records."""

    seed: int
    per_class: int
    min_area: float  # smallest crop, as a fraction of the region's area
    max_aspect: float  # crop width/height within [1/max_aspect, max_aspect]
    max_rotation: float  # degrees either way
    jitter: float  # brightness, contrast and saturation factors within 1 +- jitter
    quality: tuple[int, int]  # JPEG quality range, inclusive
    long_side: tuple[int, int]  # output long side range in pixels, inclusive


AUGMENTATION = {
    records.TRAIN_SPLIT: Augmentation(
        seed=20120,
        per_class=44,
        min_area=0.3,
        max_aspect=4 / 3,
        max_rotation=10.0,
        jitter=0.3,
        quality=(60, 95),
        long_side=(200, 400),
    ),
    records.VALIDATION_SPLIT: Augmentation(
        seed=20121,
        per_class=10,
        min_area=0.5,
        max_aspect=5 / 4,
        max_rotation=4.0,
        jitter=0.15,
        quality=(75, 92),
        long_side=(240, 360),
    ),
}

# The quirks, each given to the first record of one class: (quirk, synset).
QUIRKS = {
    records.TRAIN_SPLIT: (
        ("cmyk", "n07920052"),
        ("png", "n02123045"),
        ("grayscale", "n03763968"),
        ("small", "n04548280"),
        ("large", "n03877845"),
    ),
    records.VALIDATION_SPLIT: (
        ("cmyk", "n03877845"),
        ("png", "n04266014"),
        ("grayscale", "n02123045"),
        ("small", "n07920052"),
        ("large", "n03763968"),
    ),
}
QUIRK_TEXT = {
    "cmyk": "CMYK JPEG (4 channels), as 22 ILSVRC-2012 training and 1 validation image are",
    "png": "PNG bytes under a .JPEG name, format JPEG (like n02105855_2933.JPEG)",
    "grayscale": "grayscale JPEG (1 channel)",
    "small": "tiny image, 40 px on the long side",
    "large": "large image, 2000 px on the long side",
}
QUIRK_LONG_SIDE = {"small": 40, "large": 2000}


@dataclasses.dataclass(frozen=True)
class Variation:
    """The drawn parameters of one record."""

    centre: tuple[float, float]  # crop centre in region pixels
    size: tuple[float, float]  # crop width, height in region pixels
    rotation: float
    flip: bool
    brightness: float
    contrast: float
    saturation: float
    quality: int
    long_side: int


def _footprint(width: float, height: float, degrees: float) -> tuple[float, float]:
    """The size of the box around a width x height crop rotated by ``degrees``.

    Crops are placed so that this box fits in the photograph: no corner comes out empty.
    """
    cos, sin = math.cos(math.radians(abs(degrees))), math.sin(math.radians(abs(degrees)))
    return width * cos + height * sin, width * sin + height * cos


def _centre(rng: np.random.Generator, low: float, high: float, half: float, extent: int):
    """A centre within the subject's [low, high] where a crop of half-size ``half`` still fits."""
    low, high = max(low, half), min(high, extent - half)
    if low >= high:  # the subject touches the edge: the closest position that fits
        return min(max((low + high) / 2, half), extent - half)
    return rng.uniform(low, high)


def _draw(
    rng: np.random.Generator, aug: Augmentation, photo: Photo, region_size: tuple[int, int]
) -> Variation:
    width, height = region_size
    area = rng.uniform(aug.min_area, 1.0) * width * height
    aspect = math.exp(rng.uniform(-math.log(aug.max_aspect), math.log(aug.max_aspect)))
    rotation = rng.uniform(-aug.max_rotation, aug.max_rotation)
    crop_w, crop_h = math.sqrt(area * aspect), math.sqrt(area / aspect)
    outer_w, outer_h = _footprint(crop_w, crop_h, rotation)
    shrink = min(1.0, width / outer_w, height / outer_h)
    crop_w, crop_h, outer_w, outer_h = (v * shrink for v in (crop_w, crop_h, outer_w, outer_h))
    x0, y0, x1, y1 = photo.subject
    return Variation(
        centre=(
            _centre(rng, x0, x1, outer_w / 2, width),
            _centre(rng, y0, y1, outer_h / 2, height),
        ),
        size=(crop_w, crop_h),
        rotation=rotation,
        flip=bool(rng.random() < 0.5),
        brightness=rng.uniform(1 - aug.jitter, 1 + aug.jitter),
        contrast=rng.uniform(1 - aug.jitter, 1 + aug.jitter),
        saturation=rng.uniform(1 - aug.jitter, 1 + aug.jitter),
        quality=int(rng.integers(aug.quality[0], aug.quality[1] + 1)),
        long_side=int(rng.integers(aug.long_side[0], aug.long_side[1] + 1)),
    )


def _render(region: Image.Image, v: Variation, long_side: int) -> Image.Image:
    """The region cropped, rotated, flipped, resized and colour-jittered as ``v`` says."""
    (cx, cy), width, height = v.centre, round(v.size[0]), round(v.size[1])
    cos, sin = math.cos(math.radians(v.rotation)), math.sin(math.radians(v.rotation))
    # One affine map from crop pixels to region pixels: rotate about the crop centre.
    image = region.transform(
        (width, height),
        Image.Transform.AFFINE,
        (
            cos,
            -sin,
            cx - cos * width / 2 + sin * height / 2,
            sin,
            cos,
            cy - sin * width / 2 - cos * height / 2,
        ),
        resample=Image.Resampling.BICUBIC,
    )
    if v.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    image = ImageEnhance.Brightness(image).enhance(v.brightness)
    image = ImageEnhance.Contrast(image).enhance(v.contrast)
    return ImageEnhance.Color(image).enhance(v.saturation)


def encode(image: Image.Image, quirk: str | None, quality: int) -> tuple[bytes, str, int]:
    """(bytes, colorspace, channels); PNG and the JPEG encoder settings are fixed."""
    buffer = io.BytesIO()
    if quirk == "png":
        image.save(buffer, "PNG", compress_level=6)
        return buffer.getvalue(), "RGB", 3
    mode, colorspace, channels = {
        "cmyk": ("CMYK", "CMYK", 4),
        "grayscale": ("L", "Grayscale", 1),
    }.get(quirk, ("RGB", "RGB", 3))
    image.convert(mode).save(buffer, "JPEG", quality=quality, subsampling=2, optimize=False)
    return buffer.getvalue(), colorspace, channels


@dataclasses.dataclass(frozen=True)
class Record:
    """One record to write, with what the generator knows about it."""

    split: str
    synset: str
    quirk: str | None
    serialized: bytes
    filename: str
    size: tuple[int, int]


def _split_records(split: str, regions: dict[str, Image.Image]) -> list[Record]:
    """All records of one split in their written order (shuffled, as build_imagenet_data.py)."""
    aug = AUGMENTATION[split]
    rng = np.random.default_rng(aug.seed)
    quirk_of = {synset: quirk for quirk, synset in QUIRKS[split]}
    drawn = []
    for photo in PHOTOS:
        for k in range(aug.per_class):
            quirk = quirk_of.get(photo.synset) if k == 0 else None
            drawn.append((photo, k, quirk, _draw(rng, aug, photo, regions[photo.synset].size)))
    order = rng.permutation(len(drawn))

    result = []
    for position, i in enumerate(order):
        photo, k, quirk, v = drawn[i]
        image = _render(regions[photo.synset], v, QUIRK_LONG_SIDE.get(quirk, v.long_side))
        encoded, colorspace, channels = encode(image, quirk, v.quality)
        if split == records.TRAIN_SPLIT:
            filename = f"{photo.synset}_{k + 1}.JPEG"
        else:
            filename = f"ILSVRC2012_val_{position + 1:08d}.JPEG"
        index = imagenet_classes.index_of(photo.synset)
        example = records.make_example(
            encoded=encoded,
            class_index=index,
            synset=photo.synset,
            text=imagenet_classes.name_of(index),
            height=image.height,
            width=image.width,
            filename=filename,
            colorspace=colorspace,
            channels=channels,
        )
        result.append(
            Record(
                split=split,
                synset=photo.synset,
                quirk=quirk,
                serialized=example.SerializeToString(deterministic=True),
                filename=filename,
                size=image.size,
            )
        )
    return result


def _load_regions() -> dict[str, Image.Image]:
    regions = {}
    for photo in PHOTOS:
        image = photo.load()
        regions[photo.synset] = image.crop(photo.region) if photo.region else image
    return regions


def _write_shards(output_dir: pathlib.Path, split: str, split_records: Sequence[Record]):
    import tensorflow as tf

    for stale in output_dir.glob(f"{split}-*"):
        stale.unlink()
    num_shards = NUM_SHARDS[split]
    for shard, chunk in enumerate(np.array_split(np.arange(len(split_records)), num_shards)):
        path = output_dir / records.shard_name(split, shard, num_shards)
        with tf.io.TFRecordWriter(str(path)) as writer:
            for i in chunk:
                writer.write(split_records[i].serialized)


def _sources_markdown(all_records: Sequence[Record], shard_bytes: int) -> str:
    lines = [
        "# The bundled sample: sources and licences",
        "",
        "Generated by `python -m data.make_sample` (do not edit by hand). Records are in the",
        "`build_imagenet_data.py` format (`data/records.py`), labels 1..1000 in sorted-synset "
        "order.",
        "",
        "## Photographs",
        "",
        "| label | synset | class | photograph | licence | why this class |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for photo in PHOTOS:
        index = imagenet_classes.index_of(photo.synset)
        name = imagenet_classes.name_of(index)
        region = f"; region {photo.region}" if photo.region else ""
        lines.append(
            f"| {index + 1} | {photo.synset} | {name} | {photo.origin}{region} | "
            f"{photo.licence} | {photo.why} |"
        )
    lines += [
        "",
        "## Augmentation",
        "",
        "Each record is a crop centred inside the labelled object's box and rotated about its",
        "centre, placed so its rotated footprint stays inside the photograph (no empty corners),",
        "then optionally mirrored, resized (Lanczos) to a random long side, jittered in",
        "brightness, contrast and saturation, and JPEG-encoded (Pillow, 4:2:0, no optimisation)",
        "at a random quality. Validation uses another seed and milder ranges. With one",
        "photograph per class, validation measures robustness to these variations, not",
        "generalisation to unseen photographs.",
        "",
        "| split | seed | per class | crop area | aspect | rotation | jitter | JPEG quality "
        "| long side |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, aug in AUGMENTATION.items():
        lines.append(
            f"| {split} | {aug.seed} | {aug.per_class} | {aug.min_area:g}..1 | "
            f"1/{aug.max_aspect:.3g}..{aug.max_aspect:.3g} | +-{aug.max_rotation:g} deg | "
            f"+-{aug.jitter:g} | {aug.quality[0]}..{aug.quality[1]} | "
            f"{aug.long_side[0]}..{aug.long_side[1]} px |"
        )
    lines += [
        "",
        "## ImageNet's quirks",
        "",
        "`tf.io.decode_image` reads them all; `tf.image.decode_and_crop_jpeg` refuses the PNG.",
        "",
        "| split | file | class | quirk | size |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in all_records:
        if record.quirk:
            name = imagenet_classes.name_of(imagenet_classes.index_of(record.synset))
            lines.append(
                f"| {record.split} | {record.filename} | {name} | {QUIRK_TEXT[record.quirk]} | "
                f"{record.size[0]}x{record.size[1]} |"
            )
    counts = {split: sum(r.split == split for r in all_records) for split in records.SPLITS}
    lines += [
        "",
        "## Totals",
        "",
        f"{len(PHOTOS)} classes; {counts[records.TRAIN_SPLIT]} train records in "
        f"{NUM_SHARDS[records.TRAIN_SPLIT]} shards, {counts[records.VALIDATION_SPLIT]} "
        f"validation records in {NUM_SHARDS[records.VALIDATION_SPLIT]} shard; "
        f"{shard_bytes} bytes of shards.",
        "",
    ]
    return "\n".join(lines)


def write_sample(output_dir: pathlib.Path) -> list[Record]:
    """Writes the shards and SOURCES.md into ``output_dir``; returns every record written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    regions = _load_regions()
    all_records = []
    for split in records.SPLITS:
        split_records = _split_records(split, regions)
        _write_shards(output_dir, split, split_records)
        all_records += split_records
    shard_bytes = sum(
        path.stat().st_size for split in records.SPLITS for path in output_dir.glob(f"{split}-*")
    )
    (output_dir / SOURCES_FILE).write_text(
        _sources_markdown(all_records, shard_bytes), encoding="utf-8"
    )
    return all_records


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data.make_sample", description=__doc__)
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=DEFAULT_OUTPUT_DIR,
        help=f"where to write the shards and {SOURCES_FILE} (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    all_records = write_sample(args.output_dir)
    for photo in PHOTOS:
        name = imagenet_classes.name_of(imagenet_classes.index_of(photo.synset))
        print(f"{photo.synset} {name}: {photo.origin} [{photo.licence}]")
    for split in records.SPLITS:
        print(f"{split}: {sum(r.split == split for r in all_records)} records")
    print(f"wrote {args.output_dir}")


if __name__ == "__main__":
    main()
