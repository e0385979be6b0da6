"""How every benchmark reports: readable lines, then one JSON line of the same figures."""

from __future__ import annotations

import json
import os
import tempfile

DEFAULT_WORK_DIR = os.path.join(tempfile.gettempdir(), "alexnet-tfx-bench")
MIB = 2**20


def report(bench: str, lines: list[str], figures: dict) -> None:
    """Prints ``lines`` and the JSON line ``{"bench": bench, **figures}`` (floats rounded)."""
    for line in lines:
        print(line)
    print(json.dumps({"bench": bench, **_rounded(figures)}), flush=True)


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
