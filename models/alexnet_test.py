"""AlexNet against the paper: shapes, parameter counts, initialisation, decay, training."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from models import alexnet

# The paper's layer geometry (Section 3.5, Figure 2), written out independently of the builder.
LAYER_SHAPES = {
    "conv1": (55, 55, 96),
    "lrn1": (55, 55, 96),
    "pool1": (27, 27, 96),
    "conv2": (27, 27, 256),
    "lrn2": (27, 27, 256),
    "pool2": (13, 13, 256),
    "conv3": (13, 13, 384),
    "conv4": (13, 13, 384),
    "conv5": (13, 13, 256),
    "pool3": (6, 6, 256),
    "flatten": (9216,),
    "fc6": (4096,),
    "dropout6": (4096,),
    "fc7": (4096,),
    "dropout7": (4096,),
}
WEIGHTED_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
BIAS_ONE = {"conv2", "conv4", "conv5", "fc6", "fc7"}
GROUPED_LAYERS = {"conv2", "conv4", "conv5"}
NUM_CLASSES = 10  # small head keeps the tests fast; the fc6/fc7 body is the paper's anyway


def conv_params(size, c_in, c_out, groups=1):
    return size * size * (c_in // groups) * c_out + c_out


def dense_params(f_in, f_out):
    return f_in * f_out + f_out


def paper_layer_params(num_classes, groups):
    return {
        "conv1": conv_params(11, 3, 96),
        "conv2": conv_params(5, 96, 256, groups),
        "conv3": conv_params(3, 256, 384),
        "conv4": conv_params(3, 384, 384, groups),
        "conv5": conv_params(3, 384, 256, groups),
        "fc6": dense_params(6 * 6 * 256, 4096),
        "fc7": dense_params(4096, 4096),
        "fc8": dense_params(4096, num_classes),
    }


def images(batch, size=227, seed=0):
    """Roughly what the input pipeline feeds: per-channel standardised pixels."""
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def alexnets():
    """One 227-input model per tower layout, shared by the tests that only read them."""
    return {
        grouped: alexnet.build_alexnet(NUM_CLASSES, grouped=grouped) for grouped in (False, True)
    }


@pytest.fixture
def policy():
    yield tf_keras.mixed_precision.set_global_policy
    tf_keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("input_size", [227, 224])
@pytest.mark.parametrize("grouped", [False, True])
def test_layer_output_shapes(alexnets, input_size, grouped):
    if input_size == 227:
        model = alexnets[grouped]
    else:
        model = alexnet.build_alexnet(NUM_CLASSES, input_size=input_size, grouped=grouped)
    assert model.input_shape == (None, input_size, input_size, 3)
    for name, shape in LAYER_SHAPES.items():
        assert model.get_layer(name).output.shape == (None, *shape), name
    assert model.get_layer("fc8").output.shape == (None, NUM_CLASSES)
    assert model.output_shape == (None, NUM_CLASSES)
    assert model(images(2, input_size)).shape == (2, NUM_CLASSES)
    expected_order = ["image"] + (["conv1_pad"] if input_size == 224 else [])
    expected_order += ["conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "conv4"]
    expected_order += ["conv5", "pool3", "flatten", "fc6", "dropout6", "fc7", "dropout7", "fc8"]
    assert [layer.name for layer in model.layers] == expected_order + ["predictions"]


@pytest.mark.parametrize("grouped, total", [(False, 62_378_344), (True, 60_965_224)])
def test_parameter_counts(grouped, total):
    model = alexnet.build_alexnet(grouped=grouped)
    per_layer = paper_layer_params(1000, groups=2 if grouped else 1)
    assert sum(per_layer.values()) == total
    assert {name: model.get_layer(name).count_params() for name in per_layer} == per_layer
    assert model.count_params() == total
    assert all(w.trainable for w in model.weights)


def test_224_input_is_padded_one_pixel_before_and_two_after():
    model = alexnet.build_alexnet(NUM_CLASSES, input_size=224)
    padding = tf_keras.Model(model.input, model.get_layer("conv1_pad").output)
    padded = padding(np.ones((1, 224, 224, 3), np.float32)).numpy()[0, ..., 0]
    assert padded.shape == (227, 227)
    rows_with_image = np.flatnonzero(padded.any(axis=1))
    cols_with_image = np.flatnonzero(padded.any(axis=0))
    assert (rows_with_image[0], rows_with_image[-1]) == (1, 224)
    assert (cols_with_image[0], cols_with_image[-1]) == (1, 224)
    assert padded.sum() == 224 * 224


@pytest.mark.parametrize("input_size", [225, 256, 32, "227"])
def test_rejects_other_input_sizes(input_size):
    with pytest.raises(ValueError, match=r"input_size must be one of \(224, 227\).*got"):
        alexnet.build_alexnet(input_size=input_size)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "num_classes must be a positive integer"),
        ({"dropout_rate": 1.0}, r"dropout_rate must be in \[0, 1\)"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0"),
        ({"lrn_implementation": "caffe"}, "unknown implementation 'caffe'"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        alexnet.build_alexnet(**kwargs)


def test_lrn_implementations_give_the_same_network(alexnets):
    reference = alexnets[False]
    explicit = alexnet.build_alexnet(NUM_CLASSES, lrn_implementation="explicit")
    assert {explicit.get_layer(n).implementation for n in ("lrn1", "lrn2")} == {"explicit"}
    assert {reference.get_layer(n).implementation for n in ("lrn1", "lrn2")} == {"tf_nn"}
    explicit.set_weights(reference.get_weights())
    x = images(2)
    expected = reference(x, training=False).numpy()
    # Probabilities: an absolute bound (a relative one is meaningless for ~0 probabilities).
    np.testing.assert_allclose(explicit(x, training=False).numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("grouped", [False, True])
def test_paper_initialisation(alexnets, grouped):
    model = alexnets[grouped]
    for name in WEIGHTED_LAYERS:
        kernel, bias = (w.numpy() for w in model.get_layer(name).weights)
        # Sampling error of a std estimated from N draws is ~0.01 / sqrt(2N) (N >= 34,848
        # here in the conv layers, 40,960 in fc8), so 3% is > 8 standard errors.
        assert abs(kernel.std() - 0.01) < 0.03 * 0.01, name
        assert abs(kernel.mean()) < 6 * 0.01 / np.sqrt(kernel.size), name
        np.testing.assert_array_equal(bias, 1.0 if name in BIAS_ONE else 0.0, err_msg=name)


def test_glorot_initialisation_and_unknown_names():
    model = alexnet.build_alexnet(NUM_CLASSES, initialization="glorot")
    for name in WEIGHTED_LAYERS:
        kernel, bias = (w.numpy() for w in model.get_layer(name).weights)
        fan_in, fan_out = np.prod(kernel.shape[:-1]), kernel.shape[-1] * np.prod(kernel.shape[:-2])
        if kernel.ndim == 2:
            fan_in, fan_out = kernel.shape
        # Glorot-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), std a / sqrt(3).
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit * (1 + 1e-6), name
        assert abs(kernel.std() - limit / np.sqrt(3)) < 0.03 * limit / np.sqrt(3), name
        np.testing.assert_array_equal(bias, 0.0, err_msg=name)
    with pytest.raises(ValueError, match="initialization"):
        alexnet.build_alexnet(NUM_CLASSES, initialization="he")


def test_weight_decay_is_the_papers_update_term(alexnets):
    weight_decay = 5e-4  # the builder's default
    model = alexnets[True]
    kernels = [model.get_layer(name).kernel for name in WEIGHTED_LAYERS]
    # Kernels only: one L2 term per weighted layer, none on biases.
    assert len(model.losses) == len(WEIGHTED_LAYERS)
    expected = 0.5 * weight_decay * sum(np.sum(k.numpy().astype(np.float64) ** 2) for k in kernels)
    np.testing.assert_allclose(float(tf.add_n(model.losses)), expected, rtol=1e-5)
    # The paper's update rule subtracts weight_decay * w: that must be the penalty's gradient.
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    for kernel, gradient in zip(kernels, tape.gradient(penalty, kernels), strict=True):
        np.testing.assert_allclose(gradient.numpy(), weight_decay * kernel.numpy(), rtol=1e-5)


def test_no_weight_decay_adds_no_loss():
    assert alexnet.build_alexnet(NUM_CLASSES, weight_decay=0.0).losses == []


def test_grouped_conv_matches_keras_groups_and_keeps_towers_apart():
    x = np.random.default_rng(1).normal(size=(2, 9, 9, 8)).astype(np.float32)
    ours = alexnet.GroupedConv2D(6, 3, padding="same", groups=2)
    native = tf_keras.layers.Conv2D(6, 3, padding="same", groups=2)  # XLA-compiled on CPU
    y = ours(x)
    native.build(x.shape)
    native.set_weights(ours.get_weights())
    assert ours.kernel.shape == (3, 3, 4, 6)
    np.testing.assert_allclose(y.numpy(), native(x).numpy(), rtol=1e-5, atol=1e-6)

    # Changing the second tower's input channels leaves the first tower's outputs unchanged.
    x2 = x.copy()
    x2[..., 4:] += 1.0
    y2 = ours(x2).numpy()
    np.testing.assert_array_equal(y2[..., :3], y.numpy()[..., :3])
    assert not np.allclose(y2[..., 3:], y.numpy()[..., 3:])


def test_grouped_model_has_half_depth_kernels(alexnets):
    model = alexnets[True]
    depths = {name: model.get_layer(name).kernel.shape[2] for name in GROUPED_LAYERS}
    assert depths == {"conv2": 48, "conv4": 192, "conv5": 192}
    assert model.get_layer("conv3").kernel.shape[2] == 256  # conv3 sees both towers


@pytest.mark.parametrize("grouped", [False, True])
def test_config_round_trip(alexnets, grouped):
    model = alexnets[grouped]
    clone = tf_keras.Model.from_config(model.get_config())
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    clone.set_weights(model.get_weights())
    x = images(2)
    np.testing.assert_array_equal(clone(x, training=False), model(x, training=False))


def test_savedmodel_round_trip(tmp_path):
    model = alexnet.build_alexnet(NUM_CLASSES, input_size=224, grouped=True)
    x = images(2, 224)
    expected = model(x, training=False).numpy()
    path = os.path.join(tmp_path, "alexnet")
    model.save(path)
    loaded = tf_keras.models.load_model(path)
    assert isinstance(loaded.get_layer("conv2"), alexnet.GroupedConv2D)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), expected)
    restored = tf.saved_model.load(path)  # how TFMA loads it: no Keras classes involved
    np.testing.assert_array_equal(restored(tf.constant(x), training=False).numpy(), expected)


def test_classifier_activation(alexnets):
    model = alexnets[False]
    logits_model = alexnet.build_alexnet(NUM_CLASSES, classifier_activation=None)
    logits_model.set_weights(model.get_weights())
    x = images(2)
    probabilities = model(x, training=False).numpy()
    logits = logits_model(x, training=False).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-6)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(probabilities, shifted / shifted.sum(-1, keepdims=True), rtol=1e-5)


def test_dropout_only_in_training(alexnets):
    model = alexnets[False]
    x = images(1)
    inference = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x, training=False).numpy(), inference)
    assert not np.allclose(model(x, training=True).numpy(), inference)


@pytest.mark.parametrize("policy_name", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_predictions_float32(policy, policy_name):
    policy(policy_name)
    model = alexnet.build_alexnet(NUM_CLASSES, grouped=True)
    compute_dtype = tf_keras.mixed_precision.global_policy().compute_dtype
    for name in ("conv1", "lrn1", "conv2", "fc8"):
        assert model.get_layer(name).output.dtype == compute_dtype, name
    predictions = model(images(1), training=False)
    assert predictions.dtype == tf.float32
    assert np.all(np.isfinite(predictions.numpy()))
    np.testing.assert_allclose(predictions.numpy().sum(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("grouped", [False, True])
def test_one_sgd_step_reduces_the_loss(grouped):
    tf_keras.utils.set_random_seed(0)
    # No dropout, so the step is a true gradient step on the loss it is evaluated with.
    model = alexnet.build_alexnet(
        NUM_CLASSES, grouped=grouped, dropout_rate=0.0, classifier_activation=None
    )
    model.compile(
        # Smaller than the paper's 0.01: at initialisation fc7's outputs are ~1 (its bias) for
        # every image, so with 10 classes and 4 images one step at 0.01 moves all logits
        # together by ~0.01 * 4096 and overshoots; the paper's 1000 classes x 128 images do not.
        optimizer=tf_keras.optimizers.SGD(learning_rate=1e-3),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = images(4, seed=2), np.array([0, 3, 3, 7])
    before = model.evaluate(x, y, verbose=0)  # cross-entropy + weight decay
    model.train_on_batch(x, y)
    after = model.evaluate(x, y, verbose=0)
    assert after < before
