"""The Trainer's input: transformed records -> (augmented) float image batches and labels.

Plain tf.data, testable without TFX. Training and evaluation preprocessing sit side by side so
their differences are visible: training takes a random crop (when Transform stored the larger
region), a random horizontal flip and the paper's PCA lighting noise; evaluation and serving
take the center crop. Images stay in 0..255: the model normalises them itself, so the exported
model needs nothing from this module but ``decode_stored`` and ``eval_crop``.
"""

from __future__ import annotations

import tensorflow as tf

from models import preprocessing as pp


def decode_stored(
    serialized: tf.Tensor, stored_size: int, mirror: tf.Tensor | None = None
) -> tf.Tensor:
    """Serialized uint8 crops [N] -> float32 images [N, stored_size, stored_size, 3].

    ``mirror`` [N] bool flips those images left-right on the way, each while still uint8: next
    to free, where a select over the float32 batch cost more than half of the whole input
    (docs/benchmarks.md).
    """
    spec = tf.TensorSpec([stored_size, stored_size, 3], tf.uint8)
    if mirror is None:
        images = tf.map_fn(
            lambda s: tf.io.parse_tensor(s, tf.uint8), serialized, fn_output_signature=spec
        )
    else:

        def decode(args):
            image = tf.io.parse_tensor(args[0], tf.uint8)
            return tf.cond(args[1], lambda: tf.reverse(image, axis=[1]), lambda: image)

        images = tf.map_fn(decode, (serialized, mirror), fn_output_signature=spec)
    return tf.cast(images, tf.float32)


def eval_crop(images: tf.Tensor, crop_size: int) -> tf.Tensor:
    """Evaluation and serving: the central crop (a no-op when Transform stored the crop)."""
    return pp.center_crop(images, crop_size)


def random_crop(images: tf.Tensor, crop_size: int, seed: int | None = None) -> tf.Tensor:
    """An independent random ``crop_size``² window per image."""
    if images.shape[1] == crop_size:
        return images
    channels = images.shape[-1]
    return tf.map_fn(
        lambda image: tf.image.random_crop(image, [crop_size, crop_size, channels], seed=seed),
        images,
    )


def random_mirror(serialized: tf.Tensor, seed: int | None = None) -> tf.Tensor:
    """[N] bool: which images of the batch to flip left-right, each with probability 1/2."""
    return tf.random.uniform(tf.shape(serialized), seed=seed) < 0.5


def pca_lighting(
    images: tf.Tensor,
    eigval: tf.Tensor,
    eigvec: tf.Tensor,
    std: float,
    seed: int | None = None,
) -> tf.Tensor:
    """The paper's lighting noise: add [p1 p2 p3][a1 s1, a2 s2, a3 s3]^T to every pixel.

    ``eigval`` [N, 3] and ``eigvec`` [N, 9] (columns p_i, row-major) come from the RGB
    covariance of the training set; a_i ~ N(0, std) is drawn once per image. The paper writes
    the eigenvalue l_i where s_i stands here; that only has the right size for some pixel
    scale, so, as the common reimplementations do (cuda-convnet's successors, fb.resnet.torch),
    s_i = sqrt(l_i) is used: the standard deviation along p_i, which scales with the pixels.
    On the 0..255 scale, l_i itself would shift colours by hundreds of levels.
    """
    if std == 0:
        return images
    alpha = tf.random.normal(tf.shape(eigval), stddev=std, seed=seed)
    vectors = tf.reshape(eigvec, [-1, 3, 3])
    shift = tf.einsum("nij,nj->ni", vectors, alpha * tf.sqrt(tf.maximum(eigval, 0.0)))
    return images + shift[:, tf.newaxis, tf.newaxis, :]


def make_dataset(
    file_pattern: str | list[str],
    feature_spec: dict,
    batch_size: int,
    crop_size: int,
    stored_size: int,
    training: bool,
    lighting_std: float = 0.1,
    shuffle_buffer: int = 1024,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (images [N, crop, crop, 3] float32 0..255, class indices [N] int64).

    Training repeats forever and drops the last partial batch (steps are counted by the
    Trainer); evaluation makes one pass.
    """
    files = tf.data.Dataset.list_files(file_pattern, shuffle=training, seed=seed)
    dataset = tf.data.TFRecordDataset(
        files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE
    )
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=training)

    def parse(serialized):
        features = tf.io.parse_example(serialized, feature_spec)
        serialized = features[pp.IMAGE_KEY]
        if training:
            images = decode_stored(serialized, stored_size, random_mirror(serialized, seed))
            images = random_crop(images, crop_size, seed)
            images = pca_lighting(
                images,
                features[pp.RGB_EIGVAL_KEY],
                features[pp.RGB_EIGVEC_KEY],
                lighting_std,
                seed,
            )
        else:
            images = eval_crop(decode_stored(serialized, stored_size), crop_size)
        return images, features[pp.CLASS_INDEX_KEY]

    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
