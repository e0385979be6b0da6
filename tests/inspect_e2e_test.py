"""Inspecting real runs: ``alexnet-tfx report``, the TFMA notebook executed headless, and
``alexnet-tfx tensorboard``.

The expected numbers are read straight from each run's evaluation artifact with TFMA, not
through the code under test. Each test names the run it reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest
import tensorflow_model_analysis as tfma
from nbclient import NotebookClient

from pipeline import configs
from pipeline.html_report_test import ReportPage, png_pixels
from tests.conftest import REPO, CliResult, PipelineRun, noise_lines, run_cli

pytestmark = pytest.mark.e2e

NOTEBOOK = os.path.join(REPO, "notebooks", "inspect_evaluation.ipynb")


def _evaluation_uri(run: PipelineRun) -> str:
    return run.components()[configs.EVALUATOR].uri("evaluation")


def _artifact_metrics(uri: str) -> dict[tuple[str, str, bool], dict[str, float]]:
    """{(model name, synset or "", is_diff): {metric: value}} as TFMA stored them."""
    result: dict = {}
    for slice_metrics in tfma.load_metrics(uri):
        keys = slice_metrics.slice_key.single_slice_keys
        synset = keys[0].bytes_value.decode() if keys else ""
        for kv in slice_metrics.metric_keys_and_values:
            if kv.value.HasField("double_value"):
                where = (kv.key.model_name, synset, kv.key.is_diff)
                result.setdefault(where, {})[kv.key.name] = kv.value.double_value.value
    return result


def _report(run: PipelineRun, tmp_path) -> tuple[str, ReportPage]:
    output = tmp_path / "report.html"
    result = run_cli(
        "report", "--pipeline-root", run.root, "--run-id", run.run_id, "--output", str(output)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Wrote {output}" in result.stdout
    text = output.read_text(encoding="utf-8")
    return text, ReportPage(text)


def _assert_plots_are_drawn(page: ReportPage, count: int) -> None:
    assert len(page.images) == count
    for src in page.images:
        pixels = png_pixels(src)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300
        assert pixels[..., :3].std() > 0.05  # something is drawn on the canvas


def _candidate(stored: dict, synset: str = "") -> dict[str, float]:
    """The evaluated model's metrics on one slice (not the baseline's, not the changes)."""
    return next(
        values
        for (model, s, diff), values in stored.items()
        if s == synset and not diff and model != "baseline"
    )


def test_the_report_of_a_run_shows_the_numbers_of_its_evaluation(sample_runs, tmp_path):
    first_run = sample_runs.first
    text, page = _report(first_run, tmp_path)
    uri = _evaluation_uri(first_run)
    stored = _artifact_metrics(uri)
    overall = _candidate(stored)
    shown = page.numbers("metrics", "metric", "model", "candidate")
    for metric in ("accuracy", "top5_accuracy", "cross_entropy", "example_count"):
        assert shown[metric][0] == overall[metric]
    assert shown["accuracy"][1] == f"{overall['accuracy']:.4f}"
    assert shown["example_count"][1] == "70"
    # How to reproduce it: the seed the Trainer's execution recorded.
    assert "Trained with seed 0, deterministic:" in text

    synsets = sorted(s for _, s, _ in stored if s)
    assert len(synsets) == 7
    per_class = page.numbers("per-class", "synset", "metric", "accuracy")
    assert per_class == {
        s: (_candidate(stored, s)["accuracy"], f"{_candidate(stored, s)['accuracy']:.4f}")
        for s in synsets
    }
    # The confusion matrix agrees with TFMA's per-class slices: each row holds that class's
    # validation images, and its diagonal cell the ones classified correctly.
    for synset in synsets:
        row = {p: page.numbers("confusion", "synset", "predicted", p)[synset][0] for p in synsets}
        count = _candidate(stored, synset)["example_count"]
        other = page.numbers("confusion", "synset", "predicted", "other")[synset][0]
        assert sum(row.values()) + other == count
        assert row[synset] / count == pytest.approx(_candidate(stored, synset)["accuracy"])

    # per class, confusion matrix, training curves, metric history
    _assert_plots_are_drawn(page, 4)
    for node_id in (
        configs.EXAMPLE_GEN,
        configs.TRANSFORM,
        configs.TRAINER,
        configs.EVALUATOR,
        configs.PUSHER,
    ):
        assert node_id in page.text["components"]
    assert uri in page.text["components"]

    validation = tfma.load_validation_result(uri)
    if validation.validation_ok:
        assert "Blessed" in page.text["verdict"] and "NOT" not in page.text["verdict"]
        assert first_run.serving_dir in page.text["verdict"]
    else:
        assert "NOT blessed, nothing pushed" in page.text["verdict"]


def test_the_report_of_an_unblessed_run_says_so_and_why(sample_runs, tmp_path):
    run = sample_runs.zero_step
    text, page = _report(run, tmp_path)
    validation = tfma.load_validation_result(_evaluation_uri(run))
    assert not validation.validation_ok
    assert "NOT blessed, nothing pushed" in page.text["verdict"]
    per_slice = validation.metric_validations_per_slice
    (overall,) = [s for s in per_slice if not s.slice_key.single_slice_keys]
    assert overall.failures
    for failure in overall.failures:  # each failed threshold, with the value that failed it
        name = failure.metric_key.name
        value = failure.metric_value.double_value.value
        if failure.metric_key.is_diff:
            bound = failure.metric_threshold.change_threshold.absolute.value + 0.0  # not -0
            reason = f"{name} changed by {value:.3f} against the baseline"
            rule = f"{name} - baseline >= {bound:+g}"
        else:
            bound = failure.metric_threshold.value_threshold.lower_bound.value
            reason = f"{name} {value:.3f} is below the value threshold {bound:g}"
            rule = f"{name} >= {bound:g}"
        assert reason in page.text["verdict"]
        assert rule in page.text["thresholds"]
    assert "FAILED" in page.text["thresholds"]
    assert "trained 0 steps" in text  # no training curves to draw
    _assert_plots_are_drawn(page, 3)  # per class, confusion matrix, metric history


def test_the_report_compares_with_the_baseline_model(sample_runs, tmp_path):
    first_run, second_run = sample_runs.first, sample_runs.second
    _, page = _report(second_run, tmp_path)
    stored = _artifact_metrics(_evaluation_uri(second_run))
    baseline = next(v for (model, s, diff), v in stored.items() if model == "baseline" and not s)
    change = next(v for (_, s, diff), v in stored.items() if diff and not s)
    assert (
        page.numbers("metrics", "metric", "model", "baseline")["accuracy"][0]
        == baseline["accuracy"]
    )
    assert page.numbers("metrics", "metric", "model", "change")["accuracy"][0] == change["accuracy"]
    assert "accuracy - baseline >= -1" in page.text["thresholds"]  # --max-top1-drop 1.0
    # The history holds both runs; the first run's model is the baseline, on the same images.
    history = page.numbers("history", "run", "metric", "accuracy")
    assert history[second_run.run_id][0] == _candidate(stored)["accuracy"]
    assert history[first_run.run_id][0] == pytest.approx(baseline["accuracy"])


def test_the_notebook_runs_headless_against_a_run(sample_runs, monkeypatch):
    first_run = sample_runs.first
    monkeypatch.setenv("ALEXNET_TFX_PIPELINE_ROOT", first_run.root)
    monkeypatch.setenv("ALEXNET_TFX_RUN_ID", first_run.run_id)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    texts, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error"
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
            texts.append(output.get("data", {}).get("text/markdown", ""))
            images += "image/png" in output.get("data", {})
    text = "\n".join(texts)
    uri = _evaluation_uri(first_run)
    assert uri in text
    overall = _candidate(_artifact_metrics(uri))
    for metric in ("accuracy", "top5_accuracy", "cross_entropy"):
        assert f"{overall[metric]:.4f}" in text
    assert ("Blessed" if tfma.load_validation_result(uri).validation_ok else "NOT blessed") in text
    assert "Trained with seed 0, deterministic:" in text
    assert images == 4  # per class, confusion matrix, training curves, metric history


def test_tensorboard_serves_the_logs_of_the_run_s_trainer(sample_runs):
    first = sample_runs.first
    board = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "tensorboard", "--pipeline-root", first.root]
        + ["--run-id", first.run_id, "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [board.stdout.readline() for _ in range(2)]
        assert first.components()[configs.TRAINER].uri("model_run") in lines[0], lines
        url = re.search(r"Open (http://127\.0\.0\.1:\d+/)", lines[1]).group(1)
        deadline = time.monotonic() + 120
        while True:  # TensorBoard reads the log directory in the background
            with urllib.request.urlopen(url + "data/runs", timeout=30) as response:
                logged = json.load(response)
            if {"train", "validation"} <= set(logged) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert {"train", "validation"} <= set(logged), logged
    finally:
        board.send_signal(signal.SIGINT)
        stdout, stderr = board.communicate(timeout=60)
    assert board.returncode == 0, stderr[-3000:]
    assert noise_lines(CliResult(0, "".join(lines) + stdout, stderr)) == []
