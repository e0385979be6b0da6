"""The CIFAR-10 net: cuda-convnet geometry, parameter count, LRN, decay, serialisation, training."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from models import cifar10

WEIGHTED_LAYERS = ["conv1", "conv2", "conv3", "conv4", "fc"]


def convnet_pool(size):
    """cuda-convnet's pooling output size (sizeX=3, stride=2, start=0): a partial last window."""
    return math.ceil((size - 3) / 2) + 1


def layer_shapes(size, num_classes):
    after_pool1 = convnet_pool(size)
    after_pool2 = convnet_pool(after_pool1)
    return {
        "conv1": (size, size, 64),
        "pool1": (after_pool1, after_pool1, 64),
        "lrn1": (after_pool1, after_pool1, 64),
        "conv2": (after_pool1, after_pool1, 64),
        "lrn2": (after_pool1, after_pool1, 64),
        "pool2": (after_pool2, after_pool2, 64),
        "conv3": (after_pool2, after_pool2, 64),
        "conv4": (after_pool2, after_pool2, 32),
        "flatten": (after_pool2 * after_pool2 * 32,),
        "fc": (num_classes,),
        "predictions": (num_classes,),
    }


def paper_params(size, num_classes):
    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + c_out

    after_pools = convnet_pool(convnet_pool(size))
    fc = after_pools * after_pools * 32 * num_classes + num_classes
    return conv(5, 3, 64) + conv(5, 64, 64) + conv(3, 64, 64) + conv(3, 64, 32) + fc


def images(batch, size=32, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype(np.float32)


@pytest.fixture
def policy():
    yield tf_keras.mixed_precision.set_global_policy
    tf_keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("input_size", [32, 24])
def test_layer_output_shapes(input_size):
    model = cifar10.build_cifar10_net(input_size=input_size)
    expected = layer_shapes(input_size, 10)
    assert [layer.name for layer in model.layers] == ["image", *expected]
    for name, shape in expected.items():
        assert model.get_layer(name).output.shape == (None, *shape), name
    assert model(images(2, input_size)).shape == (2, 10)


def test_parameter_count():
    assert paper_params(32, 10) == 183_210
    assert cifar10.build_cifar10_net().count_params() == 183_210
    assert cifar10.build_cifar10_net(num_classes=1000).count_params() == paper_params(32, 1000)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "num_classes must be a positive integer"),
        ({"input_size": 0}, "input_size must be a positive integer"),
        ({"input_size": "32"}, "input_size must be a positive integer"),
        ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
        ({"lrn_implementation": "caffe"}, "unknown implementation 'caffe'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cifar10.build_cifar10_net(**kwargs)


def test_lrn_layers_use_the_paper_parameters_and_both_implementations_agree():
    reference = cifar10.build_cifar10_net(lrn_implementation="tf_nn", classifier_activation=None)
    explicit = cifar10.build_cifar10_net(lrn_implementation="explicit", classifier_activation=None)
    for name in ("lrn1", "lrn2"):
        layer = explicit.get_layer(name)
        assert (layer.n, layer.k, layer.alpha, layer.beta) == (5, 2.0, 1e-4, 0.75)
        assert layer.implementation == "explicit"
        assert reference.get_layer(name).implementation == "tf_nn"
    explicit.set_weights(reference.get_weights())
    x = images(4) * 50.0  # large enough that the LRN denominators differ from k
    expected = reference(x).numpy()
    # Logits, not probabilities: softmax of large logits magnifies float32 rounding. The bound
    # is relative to the largest logit because the two sums round differently by ~1e-7 and
    # small logits are differences of large terms.
    np.testing.assert_allclose(explicit(x).numpy(), expected, atol=1e-5 * np.abs(expected).max())


def test_weight_decay_on_kernels():
    model = cifar10.build_cifar10_net(weight_decay=4e-3)
    kernels = [model.get_layer(name).kernel.numpy().astype(np.float64) for name in WEIGHTED_LAYERS]
    assert len(model.losses) == len(WEIGHTED_LAYERS)
    expected = 0.5 * 4e-3 * sum(np.sum(k**2) for k in kernels)
    np.testing.assert_allclose(float(tf.add_n(model.losses)), expected, rtol=1e-5)
    assert cifar10.build_cifar10_net(weight_decay=0.0).losses == []


def test_initialisation():
    model = cifar10.build_cifar10_net()
    for name, fan_in in (("conv1", 75), ("conv2", 1600), ("conv3", 576), ("conv4", 576)):
        kernel, bias = (w.numpy() for w in model.get_layer(name).weights)
        # He-normal: std sqrt(2 / fan_in); >= 4,800 draws put the estimate within ~1%.
        expected_std = math.sqrt(2 / fan_in)
        assert abs(kernel.std() - expected_std) < 0.05 * expected_std, name
        np.testing.assert_array_equal(bias, 0.0)


def test_round_trips(tmp_path):
    model = cifar10.build_cifar10_net(lrn_implementation="explicit")
    x = images(3)
    expected = model(x).numpy()
    clone = tf_keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), expected)

    path = os.path.join(tmp_path, "cifar10")
    model.save(path)
    loaded = tf_keras.models.load_model(path)
    assert loaded.get_layer("lrn2").implementation == "explicit"
    np.testing.assert_array_equal(loaded(x).numpy(), expected)
    np.testing.assert_array_equal(tf.saved_model.load(path)(tf.constant(x)).numpy(), expected)


def test_classifier_activation_none_returns_logits():
    model = cifar10.build_cifar10_net(classifier_activation=None)
    x = images(2)
    np.testing.assert_array_equal(
        model(x).numpy(), tf_keras.Model(model.input, model.get_layer("fc").output)(x).numpy()
    )


@pytest.mark.parametrize("policy_name", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_predictions_float32(policy, policy_name):
    policy(policy_name)
    model = cifar10.build_cifar10_net()
    compute_dtype = tf_keras.mixed_precision.global_policy().compute_dtype
    assert model.get_layer("lrn1").output.dtype == compute_dtype
    predictions = model(images(2))
    assert predictions.dtype == tf.float32
    np.testing.assert_allclose(predictions.numpy().sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("lrn_implementation", ["tf_nn", "explicit"])
def test_one_sgd_step_reduces_the_loss(lrn_implementation):
    tf_keras.utils.set_random_seed(0)
    model = cifar10.build_cifar10_net(
        lrn_implementation=lrn_implementation, classifier_activation=None
    )
    model.compile(
        optimizer=tf_keras.optimizers.SGD(learning_rate=0.01),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = images(4, seed=1), np.array([1, 4, 4, 9])
    before = model.evaluate(x, y, verbose=0)  # cross-entropy + weight decay
    model.train_on_batch(x, y)
    assert model.evaluate(x, y, verbose=0) < before
