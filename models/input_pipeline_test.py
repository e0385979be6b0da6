"""Tests for models/input_pipeline.py: the host input reads and parses uint8 batches, nothing
else, from uncompressed or GZIP records, with and without the RAM cache."""

import numpy as np
import pytest
import tensorflow as tf

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from models import input_pipeline as ip
from models import preprocessing as pp

SIDE = 12


def _images(n, side=SIDE, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def write_transformed(path, images, labels, compression_type=""):
    """Transformed records as Transform writes them, built independently of the code under
    test: the image feature is NumPy's row-major bytes of the uint8 crop."""
    with tf.io.TFRecordWriter(str(path), options=compression_type) as writer:
        for image, label in zip(images, labels, strict=True):
            feature = {
                pp.IMAGE_KEY: tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[image.tobytes()])
                ),
                pp.CLASS_INDEX_KEY: tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[int(label)])
                ),
                pp.RGB_EIGVAL_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=[1, 2, 3])),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )


def test_raw_bytes_are_numpys_bytes_and_decode_raw_inverts_them():
    images = _images(7)
    stored = pp.raw_bytes(tf.constant(images)).numpy()
    assert list(stored) == [image.tobytes() for image in images]
    decoded = pp.decode_raw(tf.constant(stored), SIDE)
    assert decoded.dtype == tf.uint8
    np.testing.assert_array_equal(decoded.numpy(), images)
    traced = tf.function(lambda s: pp.decode_raw(s, SIDE)).get_concrete_function(
        tf.TensorSpec([None], tf.string)
    )
    assert traced.output_shapes.as_list() == [None, SIDE, SIDE, 3]  # static for the model
    assert pp.raw_bytes(tf.zeros([0, SIDE, SIDE, 3], tf.uint8)).shape == (0,)


def test_a_record_of_another_size_is_an_error_not_a_silent_reshape():
    # Twice the bytes of one image: a reshape to [-1, S, S, 3] would make two images of it.
    doubled = tf.constant([_images(2).tobytes()])
    with pytest.raises(tf.errors.InvalidArgumentError):
        pp.decode_raw(doubled, SIDE)
    with pytest.raises(tf.errors.InvalidArgumentError):
        pp.decode_raw(tf.constant([_images(1).tobytes(), b"short"]), SIDE)


def test_parse_batch_agrees_with_an_independent_reference(tmp_path):
    images, labels = _images(9), np.arange(9) % 4
    write_transformed(tmp_path / "t.tfrecord", images, labels)
    serialized = tf.constant(
        [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "t.tfrecord"))]
    )
    got_images, got_labels = ip.parse_batch(serialized, SIDE)
    assert got_images.dtype == tf.uint8 and got_labels.dtype == tf.int64
    np.testing.assert_array_equal(got_images.numpy(), images)
    np.testing.assert_array_equal(got_labels.numpy(), labels)


@pytest.mark.parametrize("compression_type", ["", "GZIP"])
@pytest.mark.parametrize("cache", [False, True])
def test_make_dataset_training_and_evaluation(tmp_path, compression_type, cache):
    images, labels = _images(10), np.arange(10) % 3
    path = tmp_path / "transformed"
    write_transformed(path, images, labels, compression_type)
    options = dict(stored_size=SIDE, compression_type=compression_type, cache=cache)

    train = ip.make_dataset(str(path), 4, training=True, seed=0, **options)
    batch_images, batch_labels = next(iter(train))
    # uint8 stored regions, unchanged: no crop, flip or float conversion on the host.
    assert batch_images.shape == (4, SIDE, SIDE, 3) and batch_images.dtype == tf.uint8
    assert batch_labels.dtype == tf.int64
    by_bytes = {image.tobytes(): label for image, label in zip(images, labels, strict=True)}
    for image, label in zip(batch_images.numpy(), batch_labels.numpy(), strict=True):
        assert by_bytes[image.tobytes()] == label
    assert len(list(train.take(7))) == 7  # repeats forever, full batches
    assert all(b[0].shape[0] == 4 for b in train.take(7))

    evaluation = ip.make_dataset(str(path), 4, training=False, **options)
    batches = list(evaluation)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]  # one pass, in order, last batch kept
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), images)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)


def test_training_order_is_the_seeds_unless_told_otherwise_evaluation_in_file_order(tmp_path):
    write_transformed(tmp_path / "t", _images(4), range(4))
    train = ip.make_dataset(str(tmp_path / "t"), 2, SIDE, "", training=True)
    free = ip.make_dataset(str(tmp_path / "t"), 2, SIDE, "", training=True, deterministic=False)
    evaluation = ip.make_dataset(str(tmp_path / "t"), 2, SIDE, "", training=False)
    assert train.options().deterministic is True
    assert free.options().deterministic is False
    assert evaluation.options().deterministic is True


def _labels(dataset, count: int) -> list[int]:
    """The first ``count`` records' labels (each record's identity here)."""
    spec = {pp.CLASS_INDEX_KEY: tf.io.FixedLenFeature([], tf.int64)}
    return [
        int(tf.io.parse_single_example(r, spec)[pp.CLASS_INDEX_KEY]) for r in dataset.take(count)
    ]


def test_each_pass_is_a_permutation_fixed_by_the_seed_and_a_stream_resumes_anywhere(tmp_path):
    """Three files of 7 records: every pass holds each record once, in an order of the seed's;
    a stream begun at record k is the whole stream from record k (a resumed training)."""
    for number in range(3):
        write_transformed(
            tmp_path / f"part-{number}", _images(7), range(7 * number, 7 * number + 7)
        )
    pattern = str(tmp_path / "part-*")
    stream = _labels(ip.training_records(pattern, "", seed=5, shuffle_buffer=4), 63)
    passes = [stream[i : i + 21] for i in range(0, 63, 21)]
    assert all(sorted(p) == list(range(21)) for p in passes)
    assert len({tuple(p) for p in passes}) == 3  # each pass in its own order
    assert _labels(ip.training_records(pattern, "", seed=5, shuffle_buffer=4), 63) == stream
    assert _labels(ip.training_records(pattern, "", seed=6, shuffle_buffer=4), 21) != passes[0]
    for start in (5, 21, 30):
        resumed = ip.training_records(pattern, "", 5, shuffle_buffer=4, start=start, pass_size=21)
        assert _labels(resumed, 63 - start) == stream[start:], start


def test_the_wrong_codec_fails_loudly(tmp_path):
    write_transformed(tmp_path / "t", _images(3), range(3), "GZIP")
    with pytest.raises(tf.errors.DataLossError):
        list(ip.make_dataset(str(tmp_path / "t"), 2, SIDE, "", training=False))
