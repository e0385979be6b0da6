"""A local pipeline root made ready for a run: created, writable, with room, and held by one run.

A wrong path or a full disk costs a one-line error before anything runs, not a half-built
root; a lock keeps a second run from sharing the root's SQLite metadata store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil

from data.errors import UserError

LOCK_FILE = "run.lock"
# Below this a run cannot finish even on the bundled sample (~0.5 GB of artifacts and Trainer
# checkpoints); ImageNet needs far more, but this catches a full disk before anything runs.
MIN_FREE_BYTES = 1 << 30


def writable_dir(path: str, flag: str) -> str:
    """``path``, absolute, created if missing; UserError (naming ``flag``) if it cannot be
    written or its filesystem is (nearly) full."""
    path = os.path.abspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag} {path}: cannot create it ({error.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: not writable")
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise UserError(
            f"{flag} {path}: its filesystem is (nearly) full, {free / 2**20:.1f} MiB free; a run "
            f"needs at least {MIN_FREE_BYTES / 2**30:.0f} GiB"
        )
    return path


@contextlib.contextmanager
def exclusive_run(
    pipeline_root: str,
    flag: str = "--pipeline-root",
    why: str = "its SQLite metadata store takes one run at a time",
):
    """Holds ``<pipeline_root>/run.lock`` for one run, or refuses naming the holder's pid.

    ``flock`` is released by the kernel when its holder dies, even by SIGKILL, so a crashed run
    leaves no stale lock for its re-run to trip on.
    """
    with open(os.path.join(pipeline_root, LOCK_FILE), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise UserError(
                f"{flag} {pipeline_root} is in use by another alexnet-tfx run (pid {holder}), "
                f"and {why}: wait for that run to finish, or use another {flag}"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield
