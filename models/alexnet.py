"""AlexNet as the paper builds it (Krizhevsky, Sutskever, Hinton, NeurIPS 2012, Section 3).

Input size: the paper says 224×224, but conv1 (11×11, stride 4, no padding) yields the stated
55×55 only from 227×227. ``input_size=227`` feeds conv1 directly; ``input_size=224`` zero-pads
3 pixels first, 1 before and 2 after on each axis, the split TensorFlow's "SAME" padding makes
when the total is odd (the paper does not say where the pixels go).

Grouping: ``grouped=True`` reproduces the two-GPU split, where conv2, conv4 and conv5 see only
the half of the previous layer on their own GPU (60,965,224 parameters at 1000 classes; the
single tower has 62,378,344).
"""

import tensorflow as tf
import tf_keras

from models.lrn import LocalResponseNormalization

INPUT_SIZES = (224, 227)
INITIALIZATIONS = ("paper", "glorot")
_CONV1_INPUT_SIZE = 227


@tf_keras.saving.register_keras_serializable(package="alexnet_tfx")
class GroupedConv2D(tf_keras.layers.Conv2D):
    """Conv2D whose ``groups`` are computed as separate convolutions and concatenated.

    Same variables, config and result as ``Conv2D(groups=g)``, but a different kernel path:
    tf_keras runs every grouped convolution under ``jit_compile=True`` because TensorFlow's
    CPU kernels lack grouped gradients without oneDNN. That XLA path is several times slower
    per training step on CPU than split convolutions (docs/benchmarks.md) and ties the
    SavedModel to XLA, which some runtimes and converters lack. Group ``g`` maps input channels
    ``[g*C/G, (g+1)*C/G)`` to output channels ``[g*F/G, (g+1)*F/G)``, as in ``Conv2D``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.data_format != "channels_last":
            raise ValueError(f"{self.name}: GroupedConv2D supports channels_last only")

    def call(self, inputs):
        pairs = zip(
            tf.split(inputs, self.groups, axis=-1),
            tf.split(self.kernel, self.groups, axis=-1),
            strict=True,
        )
        outputs = tf.concat([self.convolution_op(x, kernel) for x, kernel in pairs], axis=-1)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs)


def build_alexnet(
    num_classes=1000,
    input_size=227,
    grouped=False,
    lrn_implementation="tf_nn",
    dropout_rate=0.5,
    weight_decay=5e-4,
    classifier_activation="softmax",
    initialization="paper",
    name="alexnet",
):
    """The paper's AlexNet as a tf_keras functional model on (input_size, input_size, 3) images.

    Initialisation is the paper's: weights N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6
    and fc7 (so their ReLUs start in the positive regime), 0 elsewhere. Weight decay follows
    the paper's update rule, whose decay term is ``weight_decay * w``: that is the gradient of
    ``(weight_decay / 2) * sum(w**2)``, hence ``l2(weight_decay / 2)`` (Keras' ``l2(l)`` adds
    ``l * sum(w**2)``). It applies to kernels only, not biases, as in the reference Caffe
    models. ``initialization="glorot"`` swaps in Keras' defaults (Glorot-uniform kernels, zero
    biases): the paper's start needs many epochs to leave its initial plateau
    (docs/benchmarks.md, "The sample preset").
    ``classifier_activation=None`` returns logits; under a mixed-precision policy the
    ``predictions`` layer still outputs float32.
    """
    if input_size not in INPUT_SIZES:
        raise ValueError(
            f"build_alexnet: input_size must be one of {INPUT_SIZES} (227 feeds conv1 directly, "
            f"224 is zero-padded to 227); got input_size={input_size!r}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"build_alexnet: num_classes must be a positive integer; got {num_classes!r}"
        )
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"build_alexnet: dropout_rate must be in [0, 1); got {dropout_rate!r}")
    if initialization not in INITIALIZATIONS:
        raise ValueError(
            f"build_alexnet: initialization must be one of {INITIALIZATIONS}; "
            f"got {initialization!r}"
        )
    regularizer = kernel_regularizer(weight_decay)

    def initializers(bias):
        if initialization == "paper":
            return {
                "kernel_initializer": tf_keras.initializers.RandomNormal(stddev=0.01),
                "bias_initializer": tf_keras.initializers.Constant(bias),
            }
        return {"kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}

    towers = 2 if grouped else 1  # groups of conv2, conv4 and conv5

    def conv(filters, size, layer_name, bias, strides=1, padding="same", groups=1):
        layer_class = GroupedConv2D if groups > 1 else tf_keras.layers.Conv2D
        return layer_class(
            filters,
            size,
            strides=strides,
            padding=padding,
            groups=groups,
            activation="relu",
            kernel_regularizer=regularizer,
            **initializers(bias),
            name=layer_name,
        )

    def dense(units, layer_name, bias, activation="relu"):
        return tf_keras.layers.Dense(
            units,
            activation=activation,
            kernel_regularizer=regularizer,
            **initializers(bias),
            name=layer_name,
        )

    def lrn(layer_name):
        return LocalResponseNormalization(implementation=lrn_implementation, name=layer_name)

    def pool(layer_name):  # overlapping: 3×3 windows every 2 pixels
        return tf_keras.layers.MaxPooling2D(3, strides=2, name=layer_name)

    inputs = tf_keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    if input_size != _CONV1_INPUT_SIZE:
        x = tf_keras.layers.ZeroPadding2D(((1, 2), (1, 2)), name="conv1_pad")(x)
    x = conv(96, 11, "conv1", bias=0.0, strides=4, padding="valid")(x)
    x = pool("pool1")(lrn("lrn1")(x))
    x = conv(256, 5, "conv2", bias=1.0, groups=towers)(x)
    x = pool("pool2")(lrn("lrn2")(x))
    x = conv(384, 3, "conv3", bias=0.0)(x)
    x = conv(384, 3, "conv4", bias=1.0, groups=towers)(x)
    x = conv(256, 3, "conv5", bias=1.0, groups=towers)(x)
    x = pool("pool3")(x)
    x = tf_keras.layers.Flatten(name="flatten")(x)
    x = dense(4096, "fc6", bias=1.0)(x)
    x = tf_keras.layers.Dropout(dropout_rate, name="dropout6")(x)
    x = dense(4096, "fc7", bias=1.0)(x)
    x = tf_keras.layers.Dropout(dropout_rate, name="dropout7")(x)
    x = dense(num_classes, "fc8", bias=0.0, activation=None)(x)
    outputs = tf_keras.layers.Activation(
        classifier_activation, dtype="float32", name="predictions"
    )(x)
    return tf_keras.Model(inputs, outputs, name=name)


def kernel_regularizer(weight_decay):
    """The paper's decay ``weight_decay * w`` as a Keras L2 term, shared by every kernel."""
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}")
    return tf_keras.regularizers.l2(weight_decay / 2) if weight_decay else None
