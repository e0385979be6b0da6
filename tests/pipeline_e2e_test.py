"""The real pipeline, end to end, on the bundled sample: run, gate, push, re-run, refuse."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from data import bundled, imagenet_classes, records
from pipeline import configs, metadata
from pipeline.evaluation import load_evaluation
from pipeline.presets import DEFAULT_PRESET, resolve

pytestmark = pytest.mark.e2e

COMPONENTS = [
    configs.EXAMPLE_GEN,
    configs.QUARANTINE,
    configs.STATISTICS_GEN,
    configs.SCHEMA_GEN,
    configs.EXAMPLE_VALIDATOR,
    configs.TRANSFORM,
    configs.TRAINER,
    configs.MODEL_RESOLVER,
    configs.EVALUATOR,
    configs.PUSHER,
]


def _validation_records(n: int) -> list[bytes]:
    files = records.split_files(bundled.SAMPLE_DIR, records.VALIDATION_SPLIT)
    return [r.numpy() for r in tf.data.TFRecordDataset(files).take(n)]


def test_every_component_completes_and_the_model_is_blessed_and_pushed(sample_runs):
    first = sample_runs.first
    components = first.components()
    assert list(components) == COMPONENTS or sorted(components) == sorted(COMPONENTS)
    assert {c.state for c in components.values()} == {"complete"}
    assert "Blessed: yes" in first.result.stdout
    assert "Baseline: none yet, so only the value threshold applies." in first.result.stdout
    # make run is reproducible out of the box: the seed is stated, and training deterministic.
    assert "Trained with seed 0, deterministic:" in first.result.stdout
    destination = metadata.pushed_destination(components[configs.PUSHER])
    assert os.path.dirname(destination) == first.serving_dir
    assert first.serving_versions == [os.path.basename(destination)]
    for node_id in COMPONENTS:  # a progress line per component
        assert f"{node_id} done" in first.result.stdout


# What a default run printed before it was quiet, none of which a user can act on.
NOISE = (
    "Unable to register cuDNN factory",
    "Could not find cuda drivers",
    "This TensorFlow binary is optimized",
    "oneDNN custom operations are on",
    "Could not find TensorRT",
    "ArtifactQuery.property_predicate is not supported",
    "node's cache key varies on repeated tracing",
    "Examples artifact does not have payload_format",
    "tf_record_iterator",
    "No training configuration found in save file",
)


def test_a_default_run_prints_progress_and_the_summary_and_logs_the_noise(sample_runs):
    result = sample_runs.first.result
    printed = result.stdout + result.stderr
    assert [text for text in NOISE if text in printed] == []
    log = re.search(r"^Log \(every message, TensorFlow's and TFX's too\): (\S+)$", printed, re.M)
    assert log and os.path.dirname(log.group(1)) == os.path.join(sample_runs.first.root, "logs")
    with open(log.group(1), encoding="utf-8") as f:
        logged = f.read()
    assert [text for text in NOISE if text in logged] != []  # kept, not lost
    assert "Component Trainer is running." in logged  # and what TFX itself logged
    assert printed.count("\n") < 60  # progress, Keras' epoch lines, the summary


def test_the_evaluation_holds_overall_and_per_class_metrics(sample_runs):
    evaluation = load_evaluation(sample_runs.first.components()[configs.EVALUATOR])
    assert evaluation.metrics["example_count"] == 70  # the whole validation split
    assert evaluation.metrics["accuracy"] >= resolve(DEFAULT_PRESET, {}).settings.gate.min_top1
    assert evaluation.metrics["top5_accuracy"] >= evaluation.metrics["accuracy"]
    assert np.isfinite(evaluation.metrics["cross_entropy"])
    sample_synsets = {
        "n02123045", "n07920052", "n03763968", "n03877845", "n04266014", "n04485082", "n04548280"
    }  # fmt: skip
    assert set(evaluation.per_class) == sample_synsets
    assert all(m["example_count"] == 10 for m in evaluation.per_class.values())
    assert evaluation.blessed and not evaluation.failures


def test_the_pushed_model_answers_both_signatures(sample_runs):
    pusher = sample_runs.first.components()[configs.PUSHER]
    model = tf.saved_model.load(metadata.pushed_destination(pusher))
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


def test_a_second_run_is_gated_against_the_first_model(sample_runs):
    second = sample_runs.second
    components = second.components()
    assert components[configs.TRANSFORM].state == "cached"  # upstream reused from ML Metadata
    assert components[configs.TRAINER].state == "complete"
    evaluation = load_evaluation(components[configs.EVALUATOR])
    assert evaluation.has_baseline
    first_model = sample_runs.first.components()[configs.TRAINER].uri("model")
    assert components[configs.EVALUATOR].inputs["baseline_model"][0].uri == first_model
    assert "accuracy" in evaluation.baseline_metrics
    assert "accuracy" in evaluation.changes  # the change threshold was evaluated
    assert "Baseline (last blessed model)" in second.result.stdout
    assert evaluation.blessed  # the gate was opened wide
    assert len(second.serving_versions) == 2


def test_a_zero_step_model_is_not_blessed_and_nothing_is_pushed(sample_runs):
    run = sample_runs.zero_step
    evaluation = load_evaluation(run.components()[configs.EVALUATOR])
    assert not evaluation.blessed
    assert any("value threshold" in f for f in evaluation.failures)
    assert "Blessed: NO, nothing pushed." in run.result.stdout
    assert "below the value threshold" in run.result.stdout
    assert run.serving_versions == sample_runs.second.serving_versions
