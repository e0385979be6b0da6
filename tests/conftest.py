"""Shared end-to-end fixtures: real pipeline runs, made once per test session.

A real run costs a minute or more and ~1 GB of disk, so the runs are session-scoped, share one
pipeline root (later runs reuse the cached upstream components, as a user's re-run would) and
are deleted at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

from pipeline import runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def file_digests(directory) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``directory``: equal means byte-identical."""
    result = {}
    for parent, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                result[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return result


# Each later run in the shared root becomes its "latest" run, so tests that read the first run
# as the latest go before any test that needs a later run, whatever file they are in.
_RUN_ORDER = ("second_run", "zero_step_run")


def pytest_collection_modifyitems(items):
    def later_runs_needed(item) -> int:
        names = getattr(item, "fixturenames", ())
        return max((i + 1 for i, name in enumerate(_RUN_ORDER) if name in names), default=0)

    items.sort(key=later_runs_needed)  # stable: the order within each group is kept


@dataclasses.dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, timeout: float = 1200, env: dict | None = None) -> CliResult:
    """``alexnet-tfx ARGS`` in a fresh interpreter, as a user would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )
    return CliResult(result.returncode, result.stdout, result.stderr)


@dataclasses.dataclass
class PipelineRun:
    root: str
    serving_dir: str
    result: CliResult

    @property
    def run_id(self) -> str:
        """The run id the run's own summary printed (later runs may share the root)."""
        return re.search(r"^Run (\S+) \(", self.result.stdout, re.MULTILINE).group(1)

    def components(self) -> dict[str, runs.ComponentRun]:
        """This run's component executions, from ML Metadata."""
        return runs.component_runs(runs.open_store(self.root), self.run_id)


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    yield str(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def first_run(e2e_root) -> PipelineRun:
    """``make run``'s pipeline (every default) on the bundled sample: blessed and pushed."""
    root = os.path.join(e2e_root, "pipeline_root")
    result = run_cli("run", "--pipeline-root", root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return PipelineRun(root, os.path.join(root, "serving_model"), result)


def serving_versions(serving_dir: str) -> list[str]:
    """The model versions pushed to ``serving_dir``, oldest first."""
    return (
        sorted(v for v in os.listdir(serving_dir) if v.isdigit())
        if os.path.isdir(serving_dir)
        else []
    )


@pytest.fixture(scope="session")
def second_run(first_run: PipelineRun) -> PipelineRun:
    """Re-run with other training steps: the first model is the baseline. The gate is opened
    wide (any top-1, any drop) so that this run is pushed whatever 40 steps reach."""
    result = run_cli(
        "run",
        "--pipeline-root",
        first_run.root,
        "--train-steps",
        "40",
        "--min-top1",
        "0",
        "--max-top1-drop",
        "1.0",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return PipelineRun(first_run.root, first_run.serving_dir, result)


@pytest.fixture(scope="session")
def zero_step_run(second_run: PipelineRun) -> tuple[PipelineRun, list[str]]:
    """A model trained 0 steps must not pass the gate."""
    versions_before = serving_versions(second_run.serving_dir)
    result = run_cli("run", "--pipeline-root", second_run.root, "--train-steps", "0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return PipelineRun(second_run.root, second_run.serving_dir, result), versions_before
