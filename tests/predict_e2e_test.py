"""``alexnet-tfx predict`` with the pushed model of ``make run`` (the shared sample run): the
bundled validation photos classified through the serving signature, checked against the same
signature called directly, and bad files named while the others are classified."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from data import bundled, imagenet_classes
from data.errors import UserError
from models import preprocessing as pp
from pipeline import configs, predict
from tests.conftest import noise_lines, run_cli

pytestmark = pytest.mark.e2e


def _photos() -> list[str]:
    return sorted(os.path.join(bundled.PHOTOS_DIR, name) for name in os.listdir(bundled.PHOTOS_DIR))


def _first_push(sample_runs) -> str:
    first = sample_runs.first
    return os.path.join(first.serving_dir, first.serving_versions[0])


def _direct(sample_runs, model_dir: str, photos: list[str]) -> list[tuple[str, np.ndarray]]:
    """(top-1 synset, probabilities) per photo from ``serving_image_bytes`` called directly:
    the synset at the probabilities' argmax in the run's class vocabulary (Transform's)."""
    transform = sample_runs.first.components()[configs.TRANSFORM].uri("transform_graph")
    vocabulary = tft.TFTransformOutput(transform).vocabulary_by_name(pp.CLASSES_VOCABULARY)
    signature = tf.saved_model.load(model_dir).signatures["serving_image_bytes"]
    images = []
    for path in photos:
        with open(path, "rb") as f:
            images.append(f.read())
    probabilities = signature(image_bytes=tf.constant(images))["probabilities"].numpy()
    return [(vocabulary[int(np.argmax(row))].decode(), row) for row in probabilities]


def test_each_photo_gets_the_top_class_the_signature_gives_and_bad_files_one_line(
    sample_runs, tmp_path
):
    """The photos with a text file and a truncated JPEG among them, as given: one error line
    for each bad file, the photos classified, in order, as the signature called directly."""
    model, photos = _first_push(sample_runs), _photos()
    (tmp_path / "notes.txt").write_text("not an image\n")
    with open(photos[0], "rb") as f:
        (tmp_path / "truncated.jpg").write_bytes(f.read()[:2000])
    bad = [str(tmp_path / "notes.txt"), str(tmp_path / "truncated.jpg")]
    files = [bad[0], *photos[:3], bad[1], *photos[3:]]
    result = run_cli("predict", "--model", model, "--json", *files)
    assert result.returncode == 1
    assert noise_lines(result) == []
    errors = result.stderr.splitlines()
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(f"alexnet-tfx predict: {bad[0]}: undecodable image: PIL")
    assert errors[1].startswith(f"alexnet-tfx predict: {bad[1]}: undecodable image")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["path"] for a in answers] == files  # in the order given, errors in their place
    assert "error" in answers[0] and "error" in answers[4]
    classified = [a for a in answers if "top5" in a]
    assert [a["path"] for a in classified] == photos
    direct = _direct(sample_runs, model, photos)
    for answer, (top1, probabilities) in zip(classified, direct, strict=True):
        top = answer["top5"]
        assert len(top) == 5
        assert top[0]["synset"] == top1
        assert top[0]["probability"] == pytest.approx(float(probabilities.max()), rel=1e-5)
        assert [g["probability"] for g in top] == sorted(
            (g["probability"] for g in top), reverse=True
        )
        for guess in top:  # names and indices from the class list, not from the model
            assert guess["class_index"] == imagenet_classes.index_of(guess["synset"])
            assert guess["name"] == imagenet_classes.name_of(guess["class_index"])


def test_a_directory_is_classified_as_five_named_classes_per_photo(sample_runs):
    """The README's quick start: the latest push of the root, text output, nothing else."""
    result = run_cli("predict", "--pipeline-root", sample_runs.first.root, bundled.PHOTOS_DIR)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 6 * len(_photos())
    assert lines[0] == _photos()[0]
    for line in lines[1:6]:
        percent, synset, name = line.split(maxsplit=2)
        assert percent.endswith("%") and imagenet_classes.index_of(synset) >= 0 and name


def test_a_model_without_the_signature_is_refused_with_what_it_has(sample_runs, tmp_path):
    model = _first_push(sample_runs)
    with pytest.raises(UserError) as refused:
        predict.load_signature(model, ten_crop=True)
    assert f"{model} has no serving_ten_crop signature (ten crops need the 256 region" in str(
        refused.value
    )
    module = tf.Module()
    module.f = tf.function(lambda x: x, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "other"))
    with pytest.raises(UserError, match="has no serving_image_bytes signature; it has"):
        predict.load_signature(str(tmp_path / "other"), ten_crop=False)
