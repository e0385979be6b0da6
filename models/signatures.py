"""Serving signatures: the exported model carries the Transform graph, so there is no skew.

* ``serving_default``: serialized tf.Examples in the ingestion format -> predictions.
* ``serving_image_bytes``: encoded images (JPEG/PNG/..., any size, gray or colour) ->
  predictions, through the same Transform graph (the image is fed as the record's image
  feature).
* ``transform_features``: serialized tf.Examples -> transformed features, for TFMA's labels and
  slices when it evaluates on raw examples.

When Transform stored the 256 region (``--store-full-region``, the paper preset), also:

* ``serving_ten_crop``: encoded images -> predictions averaged, softmax by softmax, over the
  paper's ten test windows (§4.1: four corners, the centre, and their mirror images);
* ``evaluation``: serialized tf.Examples -> ``probabilities`` (the centre crop) and
  ``ten_crop_probabilities``, so the Evaluator measures both in one pass.

Predictions: ``probabilities`` [N, classes] in the order of the classes vocabulary, and the
top-5 as ImageNet class indices (0-based), synsets, names and probabilities.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from data import imagenet_classes, records
from models import augmentation
from models import preprocessing as pp

TOP_K = 5
# The model's first layer and its network, by name (``models.trainer.build_model``): the
# ten-crop signatures feed the network ten windows of the stored region instead of one.
AUGMENT_LAYER = "augment"
NETWORK_LAYER = "network"
PROBABILITIES = "probabilities"
TEN_CROP_PROBABILITIES = "ten_crop_probabilities"
EVALUATION_SIGNATURE = "evaluation"  # the Evaluator's, with the stored 256 region


def _class_tables(tf_transform_output: tft.TFTransformOutput) -> dict[str, tf.Tensor]:
    """Constants mapping a model output position to its synset, ImageNet index and name."""
    synsets = [s.decode() for s in tf_transform_output.vocabulary_by_name(pp.CLASSES_VOCABULARY)]
    indices = [imagenet_classes.index_of(s) for s in synsets]
    return {
        "synsets": tf.constant(synsets),
        "indices": tf.constant(indices, tf.int64),
        "names": tf.constant([imagenet_classes.name_of(i) for i in indices]),
    }


def make_serving_signatures(
    model,
    tf_transform_output: tft.TFTransformOutput,
    record_format: str,
    stored_size: int,
    crop_size: int,
) -> dict:
    """The signatures to pass to ``model.save``; ``model`` maps the stored uint8 regions
    [N, S, S, 3] to logits, taking the central crop itself when not training."""
    fmt = records.get_format(record_format)
    # Tracked by the model so the Transform graph and its assets are saved with it.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != fmt.label_key}
    image_shape = list(raw_spec[fmt.image_key].shape)  # [] or [1], as the schema says
    tables = _class_tables(tf_transform_output)
    top_k = min(TOP_K, int(tables["synsets"].shape[0]))

    def regions(raw_features):
        transformed = model.tft_layer(raw_features)
        return pp.decode_raw(transformed[pp.IMAGE_KEY], stored_size)

    def centre_crop(images):
        return tf.nn.softmax(tf.cast(model(images, training=False), tf.float32))

    def ten_crop(images):
        augment, network = model.get_layer(AUGMENT_LAYER), model.get_layer(NETWORK_LAYER)
        crops = augmentation.ten_crops(images, crop_size)
        logits = tf.cast(network(augment.normalise(crops), training=False), tf.float32)
        each = tf.reshape(tf.nn.softmax(logits), [-1, augmentation.TEN_CROPS, logits.shape[-1]])
        return tf.reduce_mean(each, axis=1)

    def predictions(probabilities):
        top = tf.math.top_k(probabilities, k=top_k)
        return {
            PROBABILITIES: probabilities,
            "top5_probabilities": top.values,
            "top5_class_indices": tf.gather(tables["indices"], top.indices),
            "top5_synsets": tf.gather(tables["synsets"], top.indices),
            "top5_names": tf.gather(tables["names"], top.indices),
        }

    def image_features(image_bytes):
        return {fmt.image_key: tf.reshape(image_bytes, [-1] + image_shape)}

    examples = tf.TensorSpec([None], tf.string, name="examples")
    image_bytes = tf.TensorSpec([None], tf.string, name="image_bytes")

    @tf.function(input_signature=[examples])
    def serve_examples(serialized):
        return predictions(centre_crop(regions(tf.io.parse_example(serialized, serving_spec))))

    @tf.function(input_signature=[image_bytes])
    def serve_image_bytes(encoded):
        return predictions(centre_crop(regions(image_features(encoded))))

    @tf.function(input_signature=[examples])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    signatures = {
        "serving_default": serve_examples.get_concrete_function(),
        "serving_image_bytes": serve_image_bytes.get_concrete_function(),
        "transform_features": transform_features.get_concrete_function(),
    }
    if stored_size == crop_size:  # only the central crop was stored: no other window exists
        return signatures

    @tf.function(input_signature=[image_bytes])
    def serve_ten_crop(encoded):
        return predictions(ten_crop(regions(image_features(encoded))))

    @tf.function(input_signature=[examples])
    def evaluate(serialized):
        images = regions(tf.io.parse_example(serialized, serving_spec))
        return {PROBABILITIES: centre_crop(images), TEN_CROP_PROBABILITIES: ten_crop(images)}

    signatures["serving_ten_crop"] = serve_ten_crop.get_concrete_function()
    signatures[EVALUATION_SIGNATURE] = evaluate.get_concrete_function()
    return signatures
