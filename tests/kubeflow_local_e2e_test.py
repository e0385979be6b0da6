"""The compiled Kubeflow spec executed: ``compile-kubeflow`` (the open-source backend, its
default) for ``gs://bucket/...``, then ``kubeflow-local`` under that backend's rules on the
bundled sample's shards placed under the mapped directory.

Every step runs its own container command from the spec (``pipeline.kubeflow_entrypoint``)
with the ExecutorInput the open-source launcher builds: input artifacts untyped and copied to
the step's pod, ``preCacheCheck`` ignored, that backend's cache key
(``pipeline.kubeflow_backends``).
Two runs: the first is blessed and pushed; the second's baseline step must find the first
run's pushed model and its Evaluator compare against it. Then a changed shard under the data
root must re-execute ExampleGen.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from data import bundled, records
from pipeline import configs, kubeflow_entrypoint, kubeflow_launcher, kubeflow_oss
from tests.conftest import CliResult, noise_lines, run_cli

pytestmark = pytest.mark.e2e

BUCKET = "bucket"
DRIVER = configs.EXAMPLE_GEN + kubeflow_oss.FINGERPRINT_SUFFIX


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
    assert noise_lines(result) == []
    return path


def _gcs_dir(directory) -> str:
    """A directory standing in for Cloud Storage, with the sample's shards at gs://bucket/data."""
    gcs = os.path.join(directory, "gcs")
    shutil.copytree(bundled.SAMPLE_DIR, os.path.join(gcs, BUCKET, "data"))
    return gcs


def _local(pipeline: str, gcs: str, *flags: str) -> CliResult:
    return run_cli("kubeflow-local", "--pipeline", pipeline, "--gcs-dir", gcs, *flags)


def _record(gcs: str) -> list[dict]:
    path = os.path.join(gcs, kubeflow_launcher.LAUNCHER_DIR, kubeflow_launcher.RECORD_FILE)
    with open(path) as f:
        return json.load(f)["runs"]


def _reference(execution: dict, key: str) -> dict:
    """The artifact a step returned by reference as its output ``key``."""
    return json.loads(execution["parameters"][kubeflow_entrypoint.reference_parameter(key)])


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("compiled"))
    yield _compile(directory, "--train-steps", "4", "--min-top1", "0")
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, compiled):
    directory = str(tmp_path_factory.mktemp("kubeflow_local"))
    gcs = _gcs_dir(directory)
    first, second, third = (_local(compiled, gcs) for _ in range(3))
    with open(compiled) as f:
        tasks = json.load(f)["pipelineSpec"]["root"]["dag"]["tasks"]
    yield gcs, tasks, (first, second, third), _record(gcs)
    shutil.rmtree(directory, ignore_errors=True)


def test_every_step_of_the_spec_runs_to_a_blessed_pushed_model(runs):
    gcs, tasks, (first, _, _), record = runs
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert noise_lines(first) == []
    assert kubeflow_launcher.CANNOT_EMULATE in first.stdout
    assert "as Kubeflow Pipelines 2.x (open source) would" in first.stdout
    assert record[0]["state"] == "succeeded"
    assert {name: e["state"] for name, e in record[0]["tasks"].items()} == dict.fromkeys(
        tasks, "complete"
    )
    serving_dir = os.path.join(gcs, BUCKET, "root", configs.SERVING_DIR_NAME)
    pushed = _reference(record[0]["tasks"][configs.PUSHER], "pushed_model")
    destination = pushed["metadata"]["pushed_destination"]
    assert os.path.dirname(destination) == serving_dir  # gs://bucket/root/serving_model, mapped
    assert os.path.exists(os.path.join(destination, "saved_model.pb"))
    assert f"Blessed: yes. Pushed to {destination}." in first.stdout
    assert "Baseline: none yet" in first.stdout
    baseline = _reference(record[0]["tasks"][configs.LATEST_PUSHED_MODEL], "model")
    assert baseline["metadata"]["pushed_version"] == -1  # nothing pushed before this run
    report = _reference(record[0]["tasks"][configs.QUARANTINE], "report")
    assert report["metadata"]["rejected_count"] == 0


def test_no_step_copies_an_input_artifact_to_its_pod(runs):
    """The open-source launcher copies every input artifact to the pod's disk; the spec
    passes them by reference, so there is none to copy."""
    _, _, (first, second, _), record = runs
    for run in record:
        for name, execution in run["tasks"].items():
            if execution["state"] == "complete":
                assert execution["copies"]["downloaded"] == [], name
                assert execution["copies"]["downloaded_bytes"] == 0, name
    assert "Input artifacts copied to the steps' pods: 0 bytes" in first.stdout
    assert "Input artifacts copied to the steps' pods: 0 bytes" in second.stdout


def test_the_second_run_evaluates_against_the_first_runs_pushed_model(runs):
    _, _, (_, second, _), record = runs
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    first_push = _reference(record[0]["tasks"][configs.PUSHER], "pushed_model")
    baseline = _reference(record[1]["tasks"][configs.LATEST_PUSHED_MODEL], "model")
    destination = first_push["metadata"]["pushed_destination"]
    assert baseline["metadata"]["pushed_destination"] == destination
    copied = os.path.join(baseline["uri"], "Format-Serving", "saved_model.pb")
    assert _digest(copied) == _digest(os.path.join(destination, "saved_model.pb"))
    states = {name: e["state"] for name, e in record[1]["tasks"].items()}
    # The data is the same: the driver looked again, ExampleGen and what follows are cached.
    assert states[DRIVER] == "complete"
    assert states[configs.EXAMPLE_GEN] == states[configs.TRAINER] == "cached"
    assert states[configs.LATEST_PUSHED_MODEL] == states[configs.EVALUATOR] == "complete"
    evaluator = record[1]["tasks"][configs.EVALUATOR]
    uri = _reference(evaluator, "evaluation")["uri"]
    diffs = [
        kv.key.name
        for metrics in tfma.load_metrics(uri)
        for kv in metrics.metric_keys_and_values
        if kv.key.is_diff and not metrics.slice_key.single_slice_keys
    ]
    assert "accuracy" in diffs  # the change threshold's metric, measured against the baseline
    assert "Baseline (last blessed model): top-1" in second.stdout
    assert "Blessed: yes." in second.stdout


