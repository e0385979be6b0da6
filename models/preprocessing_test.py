"""Tests for models/preprocessing.py: decoding ImageNet's odd files, geometry, the analyzers."""

import functools
import io

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from PIL import Image
from skimage import data as skdata
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from data import bundled, imagenet_classes, records
from models import preprocessing as pp
from models.config import TransformConfig, transform_custom_config


def _encode(array: np.ndarray, fmt: str = "JPEG", mode: str | None = None, **kw) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


@pytest.fixture(scope="module")
def cat():
    return skdata.chelsea()  # 300x451 RGB photograph


@pytest.mark.parametrize(
    "fmt, mode",
    [("JPEG", None), ("JPEG", "CMYK"), ("JPEG", "L"), ("PNG", None), ("BMP", None)],
)
def test_decode_rgb_gives_three_channels_close_to_pil(cat, fmt, mode):
    encoded = _encode(cat, fmt, mode, **({"quality": 95} if fmt == "JPEG" else {}))
    decoded = pp.decode_rgb(tf.constant(encoded)).numpy()
    reference = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"), dtype=np.float32)
    assert decoded.shape == (cat.shape[0], cat.shape[1], 3)
    assert decoded.dtype == np.uint8
    # libjpeg builds differ in IDCT and chroma upsampling: a grey level or two on average.
    assert np.abs(decoded.astype(np.float32) - reference).mean() < 2.0


def test_center_square_keeps_only_the_central_square():
    # 200 wide x 100 high: the central square is columns 50..149, painted 200; the rest 10.
    image = np.full((100, 200, 3), 10, np.uint8)
    image[:, 50:150] = 200
    square = pp.center_square(tf.constant(image), 50).numpy()
    assert square.shape == (50, 50, 3)
    np.testing.assert_allclose(square, 200.0, atol=1e-3)


def test_center_crop_takes_the_middle():
    image = np.arange(7 * 7).reshape(7, 7, 1)
    np.testing.assert_array_equal(pp.center_crop(tf.constant(image), 3).numpy(), image[2:5, 2:5])


@pytest.mark.parametrize("height, width", [(30, 40), (300, 451), (1500, 2000)])
def test_preprocess_image_matches_an_independent_pil_reference(height, width):
    rng = np.random.default_rng(0)
    # A smooth image, so that resampling kernels agree closely.
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack(
        [127 + 100 * np.sin(x / width * 3), 127 + 100 * np.cos(y / height * 2), 128 + 0 * x], -1
    )
    image = np.clip(image + rng.normal(0, 1, image.shape), 0, 255).astype(np.uint8)
    encoded = _encode(image, "PNG")
    got = pp.preprocess_image(tf.constant(encoded), 256, 227).numpy()
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    reference = np.asarray(square.resize((256, 256), Image.BILINEAR), np.float32)[14:241, 14:241]
    assert got.shape == (227, 227, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(np.float32) - reference).mean() < 2.0


def _stored(output, side):
    """The stored crop of one transformed instance: raw row-major uint8 bytes, no header."""
    return np.frombuffer(output[pp.IMAGE_KEY], np.uint8).reshape(side, side, 3)


