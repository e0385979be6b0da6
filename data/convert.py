"""Convert a raw ILSVRC-2012 tree (JPEG files in class folders) to build_imagenet_data.py TFRecords.

The layouts read (``train/<synset>/``, ``val/<synset>/`` or a flat ``val/`` with a labels file)
are ``data.preflight``'s, which checks a tree before any conversion starts. Optionally, the
ILSVRC bounding-box XML files (``<synset>/<image>.xml`` and ``val/<image>.xml`` as the archives
unpack) are joined to images by file name and stored normalised to [0, 1] as
build_imagenet_data.py stores them. Boxes of another synset than the image's are not stored
(their label would be wrong) and are counted.

Every image is decoded in full, so a truncated or corrupt file is rejected here, with its path
and reason in the manifest, rather than crashing or poisoning training. JPEGs in RGB or grey are
written byte for byte; anything else (the CMYK JPEGs and the PNG that ILSVRC-2012 stores under
``.JPEG`` names) is re-encoded to an RGB JPEG at quality 100, as build_imagenet_data.py does.

A file's shard and its place in the shard come from a hash of its name, so shards mix classes,
and re-running gives byte-identical shards on any runner. Only paths are grouped by shard: each
image is read, checked and written by the worker that writes its shard, so no image bytes move
through a shuffle. ``manifest.json`` records per split the record count, the count per class,
the shard names, and every rejected file with its reason. Progress shows as a log line per
written shard and as Beam counters (images_converted, images_rejected, re-encodings, boxes).

Runs on any Beam runner (standard pipeline options; DirectRunner by default). Workers on a
remote runner need this package (``--setup_file``) and must see the paths (e.g. ``gs://``).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from xml.etree import ElementTree

import apache_beam as beam
import tensorflow as tf

from data import imagenet_classes, preflight, records
from data.errors import UserError

MANIFEST = "manifest.json"
REJECTS = "rejects"  # tag of the side output that carries {"path", "reason"} dicts
BOUNDING_BOXES = "bounding_boxes"  # the manifest's "split" of rejected box files

_LOG = logging.getLogger(__name__)
_METRICS_NAMESPACE = "convert_imagenet"
_VALIDATION_FILE = re.compile(r"ILSVRC2012_val_(\d{8})\.\w+")
# build_imagenet_data.py re-encodes at quality 100; full-resolution chroma (4:4:4) as well keeps
# the few re-encoded images within about one grey level of their source.
_JPEG_QUALITY = 100


class ImageError(ValueError):
    """One file cannot become a record; the message is the reason the manifest gives."""


@dataclasses.dataclass(frozen=True)
class RawImage:
    """A source file, its class, and its boxes (xmin, ymin, xmax, ymax in [0, 1])."""

    path: str
    synset: str
    boxes: tuple[tuple[float, float, float, float], ...] = ()


def reject(path: str, reason: str) -> dict[str, str]:
    """A rejects-report entry."""
    return {"path": path, "reason": reason}


def _counter(name: str):
    return beam.metrics.Metrics.counter(_METRICS_NAMESPACE, name)


# --- labels ---------------------------------------------------------------------------------


def label(path: str, validation_labels: Sequence[str] | None = None) -> str:
    """The synset of one file: its folder's name, else its validation number's labels line."""
    folder = os.path.basename(os.path.dirname(path))
    if preflight.is_synset(folder):
        return folder
    if validation_labels is None:
        raise ImageError(f"its folder {folder!r} is not an ILSVRC-2012 synset")
    match = _VALIDATION_FILE.fullmatch(os.path.basename(path))
    if not match:
        raise ImageError(
            "not in a synset folder and not named ILSVRC2012_val_NNNNNNNN.JPEG, "
            "so the validation labels cannot label it"
        )
    number = int(match[1])
    if not 1 <= number <= len(validation_labels):
        raise ImageError(
            f"validation image number {number} has no line in the validation labels "
            f"({len(validation_labels)} lines)"
        )
    return validation_labels[number - 1]


class _Label(beam.DoFn):
    def __init__(self, validation_labels: Sequence[str] | None):
        self._validation_labels = validation_labels

    def process(self, path: str):
        try:
            yield path, label(path, self._validation_labels)
        except ImageError as error:
            _counter("images_rejected").inc()
            yield beam.pvalue.TaggedOutput(REJECTS, reject(path, str(error)))


# --- bounding boxes -------------------------------------------------------------------------


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _number(element: ElementTree.Element, path: str) -> float:
    text = element.findtext(path)
    if text is None:
        raise ValueError(f"no <{path}>")
    return float(text)


def parse_boxes(xml: bytes) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(synset, box) for each object of an ILSVRC annotation, normalised by the image size."""
    root = ElementTree.fromstring(xml)
    width, height = _number(root, "size/width"), _number(root, "size/height")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width:g}x{height:g} is not positive")
    boxes = []
    for item in root.iter("object"):
        # Annotators' boxes can reach a pixel past the border; clip, and order the corners.
        xs = sorted(
            min(max(_number(item, f"bndbox/{k}") / width, 0.0), 1.0) for k in ("xmin", "xmax")
        )
        ys = sorted(
            min(max(_number(item, f"bndbox/{k}") / height, 0.0), 1.0) for k in ("ymin", "ymax")
        )
        boxes.append((item.findtext("name", ""), (xs[0], ys[0], xs[1], ys[1])))
    return boxes


