"""Tests for models/input_pipeline.py: augmentation statistics and the dataset it builds."""

import numpy as np
import tensorflow as tf

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from models import input_pipeline as ip
from models import preprocessing as pp


def test_decoding_with_random_mirrors_flips_about_half_and_nothing_else():
    images = np.random.default_rng(0).integers(0, 256, (400, 5, 5, 3), dtype=np.uint8)
    serialized = tf.stack([tf.io.serialize_tensor(image) for image in images])
    decoded = ip.decode_stored(serialized, 5, ip.random_mirror(serialized, seed=1)).numpy()
    assert decoded.dtype == np.float32
    same = np.all(decoded == images, axis=(1, 2, 3))
    mirrored = np.all(decoded == images[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same ^ mirrored)  # each image is exactly itself or its mirror
    assert 0.4 < mirrored.mean() < 0.6
    np.testing.assert_array_equal(ip.decode_stored(serialized, 5).numpy(), images)


def test_random_crop_takes_independent_windows_of_the_stored_region():
    # Each pixel holds its own coordinates, so a crop reveals where it was taken.
    y, x = np.mgrid[0:10, 0:10]
    image = np.stack([y, x, np.zeros_like(x)], -1).astype(np.float32)
    images = tf.constant(np.repeat(image[None], 64, axis=0))
    crops = ip.random_crop(images, 7, seed=3).numpy()
    assert crops.shape == (64, 7, 7, 3)
    offsets = {(int(c[0, 0, 0]), int(c[0, 0, 1])) for c in crops}
    assert len(offsets) > 5 and all(0 <= oy <= 3 and 0 <= ox <= 3 for oy, ox in offsets)
    for c, (oy, ox) in zip(
        crops, [(int(c[0, 0, 0]), int(c[0, 0, 1])) for c in crops], strict=False
    ):
        np.testing.assert_array_equal(c, image[oy : oy + 7, ox : ox + 7])
    assert ip.random_crop(images, 10) is images  # nothing to crop


def test_pca_lighting_follows_the_paper_distribution():
    n = 20000
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # orthonormal columns p_i
    eigval = np.array([0.2, 3.0, 50.0])
    images = tf.zeros([n, 1, 1, 3])
    shifted = ip.pca_lighting(
        images,
        tf.constant(np.tile(eigval, (n, 1)), tf.float32),
        tf.constant(np.tile(q.reshape(9), (n, 1)), tf.float32),
        std=0.1,
        seed=7,
    ).numpy()
    shifts = shifted.reshape(n, 3)
    # shift = P (alpha * sqrt(lambda)), alpha ~ N(0, 0.1^2 I)  =>  Cov = P diag(0.01 lambda) P^T.
    expected = q @ np.diag(0.01 * eigval) @ q.T
    np.testing.assert_allclose(np.cov(shifts, rowvar=False), expected, rtol=0.05, atol=1e-3)
    np.testing.assert_allclose(shifts.mean(0), 0, atol=0.2)
    assert ip.pca_lighting(images, None, None, std=0) is images


def _write_transformed(path, n, side):
    rng = np.random.default_rng(1)
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i in range(n):
            image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            feature = {
                pp.IMAGE_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(
                        value=[tf.io.serialize_tensor(tf.constant(image)).numpy()]
                    )
                ),
                pp.CLASS_INDEX_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                pp.RGB_EIGVAL_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=[1, 2, 3])),
                pp.RGB_EIGVEC_KEY: tf.train.Feature(
                    float_list=tf.train.FloatList(value=np.eye(3).reshape(9))
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return {
        pp.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        pp.CLASS_INDEX_KEY: tf.io.FixedLenFeature([], tf.int64),
        pp.RGB_EIGVAL_KEY: tf.io.FixedLenFeature([3], tf.float32),
        pp.RGB_EIGVEC_KEY: tf.io.FixedLenFeature([9], tf.float32),
    }


def test_make_dataset_training_and_evaluation(tmp_path):
    path = tmp_path / "transformed.gz"
    spec = _write_transformed(path, 10, 12)
    train = ip.make_dataset(str(path), spec, 4, crop_size=10, stored_size=12, training=True)
    images, labels = next(iter(train))
    assert images.shape == (4, 10, 10, 3) and images.dtype == tf.float32
    assert labels.dtype == tf.int64
    assert len(list(train.take(7))) == 7  # repeats forever

    evaluation = ip.make_dataset(str(path), spec, 4, crop_size=10, stored_size=12, training=False)
    batches = list(evaluation)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]  # one pass, last batch kept
    first = tf.io.parse_tensor(
        next(
            iter(
                tf.data.TFRecordDataset(str(path), "GZIP").map(
                    lambda s: tf.io.parse_single_example(s, spec)[pp.IMAGE_KEY]
                )
            )
        ),
        tf.uint8,
    ).numpy()
    np.testing.assert_array_equal(batches[0][0][0].numpy(), first[1:11, 1:11].astype(np.float32))
    np.testing.assert_array_equal(
        np.concatenate([b[1] for b in batches]), [i % 3 for i in range(10)]
    )
