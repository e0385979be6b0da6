"""ImageNet-like records for the benchmarks, generated from the bundled sample's photographs.

Decode and resize costs grow with pixels, and the bundled sample's images are small (200-400
px) and few, so the benchmarks make their own: most ILSVRC-2012 images are JPEGs 500 px on the
long side (500x375, 500x333), so each record is a random crop of one of the sample's
photographs (``data.make_sample.PHOTOS``), mirrored at random, resized to a 500 px long side
and JPEG-encoded at quality 75-95. As in ImageNet, a few are grayscale, CMYK or PNG, so every
decode path is measured. A directory is reused when asked for again: 10,000 images take a
minute or two to make.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os

import numpy as np
from PIL import Image

from data import imagenet_classes, make_sample, records

LONG_SIDE = 500
ASPECTS = (4 / 3, 3 / 2, 1.0, 3 / 4)  # width / height, landscape first as in ImageNet
ASPECT_WEIGHTS = (0.6, 0.25, 0.05, 0.1)
IMAGES_PER_SHARD = 1024
MANIFEST = "manifest.json"  # written last: its presence means the directory is complete


def quirk_of(index: int) -> str | None:
    """Which odd file record ``index`` is: a fixed pattern, so even 20 images hold each kind."""
    if index % 1000 == 1:
        return "png"
    if index % 500 == 2:
        return "cmyk"
    if index % 50 == 3:
        return "grayscale"
    return None


def make_record(index: int, photos: list[tuple[str, Image.Image]], seed: int) -> tuple[bytes, int]:
    """(serialized build_imagenet tf.Example, encoded image bytes) of record ``index``."""
    rng = np.random.default_rng([seed, index])
    synset, photo = photos[index % len(photos)]
    aspect = rng.choice(ASPECTS, p=ASPECT_WEIGHTS)
    area = rng.uniform(0.35, 1.0) * photo.width * photo.height
    width = min(photo.width, math.sqrt(area * aspect))
    height = min(photo.height, width / aspect)
    width = height * aspect
    left = rng.uniform(0, photo.width - width)
    top = rng.uniform(0, photo.height - height)
    image = photo.crop((round(left), round(top), round(left + width), round(top + height)))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = LONG_SIDE / max(image.size)
    image = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.BICUBIC,
    )
    quirk = quirk_of(index)
    encoded, colorspace, channels = make_sample.encode(image, quirk, int(rng.integers(75, 96)))
    class_index = imagenet_classes.index_of(synset)
    example = records.make_example(
        encoded=encoded,
        class_index=class_index,
        synset=synset,
        text=imagenet_classes.name_of(class_index),
        height=image.height,
        width=image.width,
        filename=f"{synset}_{index}.JPEG",
        colorspace=colorspace,
        channels=channels,
    )
    return example.SerializeToString(), len(encoded)


def _photos() -> list[tuple[str, Image.Image]]:
    photos = []
    for photo in make_sample.PHOTOS:
        image = photo.load()
        photos.append((photo.synset, image.crop(photo.region) if photo.region else image))
    return photos


def split_sizes(num_images: int) -> dict[str, int]:
    """A tenth (at least one image) for validation, the rest for training."""
    validation = max(1, num_images // 10)
    return {records.TRAIN_SPLIT: num_images - validation, records.VALIDATION_SPLIT: validation}


def ensure_dataset(work_dir: str, num_images: int, seed: int = 0) -> tuple[str, dict]:
    """(data root of ``num_images`` records in train-*/validation-* shards, its manifest)."""
    if num_images < 2:
        raise ValueError(f"need at least 2 images (one per split), got {num_images}")
    data_root = os.path.join(work_dir, f"images-{num_images}-seed{seed}")
    manifest_path = os.path.join(data_root, MANIFEST)
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            return data_root, json.load(f)

    import tensorflow as tf

    os.makedirs(data_root, exist_ok=True)
    photos = _photos()
    manifest = {"seed": seed, "images": 0, "image_bytes": 0, "splits": {}}
    first = 0
    # PIL releases the GIL while resizing and encoding, so threads use every core.
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        for split, count in split_sizes(num_images).items():
            num_shards = math.ceil(count / IMAGES_PER_SHARD)
            made = pool.map(lambda i: make_record(i, photos, seed), range(first, first + count))
            for shard, chunk in enumerate(np.array_split(np.arange(count), num_shards)):
                path = os.path.join(data_root, records.shard_name(split, shard, num_shards))
                with tf.io.TFRecordWriter(path) as writer:
                    for _ in chunk:
                        serialized, image_bytes = next(made)
                        writer.write(serialized)
                        manifest["image_bytes"] += image_bytes
            manifest["splits"][split] = count
            manifest["images"] += count
            first += count
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    return data_root, manifest
