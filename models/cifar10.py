"""The seed's CIFAR-10 net, shaped like cuda-convnet's ``layers-conv-local-11pct``.

conv1 64@5×5 → pool1 → lrn1 → conv2 64@5×5 → lrn2 → pool2 → conv3 64@3×3 → conv4 32@3×3 → fc,
with ReLU after every convolution; cuda-convnet's locally connected layers 3 and 4 are
convolutions here, as in the seed. Choices the seed leaves open:

* Pools are max 3×3 stride 2 with "same" padding: cuda-convnet's pools end with a partial
  window, ``ceil((size - 3) / 2) + 1`` outputs, so 32 → 16 → 8 (and its 24-pixel crops
  24 → 12 → 6); "valid" would give 15 → 7.
* LRN is the AlexNet layer with the paper's parameters (n=5, k=2, alpha=1e-4, beta=0.75), not
  cuda-convnet's (window 9, k=1, alpha divided by the window), so one LRN definition serves
  every model and the two nets differ only in geometry.
* Convolution kernels start He-normal, fc Glorot-uniform (Keras' default), biases 0:
  cuda-convnet tuned a separate std per layer for its own solver; He scaling keeps activations
  at unit scale through the ReLUs, so the net trains under AlexNet's SGD recipe untuned.
* Weight decay uses AlexNet's convention (``weight_decay * w`` in the update, on kernels).
"""

import tf_keras

from models.alexnet import kernel_regularizer
from models.lrn import LocalResponseNormalization


def build_cifar10_net(
    num_classes=10,
    input_size=32,
    lrn_implementation="tf_nn",
    weight_decay=5e-4,
    classifier_activation="softmax",
    name="cifar10_net",
):
    """The net as a tf_keras functional model on (input_size, input_size, 3) images.

    Argument names match ``build_alexnet`` where they overlap. Any positive ``input_size``
    works (only fc's fan-in depends on it); 32 is CIFAR-10's full image. The ``predictions``
    layer outputs float32 under a mixed-precision policy; ``classifier_activation=None``
    returns logits.
    """
    for argument, value in (("num_classes", num_classes), ("input_size", input_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"build_cifar10_net: {argument} must be a positive integer; got {value!r}"
            )
    regularizer = kernel_regularizer(weight_decay)

    def conv(filters, size, layer_name):
        return tf_keras.layers.Conv2D(
            filters,
            size,
            padding="same",
            activation="relu",
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
            name=layer_name,
        )

    def lrn(layer_name):
        return LocalResponseNormalization(implementation=lrn_implementation, name=layer_name)

    def pool(layer_name):
        return tf_keras.layers.MaxPooling2D(3, strides=2, padding="same", name=layer_name)

    inputs = tf_keras.Input((input_size, input_size, 3), name="image")
    x = conv(64, 5, "conv1")(inputs)
    x = lrn("lrn1")(pool("pool1")(x))
    x = conv(64, 5, "conv2")(x)
    x = pool("pool2")(lrn("lrn2")(x))
    x = conv(64, 3, "conv3")(x)
    x = conv(32, 3, "conv4")(x)
    x = tf_keras.layers.Flatten(name="flatten")(x)
    x = tf_keras.layers.Dense(num_classes, kernel_regularizer=regularizer, name="fc")(x)
    outputs = tf_keras.layers.Activation(
        classifier_activation, dtype="float32", name="predictions"
    )(x)
    return tf_keras.Model(inputs, outputs, name=name)
