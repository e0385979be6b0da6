"""Runs a command in a fresh process and measures it: wall time, CPU time, peak RSS.

A fresh process is the only clean way to know the memory a job needs: ``ru_maxrss`` never goes
down, so anything measured earlier in the same process would hide in the peak.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time

# The repository root: children run ``python -m bench...`` from here, so they import this
# checkout's packages even where the installed entry point does not list ``bench``.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class Finished:
    returncode: int
    output: str  # stdout and stderr together
    seconds: float
    cpu_seconds: float  # user + system, of the process and the children it waited for
    peak_rss_bytes: int  # of the process itself (Linux reports ru_maxrss in KiB)

    @property
    def last_line(self) -> str:
        lines = self.output.strip().splitlines()
        return lines[-1] if lines else ""


def run(args: list[str], env: dict | None = None, cwd: str = REPO) -> Finished:
    """Runs ``args`` to completion; the output goes to a file, so a chatty child cannot block."""
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        child = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
            cwd=cwd,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    return Finished(
        returncode=child.returncode,
        output=output,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=usage.ru_maxrss * 1024,
    )


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
