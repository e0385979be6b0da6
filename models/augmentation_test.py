"""Tests for models/augmentation.py: crops are windows of the stored region, mirrors about half,
lighting follows the paper's distribution, evaluation is the central crop, no weights."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from models import augmentation as aug

STATS = dict(
    rgb_mean=[120.0, 110.0, 100.0],
    rgb_std=[60.0, 55.0, 50.0],
    rgb_eigval=[0.2, 3.0, 50.0],
    rgb_eigvec=np.eye(3),
)


def _coordinates(n, side):
    """Images whose pixels hold their own (row, column): a crop reveals where it was taken."""
    y, x = np.mgrid[0:side, 0:side]
    image = np.stack([y, x, np.zeros_like(x)], -1).astype(np.uint8)
    return image, np.repeat(image[None], n, axis=0)


def test_random_crops_are_independent_windows_mirrored_about_half_the_time():
    image, images = _coordinates(400, 10)
    crops = aug.random_crop_and_mirror(
        tf.constant(images), 7, tf.random.Generator.from_seed(3)
    ).numpy()
    assert crops.shape == (400, 7, 7, 3) and crops.dtype == np.uint8
    offsets, mirrored = set(), []
    for crop in crops:
        oy = int(crop[0, 0, 0])
        ox = int(min(crop[0, 0, 1], crop[0, -1, 1]))
        window = image[oy : oy + 7, ox : ox + 7]
        flipped = np.array_equal(crop, window[:, ::-1])
        assert flipped or np.array_equal(crop, window)  # exactly a window, or its mirror
        assert 0 <= oy <= 3 and 0 <= ox <= 3
        offsets.add((oy, ox))
        mirrored.append(flipped)
    assert len(offsets) == 16  # every one of the 4 x 4 windows occurs
    assert 0.4 < np.mean(mirrored) < 0.6


def test_with_the_crop_stored_only_the_mirror_is_random():
    images = np.random.default_rng(0).integers(0, 256, (400, 5, 5, 3), dtype=np.uint8)
    out = aug.random_crop_and_mirror(
        tf.constant(images), 5, tf.random.Generator.from_seed(1)
    ).numpy()
    same = np.all(out == images, axis=(1, 2, 3))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)
    assert 0.4 < mirrored.mean() < 0.6


def test_crop_and_mirror_at_given_offsets():
    image, images = _coordinates(2, 6)
    out = aug.crop_and_mirror(
        tf.constant(images), 3, tf.constant([[0, 2], [3, 1]]), tf.constant([False, True])
    ).numpy()
    np.testing.assert_array_equal(out[0], image[0:3, 2:5])
    np.testing.assert_array_equal(out[1], image[3:6, 1:4][:, ::-1])


def test_pca_lighting_follows_the_paper_distribution():
    n = 20000
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))  # orthonormal columns
    eigval = np.array([0.2, 3.0, 50.0])
    shifts = aug.lighting_shift(
        n, eigval, q, std=0.1, generator=tf.random.Generator.from_seed(7)
    ).numpy()
    # shift = P (alpha * sqrt(lambda)), alpha ~ N(0, 0.1^2 I)  =>  Cov = P diag(0.01 lambda) P^T.
    expected = q @ np.diag(0.01 * eigval) @ q.T
    np.testing.assert_allclose(np.cov(shifts, rowvar=False), expected, rtol=0.05, atol=1e-3)
    np.testing.assert_allclose(shifts.mean(0), 0, atol=0.2)


def test_inference_is_the_normalised_central_crop_and_deterministic():
    images = np.random.default_rng(2).integers(0, 256, (3, 12, 12, 3), dtype=np.uint8)
    layer = aug.Augment(crop_size=8, **STATS)
    out = layer(tf.constant(images), training=False).numpy()
    expected = (images[:, 2:10, 2:10].astype(np.float32) - STATS["rgb_mean"]) / STATS["rgb_std"]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer(tf.constant(images)).numpy(), out)  # default: inference


def test_training_adds_one_lighting_shift_per_image_then_normalises():
    # Constant images: every crop and mirror is the same, so the output shows the shift alone.
    images = np.full((2000, 10, 10, 3), 128, np.uint8)
    layer = aug.Augment(crop_size=8, lighting_std=0.1, **STATS)
    out = layer(tf.constant(images), training=True).numpy()
    assert out.shape == (2000, 8, 8, 3)
    shift = out * STATS["rgb_std"] + STATS["rgb_mean"] - 128.0  # undo the normalisation
    np.testing.assert_allclose(shift, shift[:, :1, :1, :].repeat(8, 1).repeat(8, 2), atol=1e-3)
    per_image = shift[:, 0, 0, :]
    np.testing.assert_allclose(np.var(per_image, 0), 0.01 * np.array([0.2, 3.0, 50.0]), rtol=0.1)
    no_light = aug.Augment(crop_size=8, lighting_std=0.0, **STATS)(images, training=True)
    unlit = no_light.numpy() * STATS["rgb_std"] + STATS["rgb_mean"]
    np.testing.assert_allclose(unlit, 128.0, atol=1e-3)


def test_training_as_a_tensor_selects_the_branch():
    images = np.random.default_rng(3).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    layer = aug.Augment(crop_size=6, lighting_std=0.0, **STATS)
    np.testing.assert_array_equal(
        layer(images, training=tf.constant(False)).numpy(), layer(images, training=False).numpy()
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_output_in_the_compute_dtype(policy):
    images = np.random.default_rng(4).integers(0, 256, (2, 10, 10, 3), dtype=np.uint8)
    reference = aug.Augment(crop_size=8, **STATS)(images, training=False).numpy()
    layer = aug.Augment(crop_size=8, dtype=tf_keras.mixed_precision.Policy(policy), **STATS)
    out = layer(tf.constant(images), training=False)
    assert out.dtype == layer.compute_dtype != "float32"
    np.testing.assert_allclose(out.numpy().astype(np.float32), reference, atol=0.05)
    assert layer(tf.constant(images), training=True).dtype == layer.compute_dtype


def test_the_layer_has_no_weights_and_round_trips_its_config():
    layer = aug.Augment(crop_size=8, seed=5, **STATS)
    layer(np.zeros((1, 10, 10, 3), np.uint8), training=True)
    assert layer.weights == []
    clone = aug.Augment.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_bad_statistics_are_refused():
    with pytest.raises(ValueError, match="finite statistics"):
        aug.Augment(crop_size=8, **{**STATS, "rgb_mean": [np.nan, 0.0, 0.0]})
