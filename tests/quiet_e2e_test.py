"""Every command that imports TensorFlow, TFX, TFMA or Beam keeps their known noise
(``pipeline/run_log.py``'s NOISE table) off the terminal, and ``--verbose`` shows it.

``run``, ``kubeflow-local``, ``predict``, ``tensorboard`` and ``bench`` are checked the same way
where their own end-to-end tests run them; the others here, each run for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from data import bundled
from tests.conftest import REPO, CliResult, noise_lines, run_cli

pytestmark = pytest.mark.e2e


def test_report_is_quiet_and_verbose_shows_what_it_keeps_off(sample_runs, tmp_path):
    root = sample_runs.first.root
    quiet = run_cli("report", "--pipeline-root", root, "--output", str(tmp_path / "a.html"))
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert noise_lines(quiet) == []
    assert quiet.stderr == ""
    verbose = run_cli(
        "report", "--pipeline-root", root, "--output", str(tmp_path / "b.html"), "--verbose"
    )
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert noise_lines(verbose)  # TensorFlow's start-up lines at least: the filter does work


def test_compile_kubeflow_and_submit_are_quiet(tmp_path):
    output = str(tmp_path / "pipeline.json")
    compiled = run_cli(
        "compile-kubeflow", "--output", output, "--image", "gcr.io/p/alexnet-tfx:1",
        "--pipeline-root", "gs://b/root", "--data-root", "gs://b/data",
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    assert noise_lines(compiled) == [] and compiled.stderr == ""
    submitted = run_cli("submit", "--pipeline", output, "--host", "http://127.0.0.1:9")
    assert submitted.returncode == 2  # nothing listens there
    assert noise_lines(submitted) == []
    assert len(submitted.stderr.splitlines()) == 1, submitted.stderr


def test_convert_imagenet_is_quiet(tmp_path):
    """A raw tree of the bundled photos, converted with Beam."""
    photos = sorted(os.listdir(bundled.PHOTOS_DIR))
    for split, names in (("train", photos[:4]), ("val", photos[4:])):
        for synset, name in zip(("n01440764", "n01443537"), (names[:2], names[2:]), strict=True):
            os.makedirs(tmp_path / split / synset, exist_ok=True)
            for photo in name:
                shutil.copy(os.path.join(bundled.PHOTOS_DIR, photo), tmp_path / split / synset)
    result = run_cli(
        "convert-imagenet", "--train-dir", str(tmp_path / "train"), "--validation-dir",
        str(tmp_path / "val"), "--output-dir", str(tmp_path / "out"), "--train-shards", "1",
        "--validation-shards", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train: 4 records in 1 shards, 2 classes, 0 rejected" in result.stdout
    assert noise_lines(result) == []


def test_data_service_servers_are_quiet():
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "data-service", "dispatcher", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().startswith("tf.data service dispatcher on port 0")
        time.sleep(3)  # serving
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=60)
    assert noise_lines(CliResult(process.returncode, stdout, stderr)) == []
