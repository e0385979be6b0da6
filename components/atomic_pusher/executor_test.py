"""The AtomicPusher's executor on real SavedModels: pushes, refusals, a SIGKILL mid-copy, a full
disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf
import tf_keras
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.atomic_pusher import executor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def file_digests(directory) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``directory``: equal means byte-identical."""
    result = {}
    for parent, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                result[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return result


def _save_model(directory, extra_bytes: int = 0) -> str:
    """A real SavedModel; ``extra_bytes`` of weights make its copy take a while."""
    inputs = tf_keras.Input([4], name="x")
    outputs = tf_keras.layers.Dense(max(1, extra_bytes // 16), name="dense")(inputs)
    tf_keras.Model(inputs, outputs).save(str(directory), save_format="tf")
    return str(directory)


def _versions(serving_dir) -> list[str]:
    return sorted(name for name in os.listdir(serving_dir) if name.isdigit())


def _do(tmp_path, serving_dir, blessed: bool):
    """Executor.Do as TFX calls it: a Trainer's Model artifact, a blessing, a PushedModel."""
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "trainer_model")
    # Where TFX's Trainer puts the SavedModel in a Model artifact of this TFX version.
    source = _save_model(tmp_path / "trainer_model" / "Format-Serving")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed_model")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving_dir))
    )
    executor.Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return source, pushed


def test_a_blessed_model_is_pushed_whole_and_recorded(tmp_path):
    serving_dir = tmp_path / "serving"
    source, pushed = _do(tmp_path, serving_dir, blessed=True)
    (version,) = os.listdir(serving_dir)  # nothing else is left in the serving directory
    assert version.isdigit()
    assert file_digests(serving_dir / version) == file_digests(source)
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(serving_dir / version)
    assert pushed.get_string_custom_property("pushed_version") == version
    assert file_digests(pushed.uri) == file_digests(source)
    model = tf.saved_model.load(str(serving_dir / version))
    assert model.signatures["serving_default"](x=tf.ones([2, 4]))


def test_a_model_that_is_not_blessed_is_not_pushed(tmp_path):
    serving_dir = tmp_path / "serving"
    _, pushed = _do(tmp_path, serving_dir, blessed=False)
    assert not serving_dir.exists()
    assert pushed.get_int_custom_property("pushed") == 0


def test_a_version_is_never_overwritten_and_the_new_one_is_the_highest(tmp_path):
    source = _save_model(tmp_path / "model")
    serving_dir = tmp_path / "serving"
    future = str(int(time.time()) + 10_000)  # e.g. pushed before the clock was set back
    shutil.copytree(source, serving_dir / future)
    (serving_dir / future / "marker").write_text("the old model")
    before = file_digests(serving_dir / future)

    pushed = [executor.push(source, str(serving_dir)) for _ in range(2)]

    assert [os.path.basename(p) for p in pushed] == [str(int(future) + 1), str(int(future) + 2)]
    assert file_digests(serving_dir / future) == before
    assert _versions(serving_dir) == [future, *(os.path.basename(p) for p in pushed)]


def test_a_version_taken_meanwhile_is_left_alone(tmp_path, monkeypatch):
    """Another pusher creates the chosen version between this one's copy and its rename."""
    source = _save_model(tmp_path / "model")
    serving_dir = tmp_path / "serving"
    copy = executor.copy_saved_model
    taken = []

    def copy_then_lose_the_race(src, dst):
        copy(src, dst)
        version = os.path.basename(dst)[len(executor.INCOMPLETE_PREFIX) :].split("-")[0]
        os.makedirs(serving_dir / version)
        (serving_dir / version / "saved_model.pb").write_bytes(b"the other pusher's model")
        taken.append(version)

    monkeypatch.setattr(executor, "copy_saved_model", copy_then_lose_the_race)
    path = executor.push(source, str(serving_dir))

    (version,) = taken
    assert int(os.path.basename(path)) > int(version)
    assert (serving_dir / version / "saved_model.pb").read_bytes() == b"the other pusher's model"
    assert file_digests(path) == file_digests(source)


def test_a_reader_polling_the_serving_dir_never_sees_a_partial_version(tmp_path):
    source = _save_model(tmp_path / "model", extra_bytes=64 << 20)
    expected = file_digests(source)
    serving_dir = tmp_path / "serving"
    os.makedirs(serving_dir)
    seen: list[dict] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            for version in _versions(serving_dir):
                seen.append(file_digests(serving_dir / version))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        executor.push(source, str(serving_dir))
    finally:
        done.set()
        watcher.join()
    seen.append(file_digests(serving_dir / _versions(serving_dir)[0]))
    assert all(tree == expected for tree in seen)


def _start_push(source, serving_dir) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, components; from components.atomic_pusher.executor import push; "
            "push(sys.argv[1], sys.argv[2])",
            str(source),
            str(serving_dir),
        ],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        start_new_session=True,
    )


