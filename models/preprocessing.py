"""The Transform step: decode every image once, in Beam, and store a fixed-size uint8 crop.

``preprocessing_fn`` runs in tf.Transform over the whole dataset and its graph is embedded in
the exported model, so serving decodes and crops exactly as training data was. Choices:

* **Geometry** (the paper's): scale the shorter side to ``resize_size`` (256), keep the
  central ``resize_size``² square, then keep either the central ``crop_size``² crop (227, the
  default: smallest records) or the whole square (``store_full_region``: the Trainer then takes
  the paper's random crops). Cropping the central square *before* resizing is the same mapping
  and never resizes pixels that are thrown away.
* **Storage**: the crop is stored as its raw uint8 bytes, row-major [S, S, 3] (one bytes
  feature, no header), so the Trainer decodes a whole batch with one ``tf.io.decode_raw``.
  float32 pixels would make the transformed data 4x larger and Transform slower
  (docs/benchmarks.md); normalisation to zero mean / unit variance happens in the model.
* **Analyzers**: statistics over the training split give the per-channel RGB mean and standard
  deviation (for normalisation) and the RGB covariance's eigen-decomposition (for the paper's
  PCA lighting augmentation). They are emitted as per-example features: 72 bytes next to a
  154,587-byte image, and the Trainer reads them without re-running the analysis. With
  ``analyzer_sample_one_in`` = k > 1 they are measured on a deterministic sample, the images
  whose encoded bytes hash (``tf.strings.to_hash_bucket_fast``) to bucket 0 of k: only those
  are decoded in the analysis pass (tf.Transform's first pass over the split, which otherwise
  decodes every image a second time); the others are skipped inside each batch.
* **Classes**: the label becomes its synset, and ``class_index`` is the synset's position in a
  vocabulary of the classes present in the training split, so the model has as many outputs as
  the data has classes. Validation classes unseen in training map to -1 (the Quarantine
  component rejects such records before they get here).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from data import imagenet_classes, records
from models.config import parse_transform_custom_config

# Transformed feature keys: the Trainer, the serving signatures and TFMA read these.
IMAGE_KEY = "image"  # raw bytes of the uint8 [stored_size, stored_size, 3] crop
CLASS_INDEX_KEY = "class_index"  # int64 position in the classes vocabulary
SYNSET_KEY = "synset"  # e.g. b"n02123045"; TFMA slices on it
RGB_MEAN_KEY = "rgb_mean"  # [3] training-set channel means, 0..255 scale
RGB_STD_KEY = "rgb_std"  # [3] channel standard deviations
RGB_EIGVAL_KEY = "rgb_eigval"  # [3] eigenvalues of the RGB covariance
RGB_EIGVEC_KEY = "rgb_eigvec"  # [9] eigenvectors (columns), row-major 3x3
RGB_STATISTICS_IMAGES_KEY = "rgb_statistics_images"  # [1] how many images they measured
CLASSES_VOCABULARY = "classes"
# The statistics of a split too small to have a sampled image: neutral, not guessed.
NEUTRAL_MEAN = 127.5
NEUTRAL_STD = 64.0


def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    """Any JPEG (RGB, CMYK, grayscale), PNG, GIF or BMP -> uint8 [H, W, 3].

    ImageNet holds CMYK and grayscale JPEGs and PNGs under .JPEG names; ``decode_image`` handles
    all of them, unlike ``decode_and_crop_jpeg``, which refuses PNG.
    """
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def center_square(image: tf.Tensor, size: int) -> tf.Tensor:
    """The central square of ``image``, resized to ``size``² (float32, 0..255)."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.minimum(height, width)
    square = tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )
    return tf.image.resize(square, [size, size], method="bilinear", antialias=True)


def center_crop(images: tf.Tensor, size: int) -> tf.Tensor:
    """The central ``size``² crop of a batch [N, S, S, C] (or one image [S, S, C])."""
    side = images.shape[-2]
    offset = (side - size) // 2
    return images[..., offset : offset + size, offset : offset + size, :]


def preprocess_image(encoded: tf.Tensor, resize_size: int, stored: int) -> tf.Tensor:
    """Encoded bytes -> the uint8 [stored, stored, 3] region that Transform keeps."""
    square = center_square(decode_rgb(encoded), resize_size)
    region = center_crop(square, stored)
    return tf.cast(tf.clip_by_value(tf.round(region), 0.0, 255.0), tf.uint8)


def _dense_column(tensor) -> tf.Tensor:
    """A [batch] tensor from a raw feature parsed as [batch], [batch, 1] or sparse."""
    if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.to_dense(tensor)
    return tf.reshape(tensor, [-1])


def raw_bytes(images: tf.Tensor) -> tf.Tensor:
    """uint8 images [N, S, S, 3] -> [N] strings, each the raw bytes of one image.

    TensorFlow has no inverse of ``decode_raw``; ``serialize_tensor`` of the whole batch puts
    the pixels, row-major, at the end of one TensorProto (its ``tensor_content``, the last field
    written), and one broadcast ``substr`` cuts them into images.
    """
    count = tf.shape(images)[0]
    size = tf.reduce_prod(tf.shape(images)[1:])
    serialized = tf.io.serialize_tensor(images)
    start = tf.strings.length(serialized) - count * size
    return tf.strings.substr(serialized, start + tf.range(count) * size, tf.fill([count], size))


def decode_raw(serialized: tf.Tensor, stored_size: int) -> tf.Tensor:
    """[N] strings of ``raw_bytes`` -> uint8 [N, stored_size, stored_size, 3]: one op.

    A record of another length fails: ``decode_raw`` refuses strings of unequal lengths, and
    the reshape to exactly N images refuses a common length that is not S * S * 3.
    """
    return tf.reshape(
        tf.io.decode_raw(serialized, tf.uint8),
        [tf.shape(serialized)[0], stored_size, stored_size, 3],
    )


