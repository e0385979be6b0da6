"""The real pipeline, end to end, on the bundled sample: run, gate, push, re-run, refuse."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from data import imagenet_classes, records
from pipeline import configs, runs
from tests.conftest import serving_versions

pytestmark = pytest.mark.e2e

COMPONENTS = [
    "ImportExampleGen",
    "Quarantine",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "Transform",
    "Trainer",
    "latest_blessed_model_resolver",
    "Evaluator",
    "Pusher",
]


def _validation_records(n: int) -> list[bytes]:
    files = records.split_files(configs.SAMPLE_DATA_ROOT, records.VALIDATION_SPLIT)
    return [r.numpy() for r in tf.data.TFRecordDataset(files).take(n)]


def test_every_component_completes_and_the_model_is_blessed_and_pushed(first_run):
    components = first_run.components()
    assert list(components) == COMPONENTS or sorted(components) == sorted(COMPONENTS)
    assert {c.state for c in components.values()} == {"complete"}
    assert "Blessed: yes" in first_run.result.stdout
    assert "Baseline: none yet, so only the value threshold applies." in first_run.result.stdout
    destination = runs.pushed_destination(components["Pusher"])
    assert os.path.dirname(destination) == first_run.serving_dir
    assert os.path.basename(destination) in serving_versions(first_run.serving_dir)
    for node_id in COMPONENTS:  # a progress line per component
        assert f"{node_id} done" in first_run.result.stdout


def test_the_evaluation_holds_overall_and_per_class_metrics(first_run):
    evaluation = runs.load_evaluation(first_run.components()["Evaluator"])
    assert evaluation.metrics["example_count"] == 70  # the whole validation split
    assert evaluation.metrics["accuracy"] >= configs.MIN_TOP1_ACCURACY
    assert evaluation.metrics["top5_accuracy"] >= evaluation.metrics["accuracy"]
    assert np.isfinite(evaluation.metrics["loss"])
    sample_synsets = {
        "n02123045", "n07920052", "n03763968", "n03877845", "n04266014", "n04485082", "n04548280"
    }  # fmt: skip
    assert set(evaluation.per_class) == sample_synsets
    assert all(m["example_count"] == 10 for m in evaluation.per_class.values())
    assert evaluation.blessed and not evaluation.failures


def test_the_pushed_model_answers_both_signatures(first_run):
    model = tf.saved_model.load(runs.pushed_destination(first_run.components()["Pusher"]))
    raw = _validation_records(20)
    by_examples = model.signatures["serving_default"](examples=tf.constant(raw))
    examples = [tf.train.Example.FromString(r) for r in raw]
    encoded = [e.features.feature[records.ENCODED].bytes_list.value[0] for e in examples]
    by_bytes = model.signatures["serving_image_bytes"](image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(by_examples["probabilities"], by_bytes["probabilities"], atol=1e-5)
    truth = [e.features.feature[records.SYNSET].bytes_list.value[0] for e in examples]
    top1 = by_bytes["top5_synsets"].numpy()[:, 0]
    assert np.mean(top1 == np.array(truth)) > 1 / 7  # better than chance on 7 classes
    names = by_bytes["top5_names"].numpy()[:, 0]
    assert all(
        imagenet_classes.name_of(imagenet_classes.index_of(s.decode())) == n.decode()
        for s, n in zip(top1, names, strict=True)
    )


def test_a_second_run_is_gated_against_the_first_model(second_run):
    components = second_run.components()
    assert components["Transform"].state == "cached"  # upstream reused from ML Metadata
    assert components["Trainer"].state == "complete"
    evaluation = runs.load_evaluation(components["Evaluator"])
    assert evaluation.has_baseline
    assert "accuracy" in evaluation.baseline_metrics
    assert "accuracy" in evaluation.changes  # the change threshold was evaluated
    assert "Baseline (last blessed model)" in second_run.result.stdout
    assert evaluation.blessed  # the gate was opened wide
    assert len(serving_versions(second_run.serving_dir)) == 2


def test_a_zero_step_model_is_not_blessed_and_nothing_is_pushed(zero_step_run):
    run, versions_before = zero_step_run
    evaluation = runs.load_evaluation(run.components()["Evaluator"])
    assert not evaluation.blessed
    assert any("value threshold" in f for f in evaluation.failures)
    assert "Blessed: NO, nothing pushed." in run.result.stdout
    assert "below the value threshold" in run.result.stdout
    assert serving_versions(run.serving_dir) == versions_before
