"""Reliability, for real: runs killed with SIGKILL and re-run, a gate that holds, corrupt and
missing input, a second run on a busy pipeline root, a full disk, credentials and permissions.

One chain of runs shares a pipeline root, each re-run reusing what the last one finished, on a
copy of the bundled sample with one bad record of each kind added:

1. killed in Transform (a second ``run`` tries the same root meanwhile, and refuses);
2. re-run, killed in the Trainer after its first checkpoint;
3. re-run: resumes training from that checkpoint; blessed and pushed;
4. a model trained one step, killed in the Evaluator;
5. re-run: that model fails the gate; the serving directory keeps model 3.

The push itself (atomic rename, a SIGKILL mid-copy) is tested in components/atomic_pusher.
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import io
import json
import os
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.util import event_pb2

from data import compression, image_check, imagenet_classes, records
from models.trainer import TrainerConfig
from pipeline import configs, runs
from tests.conftest import REPO, CliResult, file_digests, run_cli

pytestmark = pytest.mark.e2e

TRAIN_STEPS = 40  # two epochs: one before the kill, one after the resume
STEPS_PER_EPOCH = TrainerConfig().steps_per_epoch
# In every run's environment, never read by the pipeline: if one shows up in a log or a file,
# something dumped the environment.
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "sentinel-aws-secret-5d41402abc4b2a76",
    "ALEXNET_TFX_TEST_PASSWORD": "sentinel-password-7d793037a0760186",
}
SAMPLE_TRAIN = 308
SAMPLE_VALIDATION = 70
SAMPLE_SYNSETS = {
    "n02123045", "n07920052", "n03763968", "n03877845", "n04266014", "n04485082", "n04548280"
}  # fmt: skip


# --- helpers ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Chain:
    data_root: str
    root: str
    log_dir: str

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.root, configs.SERVING_DIR_NAME)

    def args(self, *, train_steps: int = TRAIN_STEPS, gate: tuple[str, ...] = ()) -> list[str]:
        return [
            "run",
            "--data-root",
            self.data_root,
            "--pipeline-root",
            self.root,
            "--batch-size",
            "8",
            "--train-steps",
            str(train_steps),
            *gate,
        ]


# Blessing must not hinge on what 40 steps teach AlexNet on the sample: these runs are about
# crashes. The one-step model keeps the default gate, which it must fail.
NO_VALUE_THRESHOLD = ("--min-top1", "0")


def _start(args: list[str], log: str, env: dict | None = None) -> subprocess.Popen:
    """``alexnet-tfx ARGS`` in its own process group (so a kill takes all of it), output to log."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        )


def _wait_for(process: subprocess.Popen, log: str, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 900  # a hung run fails the test instead of hanging CI
    while not ready():
        if process.poll() is not None:
            with open(log) as f:
                output = f.read()[-5000:]
            pytest.fail(f"the run exited ({process.returncode}) before {what}:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} in 900 s")
        time.sleep(0.2)


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL


def _started(log: str, root: str, node_id: str, output_key: str, before: set[str]):
    """The component has logged its start and the launcher has created its new output dir."""

    def ready() -> bool:
        with open(log) as f:
            if f"] {node_id} ..." not in f.read():
                return False
        return bool(set(glob.glob(os.path.join(root, node_id, output_key, "*"))) - before)

    return ready


def _run_components(root: str) -> list[dict[str, runs.ComponentRun]]:
    """Every run of the chain, oldest first: node id -> execution."""
    store = runs.open_store(root)
    return [runs.component_runs(store, run_id) for run_id in runs.run_ids(store)]


def _versions(serving_dir: str) -> list[str]:
    return sorted(name for name in os.listdir(serving_dir) if name.isdigit())


def _count(pattern: str, compression: str = "") -> int:
    files = sorted(glob.glob(pattern))
    assert files, pattern
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type=compression))


def _event_steps(directory: str) -> dict[str, list[int]]:
    """Summary tag -> the steps it was written at, from a TensorBoard log directory."""
    steps: dict[str, list[int]] = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return steps


def _record_offsets(path: str) -> list[tuple[int, int]]:
    """(offset, data length) of each record, read off the TFRecord framing: length (8 bytes),
    its CRC (4), data, data CRC (4)."""
    with open(path, "rb") as f:
        data = f.read()
    offsets, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        offsets.append((offset, length))
        offset += 12 + length + 4
    return offsets


def _sample_copy(directory) -> str:
    os.makedirs(directory)
    for split in records.SPLITS:
        for path in records.split_files(configs.SAMPLE_DATA_ROOT, split):
            shutil.copy(path, directory)
    return str(directory)


