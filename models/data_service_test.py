"""Tests for models/data_service.py: a real dispatcher and real workers on localhost serve the
Trainer's training input; each element of an epoch arrives once; training steps run on it."""

import gc

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from models import augmentation, data_service, input_pipeline
from models.input_pipeline_test import write_transformed

SIDE = 8
FILES = 5
PER_FILE = 13  # 65 records: batches of 8 leave partial ones, at the end of each worker's share


@pytest.fixture(scope="module")
def service():
    dispatcher = data_service.start_dispatcher()
    workers = [data_service.start_worker(0, dispatcher.target) for _ in range(2)]
    yield dispatcher.target
    gc.collect()  # iterators still open would hold the workers' stop for their timeout
    for worker in workers:
        worker.stop()
    dispatcher.stop()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Uncompressed transformed records; each label (0..64) is a record's identity."""
    root = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(0)
    for f in range(FILES):
        labels = range(f * PER_FILE, (f + 1) * PER_FILE)
        images = rng.integers(0, 256, (PER_FILE, SIDE, SIDE, 3), dtype=np.uint8)
        write_transformed(root / f"part-{f}.tfrecord", images, labels)
    return str(root / "*.tfrecord")


def test_the_service_address_forms():
    assert data_service._address("grpc://host:5000") == ("grpc", "host:5000")
    assert data_service._address("host:5000") == ("grpc", "host:5000")
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        data_service._address("http://host:5000")


def test_each_element_of_an_epoch_arrives_once(service, records):
    epoch = input_pipeline.epoch_dataset(records, 8, SIDE, "", training=True, seed=1)
    labels = np.concatenate([b.numpy() for _, b in data_service.distribute(epoch, service)])
    assert sorted(labels) == list(range(FILES * PER_FILE))
    # Repeated on the workers (as make_dataset does: one job), each epoch hands out every
    # file again: three epochs, every element three times.
    labels = np.concatenate(
        [b.numpy() for _, b in data_service.distribute(epoch.repeat(3), service)]
    )
    assert sorted(labels) == sorted(list(range(FILES * PER_FILE)) * 3)


def test_the_workers_run_plain_tensorflow(records):
    """No Python function in the graph the workers receive: a py_function cannot run there."""
    epoch = input_pipeline.epoch_dataset(records, 8, SIDE, "", training=True, seed=1)
    graph = tf.compat.v1.GraphDef.FromString(epoch._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node} | {
        node.op for function in graph.library.function for node in function.node_def
    }
    assert not {op for op in ops if "PyFunc" in op}, ops
    assert "DecodeRaw" in ops and "ParseExampleV2" in ops


def test_training_steps_through_the_service(service, records):
    dataset = input_pipeline.make_dataset(
        records, 8, SIDE, "", training=True, seed=0, data_service=service, deterministic=False
    )
    inputs = tf_keras.Input([SIDE, SIDE, 3], dtype="uint8")
    x = augmentation.Augment(
        crop_size=6,
        rgb_mean=[128.0] * 3,
        rgb_std=[64.0] * 3,
        rgb_eigval=[1.0, 2.0, 3.0],
        rgb_eigvec=np.eye(3),
    )(inputs)
    x = tf_keras.layers.Flatten()(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(FILES * PER_FILE)(x))
    model.compile(
        "sgd", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False
    )
    # 20 steps: more than two epochs of 65 records.
    history = model.fit(dataset, steps_per_epoch=10, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))


def test_cache_and_the_service_do_not_combine(records):
    with pytest.raises(ValueError, match="cache and data_service"):
        input_pipeline.make_dataset(
            records,
            8,
            SIDE,
            "",
            training=True,
            cache=True,
            data_service="grpc://localhost:1",
            deterministic=False,
        )


def test_a_deterministic_order_cannot_come_from_the_service(records):
    """Workers take files as they ask for them (dynamic sharding): the order is theirs."""
    with pytest.raises(ValueError, match="deterministic"):
        input_pipeline.make_dataset(
            records, 8, SIDE, "", training=True, data_service="grpc://localhost:1"
        )