def test_an_unchanged_re_run_is_cached_up_to_the_pusher(runs):
    """The second run pushed the same model again; the third finds that model the newest one:
    its baseline step, Evaluator and Pusher come from the cache, and nothing is pushed."""
    gcs, _, (_, _, third), record = runs
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    states = {name: e["state"] for name, e in record[2]["tasks"].items()}
    looked = {DRIVER, configs.LATEST_PUSHED_MODEL + kubeflow_oss.FINGERPRINT_SUFFIX}
    assert {name for name, state in states.items() if state == "complete"} == looked
    assert {name for name, state in states.items() if state == "cached"} == set(states) - looked
    versions = os.listdir(os.path.join(gcs, BUCKET, "root", configs.SERVING_DIR_NAME))
    assert len([v for v in versions if v.isdigit()]) == 2  # the first and the second run's


def test_a_changed_shard_under_the_data_root_re_executes_example_gen(runs, compiled, tmp_path):
    """The fingerprint step's output is in ExampleGen's cache key: unchanged data was cached
    (runs 2 and 3), a shard with one record less is not, and ExampleGen's new output reaches
    Quarantine's key."""
    gcs, _, _, record = runs
    with open(compiled) as f:
        job = json.load(f)
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    for name in set(tasks) - {DRIVER, configs.EXAMPLE_GEN}:
        del tasks[name]
    pipeline = str(tmp_path / "ingest.json")
    with open(pipeline, "w") as f:
        json.dump(job, f)

    shard = os.path.join(
        gcs,
        BUCKET,
        "data",
        os.path.basename(records.split_files(bundled.SAMPLE_DIR, records.VALIDATION_SPLIT)[0]),
    )
    kept = list(tf.data.TFRecordDataset(shard).as_numpy_iterator())[:-1]
    with tf.io.TFRecordWriter(shard) as writer:
        for serialized in kept:
            writer.write(serialized)
    changed = _local(pipeline, gcs)
    assert changed.returncode == 0, changed.stderr[-3000:]

    first, again, after = record[0]["tasks"], record[2]["tasks"], _record(gcs)[-1]["tasks"]
    fingerprint = kubeflow_entrypoint.INPUT_FINGERPRINT
    assert again[DRIVER]["parameters"][fingerprint] == first[DRIVER]["parameters"][fingerprint]
    assert again[configs.EXAMPLE_GEN]["state"] == "cached"
    assert after[DRIVER]["parameters"][fingerprint] != first[DRIVER]["parameters"][fingerprint]
    assert after[configs.EXAMPLE_GEN]["state"] == "complete"
    # Quarantine takes ExampleGen's output by reference: a new one is a new cache key.
    assert _reference(after[configs.EXAMPLE_GEN], "examples") != _reference(
        first[configs.EXAMPLE_GEN], "examples"
    )


def test_a_spec_compiled_for_vertex_is_refused_with_the_backends_own_reason(tmp_path):
    pipeline = _compile(str(tmp_path), "--backend", "vertex")
    gcs = _gcs_dir(str(tmp_path))
    reason = "non-container and non-importer executor not implemented"
    refused = _local(pipeline, gcs, "--backend", "kfp")
    assert refused.returncode == 2
    assert re.search(
        r'error processing component name="latest_blessed_model_resolver-model-\w+-resolver": '
        r'executor\(label="latest_blessed_model_resolver-model-\w+-resolver_executor"\): ' + reason,
        refused.stderr,
    ), refused.stderr
    assert not os.path.exists(os.path.join(gcs, BUCKET, "root"))  # no step ran
    submitted = run_cli("submit", "--pipeline", pipeline, "--host", "http://127.0.0.1:9")
    assert submitted.returncode == 2 and reason in submitted.stderr, submitted.stderr


def test_a_failing_step_stops_the_run_naming_it_its_command_and_its_output(
    runs, compiled, tmp_path
):
    """In the runs' directory: the lookups run again, ImportSchemaGen comes from the cache, and
    ImportExampleGen, its executor broken, fails."""
    gcs = runs[0]
    with open(compiled) as f:
        job = json.load(f)
    executor = job["pipelineSpec"]["deploymentSpec"]["executors"]["ImportExampleGen_executor"]
    args = executor["container"]["args"]
    args[args.index("--executor_class_path") + 1] = "components.NoSuchExecutor"
    pipeline = str(tmp_path / "broken.json")
    with open(pipeline, "w") as f:
        json.dump(job, f)
    result = _local(pipeline, gcs)
    assert result.returncode == 1
    assert "step ImportExampleGen (executor) exited with status 1" in result.stderr
    assert "--executor_class_path components.NoSuchExecutor" in result.stderr
    assert "Could not import components.NoSuchExecutor" in result.stderr
    assert re.search(r"ImportExampleGen +failed", result.stdout)  # the summary lists it
