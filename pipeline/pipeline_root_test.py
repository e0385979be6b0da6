"""A pipeline root made ready for a run: the lock, and a full disk, for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from data.errors import UserError
from pipeline import pipeline_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_second_run_on_a_held_root_is_refused_naming_the_holder(tmp_path):
    holder = rf"in use by another alexnet-tfx run \(pid {os.getpid()}\)"
    with (
        pipeline_root.exclusive_run(str(tmp_path)),
        pytest.raises(UserError, match=holder),
        pipeline_root.exclusive_run(str(tmp_path)),
    ):
        pass
    with pipeline_root.exclusive_run(str(tmp_path)):  # released with its holder
        pass


def _user_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.skipif(
    not _user_namespaces_work(),
    reason="needs unprivileged user and mount namespaces to mount a small tmpfs",
)
def test_a_pipeline_root_on_a_full_disk_is_refused(tmp_path):
    root = tmp_path / "root"
    os.makedirs(root)
    mount_then_run = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$@"'
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount_then_run]
        + [str(root), sys.executable, "-m", "pipeline.cli", "run", "--pipeline-root", str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"--pipeline-root {root}: its filesystem is (nearly) full" in result.stderr
    assert "Traceback" not in result.stderr
