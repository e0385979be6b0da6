"""Serving signatures: the exported model carries the Transform graph, so there is no skew.

* ``serving_default``: serialized tf.Examples in the ingestion format -> predictions.
* ``serving_image_bytes``: encoded images (JPEG/PNG/..., any size, gray or colour) ->
  predictions, through the same Transform graph (the image is fed as the record's image
  feature).
* ``transform_features``: serialized tf.Examples -> transformed features, for TFMA's labels and
  slices when it evaluates on raw examples.

Predictions: ``probabilities`` [N, classes] in the order of the classes vocabulary, and the
top-5 as ImageNet class indices (0-based), synsets, names and probabilities.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from data import imagenet_classes, records
from models import preprocessing as pp

TOP_K = 5


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

    def predict(raw_features):
        transformed = model.tft_layer(raw_features)
        images = pp.decode_raw(transformed[pp.IMAGE_KEY], stored_size)
        logits = model(images, training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
        top = tf.math.top_k(probabilities, k=top_k)
        return {
            "probabilities": probabilities,
            "top5_probabilities": top.values,
            "top5_class_indices": tf.gather(tables["indices"], top.indices),
            "top5_synsets": tf.gather(tables["synsets"], top.indices),
            "top5_names": tf.gather(tables["names"], top.indices),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized):
        return predict(tf.io.parse_example(serialized, serving_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_image_bytes(image_bytes):
        return predict({fmt.image_key: tf.reshape(image_bytes, [-1] + image_shape)})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    return {
        "serving_default": serve_examples.get_concrete_function(),
        "serving_image_bytes": serve_image_bytes.get_concrete_function(),
        "transform_features": transform_features.get_concrete_function(),
    }
