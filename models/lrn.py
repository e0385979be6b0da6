"""Local Response Normalization as the AlexNet paper defines it (Section 3.3).

    b[i] = a[i] / (k + alpha * sum(a[j]**2 for j in [max(0, i - n//2), min(N - 1, i + n//2)]))**beta

with k=2, n=5, alpha=1e-4, beta=0.75. ``n`` is the odd window size and alpha is *not* divided
by it (Caffe divides it; the paper does not). Two implementations compute the same thing:
``"tf_nn"`` calls ``tf.nn.local_response_normalization``, whose ``depth_radius`` is the half
window ``n // 2`` and whose alpha is likewise undivided; ``"explicit"`` writes the window sum out,
which documents the formula and cross-checks the fused op.
"""

import tensorflow as tf
import tf_keras

IMPLEMENTATIONS = ("tf_nn", "explicit")


@tf_keras.saving.register_keras_serializable(package="alexnet_tfx")
class LocalResponseNormalization(tf_keras.layers.Layer):
    """Cross-channel LRN over the last axis of a 4-D (batch, height, width, channels) tensor."""

    def __init__(self, n=5, k=2.0, alpha=1e-4, beta=0.75, implementation="tf_nn", **kwargs):
        super().__init__(**kwargs)
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0 or n % 2 == 0:
            raise ValueError(
                f"LocalResponseNormalization: n must be a positive odd integer (the window "
                f"size, centred on each channel); got n={n!r}"
            )
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"LocalResponseNormalization: unknown implementation {implementation!r}; "
                f"expected one of {IMPLEMENTATIONS}"
            )
        self.n = n
        self.k = float(k)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.implementation = implementation
        self.input_spec = tf_keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                f"{self.name}: the channel (last) dimension must be known; got {input_shape}"
            )
        super().build(input_shape)

    def call(self, inputs):
        # Always computed in float32. TF 2.16 registers no CPU kernel of the LRN op for bfloat16,
        # and in float16 the squared sum overflows (max 65504) once a 5-channel window holds
        # activations above ~115, which ReLU feature maps reach: the op then returns zeros.
        # LRN is cheap next to the convolutions, so the casts cost little.
        x = tf.cast(inputs, tf.float32)
        if self.implementation == "tf_nn":
            outputs = tf.nn.local_response_normalization(
                x, depth_radius=self.n // 2, bias=self.k, alpha=self.alpha, beta=self.beta
            )
        else:
            outputs = x / tf.pow(self.k + self.alpha * self._window_sum_of_squares(x), self.beta)
        return tf.cast(outputs, inputs.dtype)

    def _window_sum_of_squares(self, x):
        """sum(a[j]**2) over the n channels centred on each channel.

        Zero-padding the channel axis by n//2 on each side makes every window n wide, and the
        padded zeros add nothing, which is exactly the paper's clipped bounds at the edges.
        Shifted slices keep the sum exact (a running cumulative sum would cancel
        catastrophically for large activations).
        """
        radius = self.n // 2
        channels = x.shape[-1]
        padded = tf.pad(tf.square(x), [[0, 0], [0, 0], [0, 0], [radius, radius]])
        return tf.add_n([padded[..., offset : offset + channels] for offset in range(self.n)])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "n": self.n,
            "k": self.k,
            "alpha": self.alpha,
            "beta": self.beta,
            "implementation": self.implementation,
        }
