"""LRN against an independent NumPy transcription of the paper's formula (Section 3.3)."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from models import lrn

IMPLEMENTATIONS = ["tf_nn", "explicit"]
K, N, ALPHA, BETA = 2.0, 5, 1e-4, 0.75


def paper_lrn(a, n=N, k=K, alpha=ALPHA, beta=BETA):
    """b[i] = a[i] / (k + alpha * sum_{j=max(0, i-n/2)}^{min(C-1, i+n/2)} a[j]^2)^beta, float64."""
    a = np.asarray(a, np.float64)
    channels = a.shape[-1]
    b = np.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        window = np.sum(a[..., lo : hi + 1] ** 2, axis=-1)
        b[..., i] = a[..., i] / (k + alpha * window) ** beta
    return b


def max_relative_error(actual, expected):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-30)))


def matches_paper(actual, inputs, rtol=1e-5):
    return np.allclose(actual, paper_lrn(inputs), rtol=rtol, atol=0.0)


def activations(channels, scale, seed=0):
    """ReLU-like feature maps; at scale 100 alpha * sum(a^2) is ~1-10, so the alpha term and
    the window bounds dominate the result instead of vanishing next to k."""
    rng = np.random.default_rng(seed)
    return (np.abs(rng.normal(size=(2, 3, 4, channels))) * scale).astype(np.float32)


@pytest.fixture
def policy():
    """Sets a global mixed-precision policy for one test and always restores float32."""
    yield tf_keras.mixed_precision.set_global_policy
    tf_keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("channels", [1, 3, 5, 8, 96])
@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_matches_numpy_reference(implementation, channels, scale):
    x = activations(channels, scale)
    layer = lrn.LocalResponseNormalization(implementation=implementation)
    y = layer(tf.constant(x)).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, paper_lrn(x), rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_edge_channels_use_clipped_window(implementation):
    # One non-zero channel at each edge: channel 0's window is [0, 2] and channel 7's [5, 7],
    # so each edge value is normalised by its own square only.
    x = np.zeros((1, 1, 1, 8), np.float32)
    x[..., 0], x[..., 7] = 300.0, -200.0
    y = lrn.LocalResponseNormalization(implementation=implementation)(x).numpy()
    np.testing.assert_allclose(y[0, 0, 0, 0], 300.0 / (2 + 1e-4 * 300.0**2) ** 0.75, rtol=1e-6)
    np.testing.assert_allclose(y[0, 0, 0, 7], -200.0 / (2 + 1e-4 * 200.0**2) ** 0.75, rtol=1e-6)
    np.testing.assert_array_equal(y[0, 0, 0, 1:7], 0.0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_other_parameters_follow_the_formula(implementation):
    x = activations(7, 10.0)
    layer = lrn.LocalResponseNormalization(
        n=3, k=1.0, alpha=1e-3, beta=0.5, implementation=implementation
    )
    np.testing.assert_allclose(
        layer(x).numpy(), paper_lrn(x, n=3, k=1.0, alpha=1e-3, beta=0.5), rtol=1e-5, atol=0.0
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_runs_inside_a_keras_model(implementation):
    # The seed's layer defined only Keras-1 `get_output`, so a Keras 2 model passed its input
    # through untouched. Going through Model.predict proves `call` is what runs.
    x = activations(16, 100.0)
    inputs = tf_keras.Input(x.shape[1:])
    model = tf_keras.Model(
        inputs, lrn.LocalResponseNormalization(implementation=implementation)(inputs)
    )
    y = model.predict(x, verbose=0)
    assert matches_paper(y, x)
    assert not np.allclose(y, x)


def test_seed_defects_would_be_caught():
    x = activations(16, 100.0)
    # The seed passed n itself as depth_radius: an 11-channel window.
    window_of_11 = tf.nn.local_response_normalization(
        x, depth_radius=N, bias=K, alpha=ALPHA, beta=BETA
    ).numpy()
    assert not matches_paper(window_of_11, x)
    # The seed's layer was the identity under Keras 2.
    assert not matches_paper(x, x)
    # Caffe's convention divides alpha by n; the paper does not.
    caffe_alpha = tf.nn.local_response_normalization(
        x, depth_radius=N // 2, bias=K, alpha=ALPHA / N, beta=BETA
    ).numpy()
    assert not matches_paper(caffe_alpha, x)


@pytest.mark.parametrize("n", [4, 0, -3, 5.0, True])
def test_rejects_bad_window(n):
    with pytest.raises(ValueError, match=r"n must be a positive odd integer.*n="):
        lrn.LocalResponseNormalization(n=n)


def test_rejects_unknown_implementation():
    with pytest.raises(ValueError, match="unknown implementation 'cudnn'"):
        lrn.LocalResponseNormalization(implementation="cudnn")


def test_rejects_input_that_is_not_4d():
    with pytest.raises(ValueError, match="expected ndim=4"):
        lrn.LocalResponseNormalization()(tf.zeros((2, 8)))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_config_round_trip(implementation):
    layer = lrn.LocalResponseNormalization(
        n=7, k=1.5, alpha=2e-4, beta=0.5, implementation=implementation, name="lrn_x"
    )
    clone = lrn.LocalResponseNormalization.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.n, clone.k, clone.alpha, clone.beta) == (7, 1.5, 2e-4, 0.5)
    assert clone.implementation == implementation and clone.name == "lrn_x"
    x = activations(12, 50.0)
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_savedmodel_and_h5_round_trip(implementation, tmp_path):
    x = activations(10, 100.0)
    inputs = tf_keras.Input(x.shape[1:])
    model = tf_keras.Model(
        inputs, lrn.LocalResponseNormalization(implementation=implementation)(inputs)
    )
    expected = model(x).numpy()

    # No custom_objects: the layer is registered, which is what lets the Trainer's and the
    # Evaluator's loaders find it.
    model.save(os.path.join(tmp_path, "savedmodel"))
    model.save(os.path.join(tmp_path, "model.h5"))
    for path in ("savedmodel", "model.h5"):
        loaded = tf_keras.models.load_model(os.path.join(tmp_path, path))
        assert loaded.layers[-1].implementation == implementation
        np.testing.assert_array_equal(loaded(x).numpy(), expected)

    # Plain TensorFlow (how TFMA and TF Serving load it) runs the traced computation too.
    restored = tf.saved_model.load(os.path.join(tmp_path, "savedmodel"))
    np.testing.assert_array_equal(restored(tf.constant(x)).numpy(), expected)


def test_gradients_finite_and_implementations_agree():
    x = tf.constant(activations(16, 300.0))
    gradients = {}
    for implementation in IMPLEMENTATIONS:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = lrn.LocalResponseNormalization(implementation=implementation)(x)
            loss = tf.reduce_sum(y * tf.range(1.0, 17.0))  # weights make every channel count
        gradients[implementation] = tape.gradient(loss, x).numpy()
        assert np.all(np.isfinite(gradients[implementation]))
        assert np.any(gradients[implementation] != 0)
    # The fused op's hand-written gradient kernel against autodiff of the written-out sum.
    np.testing.assert_allclose(gradients["tf_nn"], gradients["explicit"], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "policy_name, dtype, rtol",
    # rtol: twice the half-ulp of the output format (float16 2^-11, bfloat16 2^-8).
    [("mixed_float16", tf.float16, 1e-3), ("mixed_bfloat16", tf.bfloat16, 8e-3)],
)
def test_mixed_precision(policy, implementation, policy_name, dtype, rtol):
    policy(policy_name)
    # Activations up to ~600: a float16 squared sum would overflow (65504) and give zeros.
    x = activations(16, 200.0)
    layer = lrn.LocalResponseNormalization(implementation=implementation)
    assert layer.compute_dtype == dtype.name
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)  # autocast: float32 in, low precision out
        loss = tf.reduce_sum(tf.cast(y, tf.float32))
    assert y.dtype == dtype
    rounded = tf.cast(tf.cast(x, dtype), tf.float32).numpy()  # what the layer actually saw
    np.testing.assert_allclose(tf.cast(y, tf.float32).numpy(), paper_lrn(rounded), rtol=rtol)
    gradient = tape.gradient(loss, xt).numpy()
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)
