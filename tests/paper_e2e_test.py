"""The paper's protocol on the bundled sample: ``run --preset paper --epochs 1``.

One run: Transform stores the 256 region, the Trainer takes random crops for an epoch, and the
Evaluator measures the central crop (gated) and the paper's ten-crop average (reported). The
ten-crop numbers are read from the evaluation artifact with TFMA, and recomputed from the exported
model's ``serving_ten_crop`` signature on the encoded validation images, not through the code that
reports them. The signature's crops themselves are checked against NumPy in
``models/signatures_test.py``.
"""

from __future__ import annotations

import os
import shutil

import nbformat
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from nbclient import NotebookClient

from data import bundled, records
from models.metric_names import TOP1, TOP5
from models.signatures import PROBABILITIES, TEN_CROP_PROBABILITIES
from pipeline import configs, run_report
from tests.conftest import PipelineRun, run_pipeline
from tests.inspect_e2e_test import NOTEBOOK, _report

pytestmark = pytest.mark.e2e

# Two classes whose ten-crop probabilities are closer than this may be ranked either way by
# two computations of the same model (batching changes float rounding).
TIE = 1e-5


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory) -> PipelineRun:
    root = tmp_path_factory.mktemp("paper") / "pipeline_root"
    yield run_pipeline(str(root), "--preset", "paper", "--epochs", "1")
    shutil.rmtree(root, ignore_errors=True)


def _stored_overall(run: PipelineRun) -> dict[str, dict[str, float]]:
    """{output name: {metric: value}} of the candidate, overall slice, as TFMA stored them."""
    uri = run.components()[configs.EVALUATOR].uri("evaluation")
    stored: dict[str, dict[str, float]] = {}
    for slice_metrics in tfma.load_metrics(uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            if kv.value.HasField("double_value") and not kv.key.is_diff:
                stored.setdefault(kv.key.output_name, {})[kv.key.name] = kv.value.double_value.value
    return stored


def test_the_summary_shows_the_central_crop_and_the_ten_crop_test(paper_run):
    stored = _stored_overall(paper_run)
    centre, ten = stored[PROBABILITIES], stored[TEN_CROP_PROBABILITIES]
    out = paper_run.result.stdout
    assert (
        f"Evaluation (central crop, 70 validation examples): top-1 {centre[TOP1]:.3f}, "
        f"top-5 {centre[TOP5]:.3f}"
    ) in out
    assert (
        f"Ten crops (the paper's test, not gated): top-1 {ten[TOP1]:.3f}, top-5 {ten[TOP5]:.3f}"
        in out
    )
    training = run_report.training_history(paper_run.components()[configs.TRAINER])
    assert len(training["loss"]) == 1  # --epochs 1: one pass, 308 images in 2 batches of 128


def test_the_ten_crop_signature_gives_the_evaluator_s_ten_crop_accuracy(paper_run):
    trainer = paper_run.components()[configs.TRAINER]
    model = tf.saved_model.load(os.path.join(trainer.uri("model"), "Format-Serving"))
    files = records.split_files(bundled.SAMPLE_DIR, records.VALIDATION_SPLIT)
    examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)]
    assert len(examples) == 70
    encoded = [e.features.feature[records.ENCODED].bytes_list.value[0] for e in examples]
    truth = np.array([e.features.feature[records.SYNSET].bytes_list.value[0] for e in examples])
    predicted = model.signatures["serving_ten_crop"](image_bytes=tf.constant(encoded))

    probabilities = predicted[PROBABILITIES].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    undecided = top2[:, 1] - top2[:, 0] < TIE
    right = predicted["top5_synsets"].numpy()[:, 0] == truth
    evaluator_right = _stored_overall(paper_run)[TEN_CROP_PROBABILITIES][TOP1] * len(examples)
    assert (right & ~undecided).sum() <= round(evaluator_right) <= (right | undecided).sum()


def test_the_report_and_the_notebook_show_both_evaluations(paper_run, tmp_path, monkeypatch):
    stored = _stored_overall(paper_run)
    _, page = _report(paper_run, tmp_path)
    for metric in (TOP1, TOP5):
        shown = page.numbers("ten-crop", "metric", "model", "ten-crop")[metric][0]
        assert shown == stored[TEN_CROP_PROBABILITIES][metric]

    monkeypatch.setenv("ALEXNET_TFX_PIPELINE_ROOT", paper_run.root)
    monkeypatch.setenv("ALEXNET_TFX_RUN_ID", paper_run.run_id)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}},
    ).execute()  # raises CellExecutionError, naming the cell, if any cell fails
    ten_crop_cell = next(c for c in notebook.cells if "ten_crop_metrics" in c.source)
    table = "".join(o.get("data", {}).get("text/plain", "") for o in ten_crop_cell.outputs)
    assert "ten crops" in table
    for metric in (TOP1, TOP5):
        assert f"{stored[TEN_CROP_PROBABILITIES][metric]:.4f}" in table
        assert f"{stored[PROBABILITIES][metric]:.4f}" in table
