"""TFX's cache sees code: a copy of the package runs the real pipeline (up to the Trainer, 0
steps), then runs again unchanged, after an edit of the network, and after an edit of the
preprocessing; each time ML Metadata says which components executed and which were cached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from data import bundled
from pipeline import configs, metadata
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

PACKAGES = ("data", "models", "components", "pipeline", "bench")


def _copy_package(destination) -> str:
    for package in PACKAGES:
        shutil.copytree(
            os.path.join(REPO, package),
            os.path.join(destination, package),
            ignore=shutil.ignore_patterns("__pycache__", "sample"),
        )
    return str(destination)


def _append(package_dir: str, relative: str, text: str) -> None:
    with open(os.path.join(package_dir, relative), "a", encoding="utf-8") as f:
        f.write(text)


def _run(package_dir: str, root: str, up_to: str) -> dict[str, str]:
    """The pipeline of ``package_dir``'s code, run up to ``up_to``: node id -> state."""
    spec = {
        "pipeline_root": root,
        "data_root": bundled.SAMPLE_DIR,
        "up_to": [up_to],
        "train_steps": 0,
        "batch_size": None,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.pipeline_run", json.dumps(spec)],
        cwd=package_dir,  # the copy's packages come first on sys.path
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    store = metadata.open_store(root)
    runs = metadata.component_runs(store, metadata.run_ids(store)[-1])
    return {node_id: run.state for node_id, run in runs.items()}


def test_editing_the_code_re_executes_the_steps_that_run_it_and_only_then(tmp_path):
    package = _copy_package(tmp_path / "package")
    root = str(tmp_path / "root")

    first = _run(package, root, configs.TRAINER)
    assert first[configs.TRANSFORM] == first[configs.TRAINER] == "complete"

    unchanged = _run(package, root, configs.TRAINER)
    assert unchanged[configs.TRANSFORM] == unchanged[configs.TRAINER] == "cached"

    _append(package, "models/alexnet.py", "\nEDITED = True  # the network changed\n")
    network = _run(package, root, configs.TRAINER)
    assert network[configs.TRANSFORM] == "cached"
    assert network[configs.TRAINER] == "complete"

    _append(package, "models/preprocessing.py", "\nEDITED = True  # the preprocessing changed\n")
    preprocessing = _run(package, root, configs.TRANSFORM)
    assert preprocessing[configs.QUARANTINE] == "cached"
    assert preprocessing[configs.TRANSFORM] == "complete"