def _xml_files(boxes_dir: str) -> Iterator[str]:
    for folder, _, files in tf.io.gfile.walk(boxes_dir):
        yield from (os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(".xml"))


class _ParseBoxes(beam.DoFn):
    def process(self, path: str):
        try:
            with tf.io.gfile.GFile(path, "rb") as xml_file:
                yield _stem(path), parse_boxes(xml_file.read())
        except (OSError, tf.errors.OpError, ElementTree.ParseError, ValueError) as error:
            _counter("box_files_rejected").inc()
            yield beam.pvalue.TaggedOutput(REJECTS, reject(path, f"bad bounding-box XML: {error}"))


class ReadBoxes(beam.PTransform):
    """(image file stem, [(synset, box)]) for every .xml under a folder; bad files as rejects."""

    def __init__(self, boxes_dir: str):
        super().__init__()
        self._boxes_dir = boxes_dir

    def expand(self, pbegin):
        return (
            pbegin
            | "Folder" >> beam.Create([self._boxes_dir])
            | "List" >> beam.FlatMap(_xml_files)
            | "Parse" >> beam.ParDo(_ParseBoxes()).with_outputs(REJECTS, main="boxes")
        )


def _attach_boxes(joined):
    _, groups = joined
    objects = [obj for parsed in groups["boxes"] for obj in parsed]
    for path, synset in groups["images"]:
        boxes = tuple(box for name, box in objects if name == synset)
        _counter("boxes_attached").inc(len(boxes))
        _counter("boxes_of_other_synsets").inc(len(objects) - len(boxes))
        yield RawImage(path, synset, boxes)


# --- listing --------------------------------------------------------------------------------


class ReadRawImages(beam.PTransform):
    """The files matching a glob as labelled RawImages, plus rejects for files it cannot label.

    ``boxes`` is ReadBoxes' main output, or None for no boxes.
    """

    def __init__(self, pattern: str, validation_labels=None, boxes=None):
        super().__init__()
        self._pattern = pattern
        self._validation_labels = validation_labels
        self._boxes = boxes

    def expand(self, pbegin):
        labelled = (
            pbegin
            | "Pattern" >> beam.Create([self._pattern])
            | "Glob" >> beam.FlatMap(tf.io.gfile.glob)
            | "Label"
            >> beam.ParDo(_Label(self._validation_labels)).with_outputs(REJECTS, main="images")
        )
        if self._boxes is None:
            images = labelled.images | "NoBoxes" >> beam.MapTuple(RawImage)
        else:
            images = (
                {
                    "images": labelled.images | "ByStem" >> beam.Map(lambda i: (_stem(i[0]), i)),
                    "boxes": self._boxes,
                }
                | "JoinBoxes" >> beam.CoGroupByKey()
                | "AttachBoxes" >> beam.FlatMap(_attach_boxes)
            )
        return images, labelled[REJECTS]


# --- images ---------------------------------------------------------------------------------


