"""The model's first layer: uint8 batches in, augmented (training) and normalised images out.

Augmentation runs where the model runs (on the accelerator), not on the host: the host input
only reads and parses (``models.input_pipeline``), and a GPU crops, flips and lights a batch in
microseconds. ``Augment`` takes the stored uint8 region [N, S, S, 3] and

* **in training**: takes an independent random ``crop``² window per image (when Transform
  stored the larger region, S > crop) and mirrors each image left-right with probability 1/2,
  both in one pair of gathers on uint8; adds the paper's PCA lighting noise; normalises;
* **in evaluation and serving**: takes the central window; no randomness (the paper's ten
  windows, ``ten_crops``, are the ``serving_ten_crop`` signature's: ``models.signatures``);

then normalises with the training set's channel mean and standard deviation and returns the
result in the layer's compute dtype (float16/bfloat16 under a mixed-precision policy). The
lighting shift and the normalisation are one multiply-add per pixel: (x + shift - mean) / std
= x / std + (shift - mean) / std, with the per-image, per-channel bias computed in float32 and
the pixels cast from uint8 (exact in float16 and bfloat16) straight to the compute dtype.

The statistics (Transform's analyzers) are constants of the graph, not weights. No op here is
a Python function. The random draws come from the layer's ``tf.random.Generator``, seeded from
``seed`` (or, without one, from Python's ``random``, which ``tf_keras.utils.set_random_seed``
seeds): its state is a variable, saved in checkpoints, so a resumed training draws what an
uninterrupted one would have drawn (``models.resume``).
"""

from __future__ import annotations

import random

import numpy as np
import tensorflow as tf
import tf_keras


def center_crop(images: tf.Tensor, crop_size: int) -> tf.Tensor:
    """The central ``crop_size``² window of [N, S, S, C] (the same slice Transform takes)."""
    side = images.shape[1]
    offset = (side - crop_size) // 2
    return images[:, offset : offset + crop_size, offset : offset + crop_size, :]


def crop_and_mirror(
    images: tf.Tensor, crop_size: int, offsets: tf.Tensor, mirror: tf.Tensor
) -> tf.Tensor:
    """Window [oy, oy + crop) x [ox, ox + crop) of each image, mirrored where ``mirror``.

    ``offsets`` [N, 2] int32 (oy, ox); ``mirror`` [N] bool. Two gathers (rows, then columns,
    the columns reversed for mirrored images), on any dtype: no per-image op.
    """
    steps = tf.range(crop_size)
    if images.shape[1] != crop_size:
        rows = offsets[:, :1] + steps  # [N, crop]
        images = tf.gather(images, rows, axis=1, batch_dims=1)
    columns = offsets[:, 1:] + tf.where(mirror[:, tf.newaxis], crop_size - 1 - steps, steps)
    return tf.gather(images, columns, axis=2, batch_dims=1)


def random_crop_and_mirror(
    images: tf.Tensor, crop_size: int, generator: tf.random.Generator
) -> tf.Tensor:
    """An independent uniformly random ``crop_size``² window per image, each mirrored with
    probability 1/2."""
    count = tf.shape(images)[0]
    margin = images.shape[1] - crop_size
    offsets = generator.uniform([count, 2], 0, margin + 1, dtype=tf.int32)
    mirror = generator.uniform([count]) < 0.5
    return crop_and_mirror(images, crop_size, offsets, mirror)


TEN_CROPS = 10


