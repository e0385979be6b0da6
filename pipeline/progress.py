"""What a local run prints while it runs: one progress line as each component starts and ends.

LocalDagRunner logs through absl; its per-component lines become progress lines here, warnings
go to stderr, and TFX's multi-line execution dumps go nowhere.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time


class _Progress(logging.Handler):
    """Turns the LocalDagRunner's component log lines into one progress line each."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Component %s is running.":
            (node_id,) = record.args
            self.started[node_id] = time.time()
            print(f"[{time.strftime('%H:%M:%S')}] {node_id} ...", flush=True)
        elif record.msg == "Component %s is finished.":
            (node_id,) = record.args
            seconds = time.time() - self.started.get(node_id, time.time())
            print(f"[{time.strftime('%H:%M:%S')}] {node_id} done ({seconds:.1f} s)", flush=True)


@contextlib.contextmanager
def progress_lines():
    """While active, component progress lines go to stdout and absl warnings to stderr."""
    from absl import logging as absl_logging

    absl_logger = logging.getLogger("absl")
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    handlers = [_Progress(), warnings]
    # Through absl's verbosity flag, not the logger's level: TensorFlow saves and restores that
    # flag around every SavedModel export (Transform's first), which would reset a level set
    # on the logger alone to WARNING and silence the progress lines from then on. The INFO
    # records stop here instead of reaching the root logger, which would print every one of
    # TFX's multi-line execution dumps.
    previous_verbosity, previous_propagate = absl_logging.get_verbosity(), absl_logger.propagate
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger.propagate = False
    for handler in handlers:
        absl_logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            absl_logger.removeHandler(handler)
        absl_logger.propagate = previous_propagate
        absl_logging.set_verbosity(previous_verbosity)