def rgb_jpeg(data: bytes) -> tuple[bytes, int, int, str | None]:
    """(JPEG bytes that decode as RGB or grey, width, height, what was re-encoded or None)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes every pixel: truncated and corrupt files fail here
            if image.format == "JPEG" and image.mode in ("RGB", "L"):
                return data, image.width, image.height, None
            source = f"{image.format} {image.mode}"
            rgb = image.convert("RGB")
    except UnidentifiedImageError:
        raise ImageError("not an image file PIL can identify") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"cannot decode: {error}") from None
    encoded = io.BytesIO()
    rgb.save(encoded, "JPEG", quality=_JPEG_QUALITY, subsampling=0)
    return encoded.getvalue(), rgb.width, rgb.height, source


def to_example(image: RawImage) -> tf.train.Example:
    """The build_imagenet_data.py record of one file; ImageError with the reason it cannot be."""
    try:
        with tf.io.gfile.GFile(image.path, "rb") as image_file:
            data = image_file.read()
    except (OSError, tf.errors.OpError) as error:
        raise ImageError(f"cannot read: {getattr(error, 'message', error)}") from None
    encoded, width, height, reencoded = rgb_jpeg(data)
    if reencoded:
        _counter(f"reencoded {reencoded}").inc()
    index = imagenet_classes.index_of(image.synset)
    return records.make_example(
        encoded=encoded,
        class_index=index,
        synset=image.synset,
        text=imagenet_classes.name_of(index),
        height=height,
        width=width,
        filename=os.path.basename(image.path),
        bboxes=image.boxes,
    )


def shuffle_key(path: str) -> int:
    """A file's place in the output: the first 8 bytes of the SHA-256 of its name, big-endian.

    The name, not the path, so the same tree converts identically wherever it is mounted.
    """
    digest = hashlib.sha256(os.path.basename(path).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def convert_in_order(
    images: Iterable[RawImage],
) -> Iterator[tuple[RawImage, tf.train.Example | dict[str, str]]]:
    """(image, its record) in shuffle-key order; a reject entry where it can have no record."""
    for image in sorted(images, key=lambda i: (shuffle_key(i.path), i.path)):
        try:
            example = to_example(image)
        except ImageError as error:
            _counter("images_rejected").inc()
            yield image, reject(image.path, str(error))
        else:
            _counter("images_converted").inc()
            yield image, example


# --- writing --------------------------------------------------------------------------------


class _WriteShard(beam.DoFn):
    """Writes one shard file from its images; emits the shard's class counts and rejects."""

    def __init__(self, output_dir: str, split: str, num_shards: int):
        self._output_dir = output_dir
        self._split = split
        self._num_shards = num_shards

    def process(self, element):
        index, images = element
        name = records.shard_name(self._split, index, self._num_shards)
        path = os.path.join(self._output_dir, name)
        # A retried or concurrent attempt must never leave a half-written shard under the name.
        partial = os.path.join(self._output_dir, f".{name}.{uuid.uuid4().hex}.partial")
        classes = collections.Counter()
        with tf.io.TFRecordWriter(partial) as writer:
            for image, record in convert_in_order(i for i in images if i is not None):
                if isinstance(record, dict):
                    yield beam.pvalue.TaggedOutput(REJECTS, record)
                else:
                    writer.write(record.SerializeToString(deterministic=True))
                    classes[image.synset] += 1
        tf.io.gfile.rename(partial, path, overwrite=True)
        _LOG.info("wrote %s: %d records", name, sum(classes.values()))
        yield {"split": self._split, "shard": name, "classes": dict(classes)}


class ConvertSplit(beam.PTransform):
    """One split's files to ``num_shards`` shards in output_dir: (shard summaries, rejects)."""

    def __init__(self, split: preflight.RawSplit, num_shards: int, output_dir: str, boxes=None):
        super().__init__()
        self._split = split
        self._num_shards = num_shards
        self._output_dir = output_dir
        self._boxes = boxes

    def expand(self, pbegin):
        split, num_shards = self._split, self._num_shards
        images, unlabelled = pbegin | "Read" >> ReadRawImages(
            split.pattern, split.validation_labels, self._boxes
        )
        # One None per shard, so that a shard no image hashes to is still written (empty).
        every_shard = pbegin | "EveryShard" >> beam.Create([(i, None) for i in range(num_shards)])
        keyed = images | "ShardOf" >> beam.Map(
            lambda image, n=num_shards: (shuffle_key(image.path) % n, image)
        )
        written = (
            (keyed, every_shard)
            | "Merge" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "Write"
            >> beam.ParDo(_WriteShard(self._output_dir, split.name, num_shards)).with_outputs(
                REJECTS, main="shards"
            )
        )
        rejects = (
            (unlabelled, written[REJECTS])
            | "AllRejects" >> beam.Flatten()
            | "NameSplit" >> beam.Map(lambda entry, name=split.name: {**entry, "split": name})
        )
        return written.shards, rejects


