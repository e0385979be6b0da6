"""The per-record check on real images encoded by PIL and decoded by real TensorFlow."""

import io
import json
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf
from PIL import Image
from skimage import data as skimage_data

from data import image_check, records

# Written from the ILSVRC-2012 synset list, independently of data.imagenet_classes.
TENCH, GOLDFISH, TOILET_TISSUE = "n01440764", "n01443537", "n15075141"
MAX_PIXELS = 50_000_000


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cat() -> Image.Image:
    """A real photograph, shrunk so that every decode is quick."""
    return Image.fromarray(skimage_data.chelsea()).resize((90, 60))


@pytest.fixture(scope="module")
def jpeg(cat) -> bytes:
    return _encode(cat, "JPEG", quality=90)


def _record(encoded: bytes, class_index: int = 0, synset: str = TENCH, **changes) -> bytes:
    """A build_imagenet record; ``changes`` maps a feature key to a new Feature or None."""
    example = records.make_example(
        encoded, class_index, synset, "tench", 60, 90, f"{synset}_7.JPEG"
    )
    for key, feature in changes.items():
        del example.features.feature[key]
        if feature is not None:
            example.features.feature[key].CopyFrom(feature)
    return example.SerializeToString()


def _tfds_record(encoded: bytes, label: int, file_name: str = "n01440764_7.JPEG") -> bytes:
    feature = {
        records.TFDS_IMAGE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        records.TFDS_LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        records.TFDS_FILE_NAME: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[file_name.encode()])
        ),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _ints(*values: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _bytes(*values: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _check(serialized: bytes, fmt=records.BUILD_IMAGENET, max_pixels=MAX_PIXELS):
    return image_check.check_record(serialized, fmt, max_pixels)


def test_a_valid_jpeg_record_passes_with_its_class_and_file_name(jpeg):
    verdict = _check(_record(jpeg, class_index=1, synset=GOLDFISH))
    assert verdict == image_check.Verdict(filename=f"{GOLDFISH}_7.JPEG", class_index=1)
    assert verdict.ok


@pytest.mark.parametrize(
    "fmt, mode",
    [
        ("JPEG", "CMYK"),  # 22 ILSVRC train images are CMYK JPEGs
        ("JPEG", "L"),  # and some are grayscale
        ("PNG", "RGB"),  # one is a PNG named .JPEG; decode_image sniffs the bytes
        ("GIF", "P"),
        ("BMP", "RGB"),
    ],
)
def test_every_format_tensorflow_decodes_passes(cat, fmt, mode):
    encoded = _encode(cat.convert(mode), fmt)
    assert _check(_record(encoded)).ok


def test_a_tfds_record_passes_with_its_zero_based_label(jpeg):
    verdict = _check(_tfds_record(jpeg, label=0), fmt=records.TFDS)
    assert verdict == image_check.Verdict(filename="n01440764_7.JPEG", class_index=0)


@pytest.mark.parametrize(
    "fmt, label, synset, class_index",
    [
        (records.BUILD_IMAGENET, 1, TENCH, 0),
        (records.BUILD_IMAGENET, 1000, TOILET_TISSUE, 999),
        (records.TFDS, 0, None, 0),
        (records.TFDS, 999, None, 999),
    ],
)
def test_labels_at_the_ends_of_the_range_pass(jpeg, fmt, label, synset, class_index):
    if fmt is records.TFDS:
        serialized = _tfds_record(jpeg, label)
    else:
        serialized = _record(jpeg, synset=synset, **{records.LABEL: _ints(label)})
    assert _check(serialized, fmt=fmt).class_index == class_index


@pytest.mark.parametrize(
    "fmt, label",
    [
        (records.BUILD_IMAGENET, 0),  # build_imagenet leaves 0 unused
        (records.BUILD_IMAGENET, 1001),
        (records.BUILD_IMAGENET, -1),
        (records.TFDS, 1000),
        (records.TFDS, -1),
    ],
)
def test_labels_outside_the_range_are_rejected(jpeg, fmt, label):
    if fmt is records.TFDS:
        serialized = _tfds_record(jpeg, label)
    else:
        serialized = _record(jpeg, **{records.LABEL: _ints(label)})
    verdict = _check(serialized, fmt=fmt)
    assert verdict.reason == image_check.LABEL_OUT_OF_RANGE
    assert f"label {label}" in verdict.detail
    assert verdict.filename == "n01440764_7.JPEG"
    assert verdict.class_index is None


@pytest.mark.parametrize(
    "label_feature",
    [
        None,
        _ints(),
        _ints(1, 2),
        tf.train.Feature(float_list=tf.train.FloatList(value=[1.0])),
    ],
    ids=["missing", "empty", "two values", "float"],
)
def test_a_label_that_is_not_exactly_one_int64_is_rejected(jpeg, label_feature):
    verdict = _check(_record(jpeg, **{records.LABEL: label_feature}))
    assert verdict.reason == image_check.MALFORMED_LABEL
    assert records.LABEL in verdict.detail


def test_bytes_that_are_not_an_example_are_rejected():
    verdict = _check(b"\xff\xff\xff")
    assert verdict.reason == image_check.NOT_AN_EXAMPLE
    assert verdict.filename is None


@pytest.mark.parametrize(
    "image_feature",
    [None, _bytes(), _ints(3)],
    ids=["missing", "no value", "int64 instead of bytes"],
)
def test_a_record_without_an_image_is_rejected_and_still_named(jpeg, image_feature):
    verdict = _check(_record(jpeg, **{records.ENCODED: image_feature}))
    assert verdict.reason == image_check.MISSING_IMAGE
    assert records.ENCODED in verdict.detail
    assert verdict.filename == "n01440764_7.JPEG"


def test_two_images_in_one_record_are_rejected(jpeg):
    verdict = _check(_record(jpeg, **{records.ENCODED: _bytes(jpeg, jpeg)}))
    assert verdict.reason == image_check.MISSING_IMAGE
    assert "2 bytes_list" in verdict.detail


def test_a_zero_length_image_is_rejected():
    assert _check(_record(b"")).reason == image_check.EMPTY_IMAGE


def test_bytes_that_are_no_image_are_rejected():
    verdict = _check(_record(b"GIF89 but not really an image"))
    assert verdict.reason == image_check.UNDECODABLE


@pytest.mark.parametrize(
    "keep, rejected_by",
    [(-1, "JPEG"), (-2, "JPEG"), (0.5, "JPEG"), (0.1, "header")],
    ids=["no EOI byte", "no EOI", "half", "inside the header"],
)
def test_a_truncated_jpeg_is_rejected(jpeg, keep, rejected_by):
    """Pins down that TF's decoder refuses truncation instead of padding it silently."""
    end = len(jpeg) + keep if isinstance(keep, int) else int(len(jpeg) * keep)
    assert jpeg[-2:] == b"\xff\xd9"  # the end-of-image marker that every cut removes
    verdict = _check(_record(jpeg[:end]))
    assert verdict.reason == image_check.UNDECODABLE
    assert rejected_by in verdict.detail  # TensorFlow's reason once PIL has read the header


def test_the_pixel_limit_counts_width_times_height(jpeg):
    pixels = 90 * 60
    assert _check(_record(jpeg), max_pixels=pixels).ok
    verdict = _check(_record(jpeg), max_pixels=pixels - 1)
    assert verdict.reason == image_check.TOO_LARGE
    assert "90x60" in verdict.detail


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A real, decodable 10,000 x 10,000 image that is small on disk (1 bit per pixel)."""
    return _encode(Image.new("1", (10_000, 10_000)), "PNG")


def test_a_10000_by_10000_image_is_rejected_as_too_large(huge_png):
    verdict = _check(_record(huge_png))
    assert verdict.reason == image_check.TOO_LARGE
    assert "10000x10000" in verdict.detail


def test_the_size_is_read_from_the_header_before_any_decoding(jpeg):
    """A JPEG whose frame header claims 10,000 x 10,000 over 90 x 60 of data, cut before EOI.

    Decoding first would call it undecodable (and allocate 300 MB); the header path calls it
    too large.
    """
    sof = jpeg.index(b"\xff\xc0")  # baseline start-of-frame: length, precision, height, width
    claims_huge = jpeg[: sof + 5] + (10_000).to_bytes(2, "big") * 2 + jpeg[sof + 9 : -2]
    verdict = _check(_record(claims_huge))
    assert verdict.reason == image_check.TOO_LARGE
    assert "10000x10000" in verdict.detail


def test_a_jpeg_with_short_scan_data_but_an_end_marker_passes_as_tensorflow_pads_it(jpeg):
    """Pins down a limit: libjpeg fills missing blocks with gray when EOI is still there.

    That is corruption rather than truncation, and Transform would decode it the same way.
    """
    short_scan = jpeg[: len(jpeg) // 2] + b"\xff\xd9"
    assert _check(_record(short_scan)).ok
    decoded = tf.io.decode_image(short_scan, channels=3, expand_animations=False)
    assert decoded.shape == (60, 90, 3)
    assert decoded[-1, -1].numpy().tolist() == [128, 128, 128]


@pytest.mark.slow
def test_checking_a_10000_by_10000_image_costs_bounded_memory(huge_png, tmp_path):
    """In a fresh process: the check's peak RSS stays flat, and a decode would show up.

    Decoding to 3 channels needs 300 MB; the control decode after the check proves that the
    peak-RSS measurement would see it.
    """
    path = tmp_path / "huge.tfrecord"
    path.write_bytes(_record(huge_png))
    script = textwrap.dedent(
        f"""
        import json, re
        import data
        import tensorflow as tf
        from data import image_check, records

        def peak_mb():
            # VmHWM starts afresh at exec; ru_maxrss would inherit pytest's own peak.
            status = open("/proc/self/status").read()
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024

        serialized = open({str(path)!r}, "rb").read()
        image_check.check_record(b"", records.BUILD_IMAGENET, 1)  # warm up lazy imports
        before = peak_mb()
        verdict = image_check.check_record(serialized, records.BUILD_IMAGENET, {MAX_PIXELS})
        after_check = peak_mb()
        image = tf.train.Example.FromString(serialized).features.feature[records.ENCODED]
        tf.io.decode_image(image.bytes_list.value[0], channels=3, expand_animations=False)
        after_decode = peak_mb()
        print(json.dumps([verdict.reason, after_check - before, after_decode - after_check]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    reason, check_mb, decode_mb = json.loads(result.stdout.strip().splitlines()[-1])
    assert reason == image_check.TOO_LARGE
    assert decode_mb > 100  # the control: a decode is visible
    assert check_mb < 20


def test_a_synset_that_names_another_class_is_rejected(jpeg):
    verdict = _check(_record(jpeg, class_index=0, synset=GOLDFISH))
    assert verdict.reason == image_check.SYNSET_MISMATCH
    assert GOLDFISH in verdict.detail and TENCH in verdict.detail


def test_a_record_without_a_synset_is_judged_by_its_label(jpeg):
    assert _check(_record(jpeg, **{records.SYNSET: None})).ok