def test_a_push_killed_mid_copy_leaves_the_old_state_and_the_next_push_cleans_up(tmp_path):
    serving_dir = tmp_path / "serving"
    old = executor.push(_save_model(tmp_path / "old_model"), str(serving_dir))
    old_tree = file_digests(old)
    # A named pipe stalls the copy at that file (reading it waits for a writer) like a slow
    # network disk would, so the kill lands mid-copy every time, not by luck of timing.
    stalled = _save_model(tmp_path / "new_model")
    os.mkfifo(os.path.join(stalled, "assets", "stalls_the_copy"))

    process = _start_push(stalled, serving_dir)
    try:
        deadline = time.monotonic() + 120
        incomplete = []
        while not incomplete:
            assert process.poll() is None, "the push ended before it could be killed"
            assert time.monotonic() < deadline, "the push never started copying"
            incomplete = [
                name
                for name in os.listdir(serving_dir)
                if name.startswith(executor.INCOMPLETE_PREFIX)
                and os.path.exists(os.path.join(serving_dir, name, "assets"))
            ]
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL

    (partial,) = incomplete
    assert not os.path.exists(serving_dir / partial / executor.SAVED_MODEL_FILE)
    assert _versions(serving_dir) == [os.path.basename(old)]  # no new version appeared
    assert file_digests(old) == old_tree
    assert tf.saved_model.load(old).signatures["serving_default"](x=tf.ones([1, 4]))

    new = executor.push(_save_model(tmp_path / "next_model"), str(serving_dir))

    assert sorted(os.listdir(serving_dir)) == sorted([os.path.basename(old), os.path.basename(new)])
    assert int(os.path.basename(new)) > int(os.path.basename(old))
    assert file_digests(new) == file_digests(tmp_path / "next_model")
    assert file_digests(old) == old_tree


def test_a_copy_of_a_live_pusher_is_not_removed(tmp_path):
    serving_dir = tmp_path / "serving"
    live = serving_dir / f"{executor.INCOMPLETE_PREFIX}1-{socket.gethostname()}-{os.getpid()}"
    os.makedirs(live)
    executor.push(_save_model(tmp_path / "model"), str(serving_dir))
    assert live.exists()


_FULL_DISK_SCRIPT = """
import hashlib, json, os, subprocess, sys
import components
from components.atomic_pusher.executor import push
small, large, serving_dir = sys.argv[1:]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", serving_dir], check=True)
old = push(small, serving_dir)
try:
    push(large, serving_dir)
    error = None
except Exception as e:
    error = f"{type(e).__name__}: {e}"
entries = {}
for name in os.listdir(serving_dir):
    for parent, _, files in os.walk(os.path.join(serving_dir, name)):
        for f in files:
            path = os.path.join(parent, f)
            with open(path, "rb") as file:
                digest = hashlib.sha256(file.read()).hexdigest()
            entries[os.path.relpath(path, serving_dir)] = digest
print(json.dumps({"old": os.path.basename(old), "error": error, "entries": entries}))
"""


def _user_namespaces_work() -> bool:
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    shutil.which("unshare") is None or not _user_namespaces_work(),
    reason="needs unprivileged user and mount namespaces to mount a tiny tmpfs",
)
def test_a_push_onto_a_full_disk_fails_cleanly_and_keeps_the_old_version(tmp_path):
    small = _save_model(tmp_path / "small")
    large = _save_model(tmp_path / "large", extra_bytes=8 << 20)  # larger than the 2 MB disk
    serving_dir = tmp_path / "serving"
    os.makedirs(serving_dir)
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c"]
        + [_FULL_DISK_SCRIPT, small, large, str(serving_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert "space" in outcome["error"].lower(), outcome["error"]
    expected = {
        os.path.join(outcome["old"], path): sha for path, sha in file_digests(small).items()
    }
    assert outcome["entries"] == expected  # the old version, whole; no partial copy left
