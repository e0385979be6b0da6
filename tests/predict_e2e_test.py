"""``alexnet-tfx predict`` with the pushed model of ``make run`` (the shared sample run): the
bundled validation photos classified through the serving signature, checked against the same
signature called directly, and bad files named while the others are classified."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from data import bundled, imagenet_classes
from models import preprocessing as pp
from pipeline import configs
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


def test_each_photo_gets_the_top_class_the_serving_signature_gives(sample_runs):
    model, photos = _first_push(sample_runs), _photos()
    result = run_cli("predict", "--model", model, "--json", *photos)
    assert result.returncode == 0, result.stderr[-3000:]
    assert noise_lines(result) == [] and result.stderr == ""
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["path"] for a in answers] == photos
    direct = _direct(sample_runs, model, photos)
    for answer, (top1, probabilities) in zip(answers, direct, strict=True):
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
    """The README's quick start: the latest push of the root, text output."""
    result = run_cli("predict", "--pipeline-root", sample_runs.first.root, bundled.PHOTOS_DIR)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 6 * len(_photos())
    assert lines[0] == _photos()[0]
    for line in lines[1:6]:
        percent, synset, name = line.split(maxsplit=2)
        assert percent.endswith("%") and imagenet_classes.index_of(synset) >= 0 and name


def test_bad_files_get_one_line_each_and_the_others_are_still_classified(sample_runs, tmp_path):
    photos = _photos()[:2]
    for photo in photos:
        shutil.copy(photo, tmp_path)
    (tmp_path / "notes.txt").write_text("not an image\n")
    with open(photos[0], "rb") as f:
        (tmp_path / "truncated.jpg").write_bytes(f.read()[:2000])
    files = [str(tmp_path / "notes.txt"), *(str(tmp_path / os.path.basename(p)) for p in photos)]
    files.insert(2, str(tmp_path / "truncated.jpg"))
    result = run_cli("predict", "--model", _first_push(sample_runs), "--json", *files)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(f"alexnet-tfx predict: {tmp_path}/notes.txt: undecodable image")
    assert errors[1].startswith(f"alexnet-tfx predict: {tmp_path}/truncated.jpg: undecodable")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["path"] for a in answers] == files  # in the order given, errors in their place
    assert "error" in answers[0] and "error" in answers[2]
    assert len(answers[1]["top5"]) == 5 and len(answers[3]["top5"]) == 5


def test_a_model_without_the_signature_is_refused_with_what_it_has(sample_runs, tmp_path):
    model = _first_push(sample_runs)
    result = run_cli("predict", "--model", model, "--ten-crop", _photos()[0])
    assert result.returncode == 2
    assert f"{model} has no serving_ten_crop signature (ten crops need the 256 region" in (
        result.stderr
    )
    module = tf.Module()
    module.f = tf.function(lambda x: x, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "other"))
    result = run_cli("predict", "--model", str(tmp_path / "other"), _photos()[0])
    assert result.returncode == 2
    assert "has no serving_image_bytes signature" in result.stderr
    assert "Traceback" not in result.stderr
