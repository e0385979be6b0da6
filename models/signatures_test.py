"""The paper's ten-crop test (§4.1) as the ``serving_ten_crop`` signature computes it, against
an independent NumPy computation of the ten windows.

The reference takes each window of the stored 256 region in NumPy, from the paper's definition
(the four corners and the centre, 227 pixels a side, then the same five mirrored), places it
at the centre of a 256 region, and asks the model's own central-crop path for its softmax:
only the cropping and the averaging are the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from data import records
from models import preprocessing as pp
from models import signatures, trainer
from models.config import TrainerConfig, TransformConfig
from models.trainer_test import _sample_records, transform_sample

STORED, CROP = 256, 227


@pytest.fixture(scope="module")
def model_and_signatures(tmp_path_factory):
    transform_dir, train_glob, _ = transform_sample(
        str(tmp_path_factory.mktemp("ten_crop")), store_full_region=True, n_train=24, n_eval=8
    )
    output = tft.TFTransformOutput(transform_dir)
    statistics = trainer.pixel_statistics([train_glob], "")
    transform = TransformConfig(store_full_region=True)
    config = TrainerConfig(initialization="glorot")
    tf_keras.utils.set_random_seed(1)
    model = trainer.build_model(
        transform, config, output.vocabulary_size_by_name(pp.CLASSES_VOCABULARY), statistics
    )
    made = signatures.make_serving_signatures(
        model, output, records.BUILD_IMAGENET.name, STORED, CROP
    )
    return model, made


def _windows(region: np.ndarray) -> list[np.ndarray]:
    """The paper's ten test patches of one [256, 256, 3] region, written from §4.1."""
    m = STORED - CROP
    corners = [(0, 0), (0, m), (m, 0), (m, m), (m // 2, m // 2)]
    patches = [region[y : y + CROP, x : x + CROP] for y, x in corners]
    return patches + [patch[:, ::-1] for patch in patches]


def _centred(window: np.ndarray) -> np.ndarray:
    """A 256 region whose central 227 window is ``window`` (the model's central-crop path)."""
    region = np.zeros([STORED, STORED, 3], np.uint8)
    offset = (STORED - CROP) // 2
    region[offset : offset + CROP, offset : offset + CROP] = window
    return region


def test_ten_crop_is_the_softmax_averaged_over_the_papers_ten_windows(model_and_signatures):
    model, made = model_and_signatures
    raw = _sample_records("validation", 3)
    encoded = [
        tf.train.Example.FromString(r).features.feature[records.ENCODED].bytes_list.value[0]
        for r in raw
    ]
    stored = made["transform_features"](examples=tf.constant(raw))[pp.IMAGE_KEY].numpy()
    regions = [np.frombuffer(s, np.uint8).reshape(STORED, STORED, 3) for s in stored]
    expected = []
    for region in regions:
        windows = np.stack([_centred(w) for w in _windows(region)])
        logits = model(windows, training=False).numpy().astype(np.float64)
        softmax = np.exp(logits - logits.max(1, keepdims=True))
        expected.append((softmax / softmax.sum(1, keepdims=True)).mean(0))

    ten = made["serving_ten_crop"](image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(ten["probabilities"].numpy(), np.stack(expected), atol=1e-5)
    assert ten["top5_probabilities"].shape == (3, 5)
    centre = made["serving_image_bytes"](image_bytes=tf.constant(encoded))
    assert set(ten) == set(centre)  # the same outputs as the other signatures
    # The Evaluator's signature: both, from one parse of the examples.
    both = made[signatures.EVALUATION_SIGNATURE](examples=tf.constant(raw))
    np.testing.assert_allclose(
        both[signatures.TEN_CROP_PROBABILITIES].numpy(), ten["probabilities"].numpy(), atol=1e-6
    )
    np.testing.assert_allclose(
        both[signatures.PROBABILITIES].numpy(), centre["probabilities"].numpy(), atol=1e-6
    )
    assert not np.allclose(ten["probabilities"].numpy(), centre["probabilities"].numpy())
