"""Can the rest of the pipeline use this record? The per-record check behind ``Quarantine``.

A record passes when it is a ``tf.train.Example`` with exactly one non-empty image and exactly one
in-range label, its synset (when present) names the label's class, its header declares at most
``max_image_pixels`` pixels, and TensorFlow's ``decode_image`` (the decoder Transform uses)
decodes it. Anything else would crash Transform deep in Beam or, worse, be trained on.

The size comes from the header (PIL opens images lazily) before anything is decoded, so a
10,000 x 10,000 image costs a few kilobytes, not 300 MB. An image whose header PIL cannot read
is rejected for the same reason: its decode cost cannot be bounded. PIL itself refuses headers
above ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (about 179 Mpx); those are rejected as too large
whatever ``max_image_pixels`` says.

Truncated JPEGs need no check of their own: ``decode_image`` calls the JPEG decoder with
``try_recover_truncated=False``, so TensorFlow 2.16 rejects a JPEG cut anywhere, even one that
lacks only its end-of-image (EOI) marker. It does pad silently in one case: scan data that ends
early but is followed by an EOI marker decodes with gray blocks. That is corruption, not
truncation, and Transform would decode it the same way, so it passes (``image_check_test`` pins
both behaviours down).
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings

import tensorflow as tf
from google.protobuf.message import DecodeError
from PIL import Image, UnidentifiedImageError

from data import imagenet_classes
from data.records import SYNSET, RecordFormat

# The fixed vocabulary of rejection reasons: the report counts records by these.
NOT_AN_EXAMPLE = "not a tf.train.Example"
MISSING_IMAGE = "missing image"
EMPTY_IMAGE = "empty image"
MALFORMED_LABEL = "missing or malformed label"
LABEL_OUT_OF_RANGE = "label out of range"
SYNSET_MISMATCH = "synset does not match label"
TOO_LARGE = "image too large"
UNDECODABLE = "undecodable image"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome for one record: its class when valid, otherwise why it was rejected."""

    filename: str | None  # the record's file name, when it carries one: how people find it
    class_index: int | None = None
    reason: str | None = None  # one of the constants above; None when the record is valid
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_record(serialized: bytes, fmt: RecordFormat, max_image_pixels: int) -> Verdict:
    """Check one serialized record of format ``fmt``; the first problem found is the verdict."""
    try:
        features = tf.train.Example.FromString(serialized).features.feature
    except DecodeError as error:
        return Verdict(filename=None, reason=NOT_AN_EXAMPLE, detail=str(error))

    filename_values = _values(features, fmt.filename_key, "bytes_list")
    filename = (
        filename_values[0].decode("utf-8", "replace")
        if filename_values is not None and len(filename_values) == 1
        else None
    )

    def reject(reason: str, detail: str) -> Verdict:
        return Verdict(filename=filename, reason=reason, detail=detail)

    images = _values(features, fmt.image_key, "bytes_list")
    if images is None or len(images) != 1:
        return reject(MISSING_IMAGE, _not_exactly_one(features, fmt.image_key, "bytes"))
    image = images[0]
    if not image:
        return reject(EMPTY_IMAGE, f"{fmt.image_key!r} holds zero bytes")

    labels = _values(features, fmt.label_key, "int64_list")
    if labels is None or len(labels) != 1:
        return reject(MALFORMED_LABEL, _not_exactly_one(features, fmt.label_key, "int64"))
    try:
        class_index = fmt.class_index(labels[0])
    except ValueError as error:
        return reject(LABEL_OUT_OF_RANGE, str(error))

    if SYNSET in features:
        expected = imagenet_classes.synset_of(class_index)
        synsets = _values(features, SYNSET, "bytes_list")
        if synsets is None or len(synsets) != 1:
            return reject(SYNSET_MISMATCH, _not_exactly_one(features, SYNSET, "bytes"))
        synset = synsets[0].decode("utf-8", "replace")
        if synset != expected:
            return reject(
                SYNSET_MISMATCH,
                f"synset {synset!r} but label {labels[0]} is class {class_index} ({expected})",
            )

    problem = check_image(image, max_image_pixels)
    if problem is not None:
        return reject(*problem)
    return Verdict(filename=filename, class_index=class_index)


def check_image(image: bytes, max_image_pixels: int) -> tuple[str, str] | None:
    """(reason, detail) when TensorFlow's decoder would refuse ``image`` or it is too large
    to decode safely; None when it decodes. The header is read first, so a huge image costs
    kilobytes."""
    try:
        width, height = _header_size(image)
    except Image.DecompressionBombError as error:
        return TOO_LARGE, str(error)
    except UnidentifiedImageError:
        return UNDECODABLE, f"PIL recognises no image format in these {len(image)} bytes"
    except OSError as error:
        return UNDECODABLE, f"unreadable image header: {error}"
    if width * height > max_image_pixels:
        return (
            TOO_LARGE,
            f"{width}x{height} = {width * height} pixels > max_image_pixels {max_image_pixels}",
        )
    try:
        tf.io.decode_image(image, channels=3, expand_animations=False)
    except tf.errors.OpError as error:
        return UNDECODABLE, tf_error_reason(error)
    return None


def _values(features, key: str, kind: str):
    """The values of feature ``key`` when it holds a ``kind`` list, otherwise None."""
    if key not in features or features[key].WhichOneof("kind") != kind:
        return None
    return getattr(features[key], kind).value


def _not_exactly_one(features, key: str, kind: str) -> str:
    if key not in features:
        return f"no {key!r} feature"
    held = features[key].WhichOneof("kind")
    what = f"{len(getattr(features[key], held).value)} {held} value(s)" if held else "no value"
    return f"{key!r} holds {what}; expected exactly one {kind} value"


def _header_size(image: bytes) -> tuple[int, int]:
    """(width, height) from the image header alone: PIL defers decoding until pixels are read."""
    with warnings.catch_warnings():
        # Sizes between MAX_IMAGE_PIXELS and twice that only warn; max_image_pixels decides.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(image)) as opened:
            return opened.size


def tf_error_reason(error: tf.errors.OpError) -> str:
    """TensorFlow's reason for an error, without the eager function-node prefix and op suffix."""
    return re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*", "", error.message).strip()
