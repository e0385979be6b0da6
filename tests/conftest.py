"""End-to-end helpers, and the shared runs of the bundled sample that tests only read.

A real run costs a minute or more and ~1 GB of disk. ``sample_runs`` makes, once per test
session and before any test reads them, the three runs a user's first hour holds: ``make run``
(blessed, pushed), a re-run gated against that model, and a model trained 0 steps that fails
the gate. Tests name the run they read by its id, so no test depends on another's order; a test
that needs runs of its own makes them in its own pipeline root.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys

import pytest

from pipeline import configs, metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
        env={**os.environ, **(env or {})},
    )
    return CliResult(result.returncode, result.stdout, result.stderr)


def noise_lines(result: CliResult) -> list[str]:
    """The lines of a command's stdout and stderr that ``pipeline/run_log.py``'s NOISE table
    keeps off the terminal (each pattern searched anywhere in a line)."""
    from pipeline.run_log import NOISE

    patterns = [re.compile(noise.text.lstrip("^").rstrip("$")) for noise in NOISE]
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    return [line for line in lines if any(p.search(line) for p in patterns)]


def serving_versions(serving_dir: str) -> list[str]:
    """The model versions pushed to ``serving_dir``, oldest first."""
    return (
        sorted(v for v in os.listdir(serving_dir) if v.isdigit())
        if os.path.isdir(serving_dir)
        else []
    )


@dataclasses.dataclass
class PipelineRun:
    root: str
    result: CliResult
    serving_versions: list[str]  # in the serving directory when the run had finished

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.root, configs.SERVING_DIR_NAME)

    @property
    def run_id(self) -> str:
        """The run id the run's own summary printed (later runs may share the root)."""
        return re.search(r"^Run (\S+) \(", self.result.stdout, re.MULTILINE).group(1)

    def components(self) -> dict[str, metadata.ComponentRun]:
        """This run's component executions, from ML Metadata."""
        return metadata.component_runs(metadata.open_store(self.root), self.run_id)


def run_pipeline(root: str, *args: str) -> PipelineRun:
    """``alexnet-tfx run --pipeline-root ROOT ARGS``, which must end (blessed or not)."""
    result = run_cli("run", "--pipeline-root", root, *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    serving_dir = os.path.join(root, configs.SERVING_DIR_NAME)
    return PipelineRun(root, result, serving_versions(serving_dir))


@dataclasses.dataclass
class SampleRuns:
    first: PipelineRun  # make run's defaults: blessed and pushed, no baseline
    second: PipelineRun  # one more step, the gate opened wide: blessed against the first
    zero_step: PipelineRun  # trained 0 steps: not blessed, nothing pushed


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory) -> SampleRuns:
    root = str(tmp_path_factory.mktemp("sample_runs") / "pipeline_root")
    runs = SampleRuns(
        first=run_pipeline(root),
        second=run_pipeline(
            root, "--train-steps", "1", "--min-top1", "0", "--max-top1-drop", "1.0"
        ),
        zero_step=run_pipeline(root, "--train-steps", "0"),
    )
    yield runs
    shutil.rmtree(root, ignore_errors=True)
