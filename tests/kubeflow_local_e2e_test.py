"""The compiled Kubeflow spec executed: ``compile-kubeflow`` for ``gs://bucket/...``, then
``kubeflow-local`` twice on the bundled sample's shards placed under the mapped directory.

Every step runs its own container command from the spec (TFX's Kubeflow entrypoint, the
ExampleGen driver) with the ExecutorInput the launcher builds; the second run's resolvers must
find the first run's blessed model, and its Evaluator compare against it.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
import tensorflow_model_analysis as tfma

from data import bundled
from pipeline import configs, kubeflow_launcher
from tests.conftest import CliResult, run_cli

pytestmark = pytest.mark.e2e

BUCKET = "bucket"


def _compile(directory, *flags: str) -> str:
    path = os.path.join(directory, "pipeline.json")
    result = run_cli(
        "compile-kubeflow",
        "--output",
        path,
        "--image",
        "gcr.io/project/alexnet-tfx:test",
        "--pipeline-root",
        f"gs://{BUCKET}/root",
        "--data-root",
        f"gs://{BUCKET}/data",
        "--beam-cpus",
        "1",
        *flags,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return path


def _gcs_dir(directory) -> str:
    """A directory standing in for Cloud Storage, with the sample's shards at gs://bucket/data."""
    gcs = os.path.join(directory, "gcs")
    shutil.copytree(bundled.SAMPLE_DIR, os.path.join(gcs, BUCKET, "data"))
    return gcs


def _local(pipeline: str, gcs: str) -> CliResult:
    return run_cli("kubeflow-local", "--pipeline", pipeline, "--gcs-dir", gcs)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("compiled"))
    yield _compile(directory, "--train-steps", "4", "--min-top1", "0")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, compiled):
    directory = str(tmp_path_factory.mktemp("kubeflow_local"))
    pipeline = compiled
    gcs = _gcs_dir(directory)
    first, second = _local(pipeline, gcs), _local(pipeline, gcs)
    with open(
        os.path.join(gcs, kubeflow_launcher.LAUNCHER_DIR, kubeflow_launcher.RECORD_FILE)
    ) as f:
        record = json.load(f)["runs"]
    with open(pipeline) as f:
        tasks = json.load(f)["pipelineSpec"]["root"]["dag"]["tasks"]
    yield gcs, tasks, (first, second), record
    shutil.rmtree(directory, ignore_errors=True)


def test_every_step_of_the_spec_runs_to_a_blessed_pushed_model(runs):
    gcs, tasks, (first, _), record = runs
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert kubeflow_launcher.CANNOT_EMULATE in first.stdout
    assert record[0]["state"] == "succeeded"
    assert {name: e["state"] for name, e in record[0]["tasks"].items()} == dict.fromkeys(
        tasks, "complete"
    )
    serving_dir = os.path.join(gcs, BUCKET, "root", configs.SERVING_DIR_NAME)
    (pushed_model,) = record[0]["tasks"][configs.PUSHER]["outputs"]["pushed_model"]
    pushed = pushed_model["metadata"]["pushed_destination"]
    assert os.path.dirname(pushed) == serving_dir  # gs://bucket/root/serving_model, mapped
    assert os.path.exists(os.path.join(pushed, "saved_model.pb"))
    assert f"Blessed: yes. Pushed to {pushed}." in first.stdout
    assert "Baseline: none yet" in first.stdout
    quarantine = record[0]["tasks"][configs.QUARANTINE]["outputs"]["report"][0]
    assert quarantine["metadata"]["rejected_count"] == 0


def test_the_second_run_evaluates_against_the_first_runs_blessed_model(runs):
    _, _, (_, second), record = runs
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    first_model = record[0]["tasks"][configs.TRAINER]["outputs"]["model"][0]
    evaluator = record[1]["tasks"][configs.EVALUATOR]
    (baseline,) = evaluator["inputs"]["baseline_model"]
    assert (baseline["name"], baseline["uri"]) == (first_model["name"], first_model["uri"])
    assert evaluator["state"] == "complete"  # its baseline is new: not cached
    # Everything upstream of the model is KFP-cached: the same inputs, parameters and container.
    assert record[1]["tasks"][configs.TRAINER]["state"] == "cached"
    uri = evaluator["outputs"]["evaluation"][0]["uri"]
    diffs = [
        kv.key.name
        for metrics in tfma.load_metrics(uri)
        for kv in metrics.metric_keys_and_values
        if kv.key.is_diff and not metrics.slice_key.single_slice_keys
    ]
    assert "accuracy" in diffs  # the change threshold's metric, measured against the baseline
    assert "Baseline (last blessed model): top-1" in second.stdout
    assert "Blessed: yes." in second.stdout


def test_a_failing_step_stops_the_run_naming_it_its_command_and_its_output(compiled, tmp_path):
    with open(compiled) as f:
        job = json.load(f)
    executor = job["pipelineSpec"]["deploymentSpec"]["executors"]["ImportExampleGen_executor"]
    args = executor["container"]["args"]
    args[args.index("--executor_class_path") + 1] = "components.NoSuchExecutor"
    pipeline = str(tmp_path / "broken.json")
    with open(pipeline, "w") as f:
        json.dump(job, f)
    result = _local(pipeline, _gcs_dir(str(tmp_path)))
    assert result.returncode == 1
    assert "step ImportExampleGen (executor) exited with status 1" in result.stderr
    assert "--executor_class_path components.NoSuchExecutor" in result.stderr
    assert "Could not import components.NoSuchExecutor" in result.stderr
    assert re.search(r"ImportExampleGen +failed", result.stdout)  # the summary lists it
