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
from data import imagenet_classes, records
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


def _run_transform(instances, config: dict, tmp_path):
    """tf.Transform over ``instances`` with ``TransformConfig(**config)``."""
    fmt = records.get_format(config["record_format"])
    custom_config = transform_custom_config(TransformConfig(**config), code_fingerprint="test")
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

    crops = np.stack([tf.io.parse_tensor(o[pp.IMAGE_KEY], tf.uint8).numpy() for o in outputs])
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
    stored = tf.io.parse_tensor(output[pp.IMAGE_KEY], tf.uint8).numpy()
    assert stored.shape == (40, 40, 3)  # the whole resized square, not the 32 crop
    assert output[pp.SYNSET_KEY].decode() == imagenet_classes.synset_of(281)  # tfds is 0-based