def _run_transform(instances, config: dict, tmp_path):
    """tf.Transform over ``instances`` with ``TransformConfig(**config)``, the pixel statistics
    over every image unless ``config`` samples them."""
    fmt = records.get_format(config["record_format"])
    transform = TransformConfig(**{"analyzer_sample_one_in": 1, **config})
    custom_config = transform_custom_config(transform, code_fingerprint="test")
    feature_spec = {
        fmt.image_key: tf.io.FixedLenFeature([], tf.string),
        fmt.label_key: tf.io.FixedLenFeature([], tf.int64),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(feature_spec))
    fn = functools.partial(pp.preprocessing_fn, custom_config=custom_config)
    with tft_beam.Context(temp_dir=str(tmp_path)):
        # A list in, a list out: TFT runs Beam's in-memory runner for it.
        (transformed, _), _ = (instances, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
    return sorted(transformed, key=lambda r: r[pp.SYNSET_KEY])


def test_preprocessing_fn_crops_labels_and_measures_the_pixels(cat, tmp_path):
    coffee = skdata.coffee()
    tabby, espresso = 281, 967  # 0-based ImageNet indices
    instances = [
        {records.ENCODED: _encode(cat), records.LABEL: tabby + 1},
        {records.ENCODED: _encode(cat[:, ::-1].copy(), "PNG"), records.LABEL: tabby + 1},
        {records.ENCODED: _encode(coffee, mode="CMYK"), records.LABEL: espresso + 1},
        {records.ENCODED: _encode(coffee, mode="L"), records.LABEL: espresso + 1},
        {records.ENCODED: _encode(cat[:40, :30].copy()), records.LABEL: tabby + 1},
    ]
    config = {
        "record_format": "build_imagenet",
        "resize_size": 64,
        "crop_size": 56,
        "store_full_region": False,
    }
    outputs = _run_transform(instances, config, tmp_path)

    crops = np.stack([_stored(o, 56) for o in outputs])
    assert crops.shape == (5, 56, 56, 3)
    synsets = [o[pp.SYNSET_KEY].decode() for o in outputs]
    assert (
        synsets
        == [imagenet_classes.synset_of(tabby)] * 3 + [imagenet_classes.synset_of(espresso)] * 2
    )
    # The vocabulary is ordered by frequency: the tabby (3 records) comes first.
    assert [int(o[pp.CLASS_INDEX_KEY]) for o in outputs] == [0, 0, 0, 1, 1]

    # Reference statistics over every stored pixel, computed here with NumPy.
    pixels = crops.reshape(-1, 3).astype(np.float64)
    covariance = np.cov(pixels, rowvar=False, bias=True)
    eigval, eigvec = np.linalg.eigh(covariance)
    for o in outputs:
        np.testing.assert_allclose(o[pp.RGB_MEAN_KEY], pixels.mean(0), rtol=1e-4)
        np.testing.assert_allclose(o[pp.RGB_STD_KEY], pixels.std(0), rtol=1e-3)
        np.testing.assert_allclose(o[pp.RGB_EIGVAL_KEY], eigval, rtol=1e-3, atol=1e-2)
        got = np.reshape(o[pp.RGB_EIGVEC_KEY], (3, 3))
        # Eigenvectors are defined up to sign.
        np.testing.assert_allclose(np.abs(got), np.abs(eigvec), atol=1e-3)


def test_tfds_records_and_the_full_region(cat, tmp_path):
    config = {
        "record_format": "tfds",
        "resize_size": 40,
        "crop_size": 32,
        "store_full_region": True,
    }
    (output,) = _run_transform(
        [{records.TFDS_IMAGE: _encode(cat), records.TFDS_LABEL: 281}], config, tmp_path
    )
    # The whole resized square, not the 32 crop: raw bytes, no header.
    assert len(output[pp.IMAGE_KEY]) == 40 * 40 * 3
    expected = pp.preprocess_image(tf.constant(_encode(cat)), 40, 40).numpy()
    np.testing.assert_array_equal(_stored(output, 40), expected)
    assert output[pp.SYNSET_KEY].decode() == imagenet_classes.synset_of(281)  # tfds is 0-based


def _sample_train_instances():
    """The bundled sample's training split as raw instances (308 photographs of 7 classes)."""

    spec = {
        records.ENCODED: tf.io.FixedLenFeature([], tf.string),
        records.LABEL: tf.io.FixedLenFeature([], tf.int64),
    }
    files = records.split_files(bundled.SAMPLE_DIR, records.TRAIN_SPLIT)
    return [
        {k: v.numpy() for k, v in tf.io.parse_single_example(r, spec).items()}
        for r in tf.data.TFRecordDataset(files)
    ]


def _statistics(pixels_by_image: np.ndarray):
    """(mean, std, eigval, eigvec) over all pixels of [N, P, 3] images, in NumPy (float64)."""
    pixels = pixels_by_image.reshape(-1, 3).astype(np.float64)
    covariance = np.cov(pixels, rowvar=False, bias=True)
    eigval, eigvec = np.linalg.eigh(covariance)
    return pixels.mean(0), pixels.std(0), eigval, eigvec


@pytest.mark.slow
def test_sampled_analyzers_measure_exactly_the_hash_sample_within_tolerance(tmp_path):
    """k = 4 on the sample's 308 training images: the statistics are NumPy's over exactly the
    images whose bytes hash to bucket 0, and within the stated tolerance of the full pass."""
    instances = _sample_train_instances()
    config = {"record_format": "build_imagenet", "resize_size": 64, "crop_size": 56}
    full = _run_transform(instances, config, tmp_path / "full")
    sampled = _run_transform(instances, {**config, "analyzer_sample_one_in": 4}, tmp_path / "k4")
    crops = np.stack([_stored(o, 56) for o in full]).reshape(len(full), -1, 3)
    assert [o[pp.IMAGE_KEY] for o in sampled] == [o[pp.IMAGE_KEY] for o in full]

    # The rule: Fingerprint64 of the encoded bytes, bucket 0 of 4 (order-independent).
    by_image = {o[pp.IMAGE_KEY]: i for i, o in enumerate(full)}
    encoded = tf.constant([i[records.ENCODED] for i in instances])
    chosen = tf.strings.to_hash_bucket_fast(encoded, 4).numpy() == 0
    assert 40 < chosen.sum() < 120  # about a quarter (67 here)
    chosen_crops = np.stack(
        [
            crops[by_image[pp.raw_bytes(pp.preprocess_image(e, 64, 56)[None]).numpy()[0]]]
            for e, c in zip(encoded, chosen, strict=True)
            if c
        ]
    )
    mean, std, eigval, eigvec = _statistics(chosen_crops)
    got = sampled[0]
    np.testing.assert_allclose(got[pp.RGB_MEAN_KEY], mean, rtol=1e-4)
    np.testing.assert_allclose(got[pp.RGB_STD_KEY], std, rtol=1e-3)
    np.testing.assert_allclose(got[pp.RGB_EIGVAL_KEY], eigval, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(
        np.abs(np.reshape(got[pp.RGB_EIGVEC_KEY], (3, 3))), np.abs(eigvec), atol=1e-3
    )

    # The tolerance against the full pass (docs/benchmarks.md): each channel mean within 3
    # standard errors of the mean of n per-image means; std within 15 %; eigenvalues within
    # 25 % of the largest; the principal colour axis within 8 degrees.
    full_mean, full_std, full_eigval, full_eigvec = _statistics(crops)
    np.testing.assert_allclose(full[0][pp.RGB_MEAN_KEY], full_mean, rtol=1e-4)
    standard_error = crops.mean(1).std(0) / np.sqrt(chosen.sum())
    assert np.all(np.abs(got[pp.RGB_MEAN_KEY] - full_mean) <= 3 * standard_error)
    assert np.all(np.abs(got[pp.RGB_STD_KEY] / full_std - 1) <= 0.15)
    assert np.all(np.abs(got[pp.RGB_EIGVAL_KEY] - full_eigval) <= 0.25 * full_eigval[-1])
    principal = np.reshape(got[pp.RGB_EIGVEC_KEY], (3, 3))[:, -1]
    assert abs(principal @ full_eigvec[:, -1]) >= np.cos(np.radians(8))


def test_the_sample_rule_is_deterministic_and_one_in_one_is_everything():
    encoded = tf.constant([bytes([i]) * 50 for i in range(200)])
    first = pp.analyzer_sample(encoded, 8).numpy()
    np.testing.assert_array_equal(pp.analyzer_sample(encoded[::-1], 8).numpy()[::-1], first)
    assert 10 < first.sum() < 45
    assert pp.analyzer_sample(encoded, 1).numpy().all()
    with pytest.raises(ValueError, match="analyzer_sample_one_in must be >= 1, got 0"):
        TransformConfig(analyzer_sample_one_in=0)