def ten_crops(images: tf.Tensor, crop_size: int) -> tf.Tensor:
    """The paper's test patches (§4.1) of [N, S, S, C]: the four corner windows and the
    central one, then the same five mirrored; [N * 10, crop, crop, C], image by image."""
    margin = images.shape[1] - crop_size
    corners = [[0, 0], [0, margin], [margin, 0], [margin, margin], [margin // 2, margin // 2]]
    offsets = tf.constant(corners * 2, tf.int32)  # [10, 2]
    mirror = tf.constant([False] * 5 + [True] * 5)
    count = tf.shape(images)[0]
    repeated = tf.repeat(images, TEN_CROPS, axis=0)  # image i at rows 10 i .. 10 i + 9
    return crop_and_mirror(
        repeated, crop_size, tf.tile(offsets, [count, 1]), tf.tile(mirror, [count])
    )


def lighting_shift(count, eigval, eigvec, std: float, generator: tf.random.Generator) -> tf.Tensor:
    """The paper's PCA lighting noise [count, 3]: [p1 p2 p3][a1 s1, a2 s2, a3 s3]^T per image.

    ``eigval`` [3] and ``eigvec`` [3, 3] (columns p_i) are the training set's RGB covariance
    eigenpairs; a_i ~ N(0, std) is drawn once per image. The paper writes the eigenvalue l_i
    where s_i stands here; that only has the right size for some pixel scale, so, as the common
    reimplementations do (cuda-convnet's successors, fb.resnet.torch), s_i = sqrt(l_i) is used:
    the standard deviation along p_i, which scales with the pixels. On the 0..255 scale, l_i
    itself would shift colours by hundreds of levels.
    """
    alpha = generator.normal([count, 3], stddev=std)
    scale = tf.sqrt(tf.maximum(tf.constant(eigval, tf.float32), 0.0))
    return tf.linalg.matmul(alpha * scale, tf.constant(eigvec, tf.float32), transpose_b=True)


class Augment(tf_keras.layers.Layer):
    """uint8 [N, S, S, 3] -> normalised [N, crop, crop, 3] in the compute dtype; random crop,
    mirror and PCA lighting in training only. See the module docstring."""

    def __init__(
        self,
        crop_size: int,
        rgb_mean,
        rgb_std,
        rgb_eigval,
        rgb_eigvec,
        lighting_std: float = 0.1,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.crop_size = int(crop_size)
        self.rgb_mean = [float(v) for v in np.reshape(rgb_mean, [3])]
        self.rgb_std = [float(v) for v in np.reshape(rgb_std, [3])]
        self.rgb_eigval = [float(v) for v in np.reshape(rgb_eigval, [3])]
        self.rgb_eigvec = [[float(v) for v in row] for row in np.reshape(rgb_eigvec, [3, 3])]
        self.lighting_std = float(lighting_std)
        self.seed = seed
        if min(self.rgb_std) <= 0 or not np.all(np.isfinite(self.rgb_mean + self.rgb_std)):
            raise ValueError(
                f"Augment needs finite statistics and a positive std; got mean {self.rgb_mean}, "
                f"std {self.rgb_std}"
            )

    def build(self, input_shape):
        # Outside any function being traced; in a distribution strategy's scope the generator
        # splits its stream over the replicas.
        with tf.init_scope():
            seed = self.seed if self.seed is not None else random.randint(1, 2**31 - 1)
            self.generator = tf.random.Generator.from_seed(seed)
        super().build(input_shape)

    def normalise(self, images: tf.Tensor, shift: tf.Tensor | None = None) -> tf.Tensor:
        """(images + shift - mean) / std as one multiply-add in the compute dtype."""
        inverse_std = 1.0 / tf.constant(self.rgb_std, tf.float32)
        bias = -tf.constant(self.rgb_mean, tf.float32) * inverse_std  # [3]
        if shift is not None:
            bias = bias + shift * inverse_std  # [N, 3]
            bias = bias[:, tf.newaxis, tf.newaxis, :]
        dtype = self.compute_dtype
        return tf.cast(images, dtype) * tf.cast(inverse_std, dtype) + tf.cast(bias, dtype)

    def _train(self, images: tf.Tensor) -> tf.Tensor:
        crops = random_crop_and_mirror(images, self.crop_size, self.generator)
        shift = None
        if self.lighting_std:
            shift = lighting_shift(
                tf.shape(images)[0],
                self.rgb_eigval,
                self.rgb_eigvec,
                self.lighting_std,
                self.generator,
            )
        return self.normalise(crops, shift)

    def _infer(self, images: tf.Tensor) -> tf.Tensor:
        return self.normalise(center_crop(images, self.crop_size))

    def call(self, images, training=None):
        if isinstance(training, bool) or training is None:
            return self._train(images) if training else self._infer(images)
        return tf.cond(training, lambda: self._train(images), lambda: self._infer(images))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], self.crop_size, self.crop_size, input_shape[-1]])

    def get_config(self):
        return {
            **super().get_config(),
            "crop_size": self.crop_size,
            "rgb_mean": self.rgb_mean,
            "rgb_std": self.rgb_std,
            "rgb_eigval": self.rgb_eigval,
            "rgb_eigvec": self.rgb_eigvec,
            "lighting_std": self.lighting_std,
            "seed": self.seed,
        }