def analyzer_sample(encoded: tf.Tensor, one_in: int) -> tf.Tensor:
    """[N] bool: the images the analyzers measure, about 1 in ``one_in``, chosen by a
    fingerprint of the encoded bytes (FarmHash: the same on every machine and run)."""
    if one_in == 1:
        return tf.ones_like(encoded, tf.bool)
    return tf.equal(tf.strings.to_hash_bucket_fast(encoded, one_in), 0)


def _pixel_statistics(images: tf.Tensor) -> dict[str, tf.Tensor]:
    """Training-set channel mean/std and covariance eigenpairs, as analyzers over ``images``.

    The analyzers sum, over the images measured, each image's pixel values and products of
    channel values: integers below 2**53 even for all of ImageNet, held exactly in float64, so
    the sums are the same whichever order Beam combines its partial sums in (float32 means were
    not: one Beam worker or two gave other last bits, and so another model). Every image
    contributes the same number of pixels, so the moments follow from the sums. A split so
    small that no image was sampled (fewer images than ``analyzer_sample_one_in``, roughly)
    gets neutral statistics instead, mean 127.5 and standard deviation 64 in each channel,
    uncorrelated, and ``RGB_STATISTICS_IMAGES_KEY`` = 0 says so (the Trainer logs it).
    """
    pixels = tf.reshape(tf.cast(images, tf.float64), [tf.shape(images)[0], -1, 3])
    first = tf.reduce_sum(pixels, axis=1)  # [B, 3], exact integers
    second = tf.einsum("bpi,bpj->bij", pixels, pixels)  # [B, 3, 3], exact integers
    count = tft.size(first[:, 0])  # images measured (tft.size counts elements, not batches)
    measured = count > 0
    values = tf.cast(count, tf.float64) * tf.cast(tf.shape(pixels)[1], tf.float64)
    mean = tft.sum(first, reduce_instance_dims=False) / tf.maximum(values, 1.0)
    moments = tft.sum(second, reduce_instance_dims=False) / tf.maximum(values, 1.0)
    covariance = tf.cast(moments - tf.einsum("i,j->ij", mean, mean), tf.float32)
    mean = tf.where(measured, tf.cast(mean, tf.float32), NEUTRAL_MEAN)
    covariance = tf.where(measured, covariance, tf.eye(3) * NEUTRAL_STD**2)
    eigval, eigvec = tf.linalg.eigh(covariance)
    return {
        RGB_STATISTICS_IMAGES_KEY: tf.reshape(count, [1]),
        RGB_MEAN_KEY: mean,
        RGB_STD_KEY: tf.sqrt(tf.linalg.diag_part(covariance)),
        RGB_EIGVAL_KEY: eigval,
        RGB_EIGVEC_KEY: tf.reshape(eigvec, [9]),
    }


def _synset(class_index: tf.Tensor) -> tf.Tensor:
    """The synset of each 0-based class index; "" where the index is not a class.

    At serving time the label is absent and the Transform graph is fed its default value, so
    this must not fail there; in training data the Quarantine has already rejected bad labels.
    """
    synsets = tf.constant(imagenet_classes.synsets())
    valid = (class_index >= 0) & (class_index < synsets.shape[0])
    clipped = tf.clip_by_value(class_index, 0, synsets.shape[0] - 1)
    return tf.where(valid, tf.gather(synsets, clipped), "")


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """tf.Transform entry point (referenced by import path from the pipeline).

    ``custom_config`` is ``models.config.transform_custom_config``'s; with
    ``analyzer_sample_one_in`` = k > 1 the pixel statistics are measured on the hash-sampled
    ~1/k of the training images.
    """
    config = parse_transform_custom_config(custom_config)
    record_format = records.get_format(config.record_format)
    resize_size, stored = config.resize_size, config.stored_size

    one_in = config.analyzer_sample_one_in

    def preprocess_all(encoded_images):
        return tf.map_fn(
            lambda image: preprocess_image(image, resize_size, stored),
            encoded_images,
            fn_output_signature=tf.TensorSpec([stored, stored, 3], tf.uint8),
        )

    encoded = _dense_column(inputs[record_format.image_key])
    batch_size = tf.shape(encoded)[0]
    # Each image straight to its bytes: a batch of uint8 images, then its serialization and
    # the cut, would hold three copies of a batch (Beam's batches reach 1000 images, 155 MB).
    outputs = {
        IMAGE_KEY: tf.map_fn(
            lambda image: raw_bytes(preprocess_image(image, resize_size, stored)[tf.newaxis])[0],
            encoded,
            fn_output_signature=tf.TensorSpec([], tf.string),
        )
    }
    # A decode of its own for the analyzers: tf.Transform's analysis pass runs only what the
    # analyzers need, so it decodes the sampled images alone; the transform pass, which needs
    # only the outputs, decodes every image once.
    measured = preprocess_all(tf.boolean_mask(encoded, analyzer_sample(encoded, one_in)))
    for key, value in _pixel_statistics(measured).items():
        outputs[key] = tf.tile(value[tf.newaxis], [batch_size, 1])

    outputs[SYNSET_KEY] = synset = _synset(
        _dense_column(inputs[record_format.label_key]) - record_format.label_offset
    )
    outputs[CLASS_INDEX_KEY] = tft.compute_and_apply_vocabulary(
        synset, default_value=-1, vocab_filename=CLASSES_VOCABULARY
    )
    return outputs