def _user_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


# --- the dirty sample --------------------------------------------------------------------------


def _bad_records() -> dict[str, list[bytes]]:
    """One record per kind of bad input, built from a real photograph of the sample."""
    first = next(
        iter(tf.data.TFRecordDataset(records.split_files(configs.SAMPLE_DATA_ROOT, "train")))
    )
    good = tf.train.Example.FromString(first.numpy())
    photo = good.features.feature[records.ENCODED].bytes_list.value[0]
    index = good.features.feature[records.LABEL].int64_list.value[0] - 1

    def example(encoded: bytes, class_index: int = index, name: str = "bad.JPEG"):
        return records.make_example(
            encoded, class_index, imagenet_classes.synset_of(class_index), "", 1, 1, name
        )

    huge = io.BytesIO()
    Image.new("L", (10_000, 10_000)).save(huge, "JPEG")  # ~100 Mpx from a small file
    missing_image = example(photo, name="missing_image.JPEG")
    del missing_image.features.feature[records.ENCODED]
    out_of_range = example(photo, name="label_1001.JPEG")
    out_of_range.features.feature[records.LABEL].int64_list.value[:] = [1001]
    absent = 0  # tench: not among the sample's 7 classes
    assert imagenet_classes.synset_of(absent) not in SAMPLE_SYNSETS
    train = [
        example(b"these bytes are no image", name="undecodable.JPEG"),
        example(photo[: len(photo) // 2], name="truncated.JPEG"),
        example(b"", name="zero_length.JPEG"),
        example(huge.getvalue(), name="10000x10000.JPEG"),
        out_of_range,
        missing_image,
    ]
    validation = [example(photo, absent, name="class_not_in_train.JPEG")]
    return {
        "train": [e.SerializeToString() for e in train],
        "validation": [e.SerializeToString() for e in validation],
    }


def _dirty_sample(directory) -> str:
    data_root = _sample_copy(directory)
    for split, serialized in _bad_records().items():
        with tf.io.TFRecordWriter(os.path.join(data_root, f"{split}-bad-records")) as writer:
            for record in serialized:
                writer.write(record)
    return data_root


# --- the chain of runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base = tmp_path_factory.mktemp("reliability")
    os.makedirs(base / "logs")
    previous = os.umask(0o022)  # a user's usual umask, which the runs inherit
    try:
        yield Chain(_dirty_sample(base / "data"), str(base / "root"), str(base / "logs"))
    finally:
        os.umask(previous)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def killed_in_transform(chain) -> tuple[int, CliResult]:
    """Run 1, killed in Transform; while it is stopped, a second run tries the same root."""
    log = os.path.join(chain.log_dir, "1_killed_in_transform.log")
    process = _start(chain.args(gate=NO_VALUE_THRESHOLD), log, env=SECRETS)
    try:
        _wait_for(
            process,
            log,
            _started(log, chain.root, "Transform", "transform_graph", set()),
            "Transform started",
        )
        os.killpg(process.pid, signal.SIGSTOP)  # frozen mid-Transform, holding its lock
        concurrent = run_cli(*chain.args(gate=NO_VALUE_THRESHOLD), env=SECRETS)
    finally:
        _kill(process)
    return process.pid, concurrent


@pytest.fixture(scope="module")
def killed_in_trainer(chain, killed_in_transform) -> None:
    """Run 2, the same command, killed once the Trainer has saved its first checkpoint."""
    log = os.path.join(chain.log_dir, "2_killed_in_trainer.log")
    checkpoints = os.path.join(chain.root, configs.CHECKPOINT_DIR_NAME, "**", "checkpoint")
    process = _start(chain.args(gate=NO_VALUE_THRESHOLD), log, env=SECRETS)
    try:
        # tf.train.CheckpointManager writes its "checkpoint" index after the checkpoint itself.
        ready = lambda: bool(glob.glob(checkpoints, recursive=True))  # noqa: E731
        _wait_for(process, log, ready, "a Trainer checkpoint")
    finally:
        _kill(process)


@pytest.fixture(scope="module")
def resumed(chain, killed_in_trainer) -> CliResult:
    """Run 3, the same command."""
    result = run_cli(*chain.args(gate=NO_VALUE_THRESHOLD), env=SECRETS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


@pytest.fixture(scope="module")
def killed_in_evaluator(chain, resumed) -> dict[str, str]:
    """Run 4: a model trained one step (no better than chance), under the default gate, killed
    in the Evaluator. Returns the serving directory's files beforehand."""
    serving_before = file_digests(chain.serving_dir)
    log = os.path.join(chain.log_dir, "4_killed_in_evaluator.log")
    before = set(glob.glob(os.path.join(chain.root, "Evaluator", "evaluation", "*")))
    process = _start(chain.args(train_steps=1), log, env=SECRETS)
    try:
        ready = _started(log, chain.root, "Evaluator", "evaluation", before)
        _wait_for(process, log, ready, "Evaluator started")
    finally:
        _kill(process)
    return serving_before


@pytest.fixture(scope="module")
def rejected(chain, killed_in_evaluator) -> CliResult:
    """Run 5, the same command as run 4."""
    result = run_cli(*chain.args(train_steps=1), env=SECRETS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def test_a_second_run_on_a_busy_root_refuses_naming_the_holder(chain, killed_in_transform):
    pid, concurrent = killed_in_transform
    assert concurrent.returncode == 2, concurrent.stderr[-3000:]
    assert f"in use by another alexnet-tfx run (pid {pid})" in concurrent.stderr
    assert chain.root in concurrent.stderr
    assert "Traceback" not in concurrent.stderr


def test_a_run_killed_in_transform_is_redone_and_its_partial_output_never_used(
    chain, killed_in_trainer
):
    first, second = _run_components(chain.root)[:2]
    killed = first["Transform"]
    assert killed.state not in ("complete", "cached")  # the kill landed mid-Transform
    assert killed.outputs == {}  # nothing of it was published
    finished_before = {n for n, c in first.items() if c.state == "complete"} - {
        "latest_blessed_model_resolver"
    }
    assert {"ImportExampleGen", "Quarantine", "StatisticsGen"} <= finished_before
    assert all(second[n].state == "cached" for n in finished_before)  # reused, not re-run
    redone = second["Transform"]
    assert redone.state == "complete" and redone.execution_id != killed.execution_id
    assert second["Trainer"].inputs["transform_graph"][0].uri == redone.uri("transform_graph")
    assert not redone.uri("transform_graph").endswith(f"/{killed.execution_id}")


def test_a_run_killed_in_training_resumes_from_its_checkpoint(chain, resumed):
    killed, current = _run_components(chain.root)[1:3]
    assert killed["Trainer"].state not in ("complete", "cached")
    for node_id in ("ImportExampleGen", "Quarantine", "StatisticsGen", "Transform"):
        assert current[node_id].state == "cached", node_id
    trainer = current["Trainer"]
    assert trainer.state == "complete"
    model_run = trainer.uri("model_run")
    # TensorBoard logs each epoch at its 0-based index: only the second was trained here.
    epochs = _event_steps(os.path.join(model_run, "train"))["epoch_loss"]
    assert epochs == [1]
    first_step_after_resume = epochs[0] * STEPS_PER_EPOCH
    assert first_step_after_resume > 0
    # Validation is logged at the optimizer's iteration count, restored from the checkpoint.
    validation = _event_steps(os.path.join(model_run, "validation"))
    assert validation["evaluation_loss_vs_iterations"] == [TRAIN_STEPS]
    leftovers = glob.glob(os.path.join(chain.root, configs.CHECKPOINT_DIR_NAME, "**", "*.index"))
    assert leftovers == [], "Keras deletes the backup once training completes"
    assert current["Evaluator"].inputs["model"][0].uri == trainer.uri("model")
    assert "Baseline: none yet, so only the value threshold applies." in resumed.stdout
    assert "Blessed: yes" in resumed.stdout
    (version,) = _versions(chain.serving_dir)
    assert runs.pushed_destination(current["Pusher"]) == os.path.join(chain.serving_dir, version)


def test_every_bad_record_is_quarantined_and_never_trained_on(chain, resumed):
    assert "Quarantine: 7 record(s) rejected" in resumed.stdout
    quarantine = _run_components(chain.root)[2]["Quarantine"]
    with open(os.path.join(quarantine.uri("report"), "report.json")) as f:
        report = json.load(f)
    assert report["splits"]["train"]["reasons"] == {
        image_check.UNDECODABLE: 2,  # the undecodable bytes and the truncated JPEG
        image_check.EMPTY_IMAGE: 1,
        image_check.TOO_LARGE: 1,
        image_check.LABEL_OUT_OF_RANGE: 1,
        image_check.MISSING_IMAGE: 1,
    }
    assert report["splits"]["validation"]["reasons"] == {"class absent from training": 1}
    # What the Trainer read: the transformed examples, in the codec their artifact records.
    (examples,) = _run_components(chain.root)[2]["Trainer"].inputs["examples"]
    codec = compression.compression_type_of(examples)
    assert codec == ""  # UncompressedTransform's
    assert _count(os.path.join(examples.uri, "Split-train", "*"), codec) == SAMPLE_TRAIN
    assert _count(os.path.join(examples.uri, "Split-validation", "*"), codec) == SAMPLE_VALIDATION


def test_a_model_that_fails_the_gate_leaves_the_served_model_intact(
    chain, killed_in_evaluator, rejected
):
    killed, current = _run_components(chain.root)[3:5]
    assert killed["Evaluator"].state not in ("complete", "cached")  # killed mid-Evaluator
    assert killed["Evaluator"].outputs == {}
    evaluator = current["Evaluator"]
    assert evaluator.state == "complete"
    assert evaluator.execution_id != killed["Evaluator"].execution_id
    assert current["Trainer"].state == "cached"  # the one-step model of run 4
    evaluation = runs.load_evaluation(evaluator)
    assert evaluation.has_baseline and not evaluation.blessed and evaluation.failures
    assert "Baseline (last blessed model)" in rejected.stdout
    assert "Blessed: NO, nothing pushed." in rejected.stdout
    assert runs.pushed_destination(current["Pusher"]) is None
    assert (
        file_digests(chain.serving_dir) == killed_in_evaluator
    )  # every byte of the old model kept
    (version,) = _versions(chain.serving_dir)
    model = tf.saved_model.load(os.path.join(chain.serving_dir, version))
    first = next(iter(tf.data.TFRecordDataset(records.split_files(chain.data_root, "validation"))))
    probabilities = model.signatures["serving_default"](examples=tf.stack([first]))["probabilities"]
    assert abs(float(tf.reduce_sum(probabilities)) - 1.0) < 1e-4


def test_the_metadata_store_survives_every_kill(chain, rejected):
    with sqlite3.connect(runs.metadata_path(chain.root)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert len(_run_components(chain.root)) == 5


# --- security ------------------------------------------------------------------------------


def test_no_credential_reaches_the_logs_or_the_pipeline_root(chain, resumed):
    searched = [resumed.stdout.encode(), resumed.stderr.encode()]
    for parent, _, files in os.walk(chain.root):
        for name in files:
            path = os.path.join(parent, name)
            if os.path.getsize(path) < 16 << 20:  # model weights cannot hold env text
                with open(path, "rb") as f:
                    searched.append(f.read())
    assert len(searched) > 20
    for secret in SECRETS.values():
        assert not any(secret.encode() in blob for blob in searched), secret


def test_files_written_are_not_world_writable(chain, resumed):
    paths = [chain.root]
    for parent, directories, files in os.walk(chain.root):
        paths += [os.path.join(parent, name) for name in directories + files]
    assert any(p.endswith("saved_model.pb") for p in paths)
    loose = [p for p in paths if os.lstat(p).st_mode & stat.S_IWOTH]
    assert loose == []


def test_the_compiled_kubeflow_spec_holds_no_credentials(tmp_path):
    key = tmp_path / "service-account.json"
    key.write_text(json.dumps({"private_key": "sentinel-private-key-2c26b46b68ffc68f"}))
    output = tmp_path / "pipeline.json"
    result = run_cli(
        "compile-kubeflow",
        "--image",
        "registry.example/alexnet-tfx:test",
        "--pipeline-root",
        "gs://bucket/root",
        "--data-root",
        "gs://bucket/data",
        "--output",
        str(output),
        env={**SECRETS, "GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    spec = output.read_text()
    for text in [*SECRETS.values(), "sentinel-private-key", str(key)]:
        assert text not in spec and text not in result.stdout + result.stderr


_UNSAFE_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pickle", "Unpickler"),
    ("dill", "load"),
    ("dill", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("marshal", "load"),
    ("marshal", "loads"),
    ("shelve", "open"),
    ("yaml", "unsafe_load"),
    ("joblib", "load"),
    ("os", "system"),
    ("os", "popen"),
}


def _unsafe_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in ("eval", "exec", "__import__"):
            found.append(function.id)
        if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
            if (function.value.id, function.attr) in _UNSAFE_CALLS:
                found.append(f"{function.value.id}.{function.attr}")
            if (function.value.id, function.attr) == ("yaml", "load"):
                found.append("yaml.load")
        for keyword in node.keywords:
            risky = keyword.arg in ("allow_pickle", "shell")
            if risky and isinstance(keyword.value, ast.Constant) and keyword.value.value:
                found.append(f"{keyword.arg}=True")
    return found


def test_no_code_unpickles_or_executes_what_it_reads():
    sources = [
        path
        for path in glob.glob(os.path.join(REPO, "**", "*.py"), recursive=True)
        if not os.path.relpath(path, REPO).startswith((".venv", "build", "dist"))
    ]
    assert any(p.endswith(os.path.join("pipeline", "local_runner.py")) for p in sources)
    offences = {}
    for path in sources:
        with open(path) as f:
            calls = _unsafe_calls(ast.parse(f.read(), path))
        if calls:
            offences[os.path.relpath(path, REPO)] = calls
    assert offences == {}
    assert _unsafe_calls(ast.parse("pickle.loads(x); np.load(f, allow_pickle=True)")) == [
        "pickle.loads",
        "allow_pickle=True",
    ]


# --- checks before anything runs -----------------------------------------------------------


def _refused(result: CliResult, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr[-3000:]


def test_a_corrupt_record_is_named_by_file_and_index(tmp_path):
    data_root = _sample_copy(tmp_path / "data")
    path = records.split_files(data_root, "train")[0]
    offset, length = _record_offsets(path)[5]
    with open(path, "r+b") as f:  # flip one byte inside record 5's data: its CRC fails
        f.seek(offset + 12 + length // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    root = tmp_path / "root"
    result = run_cli("run", "--data-root", data_root, "--pipeline-root", str(root))
    _refused(result, f"{path}: record 5 (0-based) is unreadable", "corrupted record")
    assert not os.path.exists(runs.metadata_path(str(root)))  # nothing ran


def test_a_truncated_shard_is_named_by_file_and_index(tmp_path):
    data_root = _sample_copy(tmp_path / "data")
    path = records.split_files(data_root, "validation")[0]
    offset, length = _record_offsets(path)[9]
    with open(path, "r+b") as f:  # an interrupted copy: the file ends inside record 9
        f.truncate(offset + 12 + length // 2)
    result = run_cli("run", "--data-root", data_root, "--pipeline-root", str(tmp_path / "root"))
    _refused(result, f"{path}: record 9 (0-based) is unreadable", "truncated record")


def test_a_file_that_is_no_tfrecord_is_named(tmp_path):
    data_root = _sample_copy(tmp_path / "data")
    path = os.path.join(data_root, "train-00002-of-00002")
    Image.new("RGB", (8, 8)).save(path, "JPEG")  # a stray image matching the pattern
    result = run_cli("run", "--data-root", data_root, "--pipeline-root", str(tmp_path / "root"))
    _refused(result, f"{path}: record 0 (0-based) is unreadable")


@pytest.mark.parametrize("present", [(), ("train",)])
def test_a_pattern_matching_no_file_is_named(tmp_path, present):
    data_root = tmp_path / "data"
    os.makedirs(data_root)
    for split in present:
        for path in records.split_files(configs.SAMPLE_DATA_ROOT, split):
            shutil.copy(path, data_root)
    missing = next(s for s in records.SPLITS if s not in present)
    result = run_cli("run", "--data-root", str(data_root), "--pipeline-root", str(tmp_path / "r"))
    _refused(
        result, f"no {missing} shards match {records.split_pattern(str(data_root), missing)!r}"
    )


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--train-steps", "-5", "argument --train-steps: must be >= 0, got -5"),
        ("--eval-steps", "0", "argument --eval-steps: must be a positive integer, got 0"),
        ("--batch-size", "many", "argument --batch-size: invalid _positive_int value: 'many'"),
        ("--model", "vgg16", "argument --model: invalid choice: 'vgg16'"),
        ("--record-format", "csv", "argument --record-format: invalid choice: 'csv'"),
    ],
)
def test_bad_flag_values_are_refused(tmp_path, flag, value, message):
    result = run_cli("run", "--pipeline-root", str(tmp_path / "root"), flag, value)
    _refused(result, message)
    assert not (tmp_path / "root").exists()


def test_a_pipeline_root_that_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "a_file").write_text("")
    root = tmp_path / "a_file" / "root"
    result = run_cli("run", "--pipeline-root", str(root))
    _refused(result, f"--pipeline-root {root}: cannot create it (Not a directory)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_pipeline_root_is_refused(tmp_path):
    root = tmp_path / "root"
    os.makedirs(root)
    os.chmod(root, 0o555)
    try:
        result = run_cli("run", "--pipeline-root", str(root))
    finally:
        os.chmod(root, 0o755)
    _refused(result, f"--pipeline-root {root}: not writable")


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
    _refused(
        CliResult(result.returncode, result.stdout, result.stderr),
        f"--pipeline-root {root}: its filesystem is (nearly) full",
    )