def manifest(shards: Iterable[dict], rejects: Iterable[dict]) -> dict:
    """The manifest: per split its record count, count per class and shard names; the rejects."""
    splits = {}
    for shard in sorted(shards, key=lambda s: s["shard"]):
        split = splits.setdefault(shard["split"], {"records": 0, "classes": {}, "shards": []})
        split["shards"].append(shard["shard"])
        for synset, count in shard["classes"].items():
            split["classes"][synset] = split["classes"].get(synset, 0) + count
            split["records"] += count
    for split in splits.values():
        split["classes"] = dict(sorted(split["classes"].items()))
    rejects = sorted(rejects, key=lambda r: (r["split"], r["path"]))
    for split_name, split in splits.items():
        split["rejects"] = sum(r["split"] == split_name for r in rejects)
    return {"format": records.BUILD_IMAGENET.name, "splits": splits, "rejects": rejects}


def _write_manifest(shards, rejects, output_dir):
    with tf.io.gfile.GFile(os.path.join(output_dir, MANIFEST), "w") as manifest_file:
        json.dump(manifest(shards, rejects), manifest_file, indent=1)
        manifest_file.write("\n")


def build_pipeline(
    pipeline: beam.Pipeline,
    splits: Sequence[tuple[preflight.RawSplit, int]],
    output_dir: str,
    boxes_dir: str | None = None,
) -> None:
    """Adds the conversion of every (split, shard count), and the manifest, to ``pipeline``."""
    rejects = []
    boxes = None
    if boxes_dir:
        parsed = pipeline | "ReadBoxes" >> ReadBoxes(boxes_dir)
        boxes = parsed.boxes
        rejects.append(
            parsed[REJECTS]
            | "NameBoxSplit" >> beam.Map(lambda entry: {**entry, "split": BOUNDING_BOXES})
        )
    shards = []
    for split, num_shards in splits:
        split_shards, split_rejects = pipeline | f"Convert[{split.name}]" >> ConvertSplit(
            split, num_shards, output_dir, boxes
        )
        shards.append(split_shards)
        rejects.append(split_rejects)
    all_rejects = rejects | "AllRejects" >> beam.Flatten()
    (
        shards
        | "AllShards" >> beam.Flatten()
        | "Collect" >> beam.combiners.ToList()
        | "WriteManifest"
        >> beam.Map(_write_manifest, rejects=beam.pvalue.AsList(all_rejects), output_dir=output_dir)
    )


def check_output_dir(output_dir: str, splits: Sequence[tuple[preflight.RawSplit, int]]) -> None:
    """UserError if ``output_dir`` holds shards that this conversion would not overwrite."""
    for split, num_shards in splits:
        planned = {records.shard_name(split.name, i, num_shards) for i in range(num_shards)}
        stale = sorted(
            os.path.basename(path)
            for path in tf.io.gfile.glob(records.split_pattern(output_dir, split.name))
            if os.path.basename(path) not in planned
        )
        if stale:  # they would be read together with this run's shards
            raise UserError(
                f"--output-dir {output_dir!r} already holds {stale[0]!r}, which this run would "
                "not overwrite; remove it or choose an empty directory"
            )


@dataclasses.dataclass
class Conversion:
    """What a conversion wrote (its manifest), its Beam counters and how long it took."""

    manifest: dict
    counters: dict[str, int]
    seconds: float


def convert(
    splits: Sequence[tuple[preflight.RawSplit, int]],
    output_dir: str,
    boxes_dir: str | None = None,
    beam_args: Sequence[str] = (),
) -> Conversion:
    """Runs the conversion on Beam (options ``beam_args``; the DirectRunner by default)."""
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    if boxes_dir and not tf.io.gfile.isdir(boxes_dir):
        raise UserError(f"--bounding-boxes-dir {boxes_dir!r} is not a directory")
    check_output_dir(output_dir, splits)
    tf.io.gfile.makedirs(output_dir)
    start = time.monotonic()
    pipeline = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    build_pipeline(pipeline, splits, output_dir, boxes_dir)
    run = pipeline.run()
    run.wait_until_finish()
    seconds = time.monotonic() - start
    with tf.io.gfile.GFile(os.path.join(output_dir, MANIFEST)) as manifest_file:
        written = json.load(manifest_file)
    counters = collections.Counter()
    query = MetricsFilter().with_namespace(_METRICS_NAMESPACE)
    for counter in run.metrics().query(query)["counters"]:
        counters[counter.key.metric.name] += counter.committed  # summed over the steps
    return Conversion(written, dict(sorted(counters.items())), seconds)
