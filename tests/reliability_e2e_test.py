"""Reliability, for real: runs killed with SIGKILL and re-run, a gate that holds, corrupt and
missing input, a second run on a busy pipeline root, a full disk, credentials and permissions.

One chain of runs shares a pipeline root, each re-run reusing what the last one finished, on a
copy of the bundled sample with one bad record of each kind added:

1. killed in Transform (a second ``run`` tries the same root meanwhile, and refuses);
2. re-run, killed in the Trainer after its first checkpoint;
3. re-run: resumes training from that checkpoint; blessed and pushed. The same command in a
   fresh root, with Beam on two worker processes and never killed, gives the same transformed
   bytes, the same weights bit for bit and the same TFMA metrics: runs are reproducible, Beam's
   workers change nothing, and a resumed training ends where an uninterrupted one does;
4. a model trained one step, killed in the Evaluator;
5. re-run: that model fails the gate; the serving directory keeps model 3.

The push itself (atomic rename, a SIGKILL mid-copy) is tested in components/atomic_pusher.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.util import event_pb2

from components.atomic_pusher.executor_test import file_digests
from data import bundled, compression, image_check, imagenet_classes, records
from data.preflight_test import sample_copy
from models import resume
from models.metric_names import CROSS_ENTROPY
from models.trainer_test import checkpoint_tensors
from pipeline import configs, metadata
from pipeline.evaluation import load_evaluation
from tests.conftest import REPO, CliResult, run_cli

pytestmark = pytest.mark.e2e

# Two epochs: one before the kill, one after the resume; each long enough (a few seconds) for
# the kill to land after the first checkpoint and before the end of training.
STEPS_PER_EPOCH = 4
TRAIN_STEPS = 2 * STEPS_PER_EPOCH
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
            "--steps-per-epoch",
            str(STEPS_PER_EPOCH),
            "--train-steps",
            str(train_steps),
            *gate,
        ]


# Blessing must not hinge on what 8 steps teach AlexNet on the sample: these runs are about
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


def _run_components(root: str) -> list[dict[str, metadata.ComponentRun]]:
    """Every run of the chain, oldest first: node id -> execution."""
    store = metadata.open_store(root)
    return [metadata.component_runs(store, run_id) for run_id in metadata.run_ids(store)]


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


# --- the dirty sample --------------------------------------------------------------------------


def _bad_records() -> dict[str, list[bytes]]:
    """One record per kind of bad input, built from a real photograph of the sample."""
    first = next(iter(tf.data.TFRecordDataset(records.split_files(bundled.SAMPLE_DIR, "train"))))
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
    data_root = sample_copy(directory)
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
            _started(log, chain.root, configs.TRANSFORM, "transform_graph", set()),
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
    saved = os.path.join(chain.root, configs.CHECKPOINT_DIR_NAME, "**", resume.STATE_FILE)
    process = _start(chain.args(gate=NO_VALUE_THRESHOLD), log, env=SECRETS)
    try:
        # models/resume.py writes state.json after the epoch's checkpoint it names.
        ready = lambda: bool(glob.glob(saved, recursive=True))  # noqa: E731
        _wait_for(process, log, ready, "a Trainer checkpoint")
    finally:
        _kill(process)


@pytest.fixture(scope="module")
def resumed(chain, killed_in_trainer) -> CliResult:
    """Run 3, the same command."""
    result = run_cli(*chain.args(gate=NO_VALUE_THRESHOLD), env=SECRETS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


TWO_WORKERS = (
    "--beam-arg=--direct_num_workers=2",
    "--beam-arg=--direct_running_mode=multi_processing",
)


@pytest.fixture(scope="module")
def uninterrupted(chain, resumed) -> dict[str, metadata.ComponentRun]:
    """The same command as run 3 in a root of its own, on two Beam workers, never killed."""
    root = chain.root + "-uninterrupted"
    args = chain.args(gate=NO_VALUE_THRESHOLD)
    args[args.index(chain.root)] = root
    result = run_cli(*args, *TWO_WORKERS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "Trained with seed 0, deterministic:" in result.stdout
    (run,) = _run_components(root)
    return run


@pytest.fixture(scope="module")
def killed_in_evaluator(chain, resumed) -> dict[str, str]:
    """Run 4: a model trained one step (no better than chance), under the default gate, killed
    in the Evaluator. Returns the serving directory's files beforehand."""
    serving_before = file_digests(chain.serving_dir)
    log = os.path.join(chain.log_dir, "4_killed_in_evaluator.log")
    before = set(glob.glob(os.path.join(chain.root, configs.EVALUATOR, "evaluation", "*")))
    process = _start(chain.args(train_steps=1), log, env=SECRETS)
    try:
        ready = _started(log, chain.root, configs.EVALUATOR, "evaluation", before)
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
    killed = first[configs.TRANSFORM]
    assert not killed.succeeded  # the kill landed mid-Transform
    assert killed.outputs == {}  # nothing of it was published
    finished_before = {n for n, c in first.items() if c.state == "complete"} - {
        "latest_blessed_model_resolver"
    }
    assert {configs.EXAMPLE_GEN, configs.QUARANTINE, "StatisticsGen"} <= finished_before
    assert all(second[n].state == "cached" for n in finished_before)  # reused, not re-run
    redone = second[configs.TRANSFORM]
    assert redone.state == "complete" and redone.execution_id != killed.execution_id
    assert second[configs.TRAINER].inputs["transform_graph"][0].uri == redone.uri("transform_graph")
    assert not redone.uri("transform_graph").endswith(f"/{killed.execution_id}")


def test_a_run_killed_in_training_resumes_from_its_checkpoint(chain, resumed):
    killed, current = _run_components(chain.root)[1:3]
    assert not killed[configs.TRAINER].succeeded
    for node_id in (
        configs.EXAMPLE_GEN,
        configs.QUARANTINE,
        configs.STATISTICS_GEN,
        configs.TRANSFORM,
    ):
        assert current[node_id].state == "cached", node_id
    trainer = current[configs.TRAINER]
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
    assert leftovers == [], "the training state is deleted once training completes"
    assert current[configs.EVALUATOR].inputs["model"][0].uri == trainer.uri("model")
    history_file = os.path.join(model_run, "history.json")
    with open(history_file) as f:
        assert json.load(f)["epoch"] == [1, 2]  # the killed run's epoch too
    assert "Baseline: none yet, so only the value threshold applies." in resumed.stdout
    assert "Blessed: yes" in resumed.stdout
    (version,) = _versions(chain.serving_dir)
    pushed = metadata.pushed_destination(current[configs.PUSHER])
    assert pushed == os.path.join(chain.serving_dir, version)


def _files(directory: str) -> dict[str, bytes]:
    result = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(parent, name), "rb") as f:
                result[os.path.relpath(os.path.join(parent, name), directory)] = f.read()
    return result


def _assert_same_metrics(one, other) -> None:
    """Overall and per class: what TFMA counts (top-1, top-5, examples) equal; the mean
    cross-entropy to float32 rounding, since TFMA sums it in float32 over batches whose sizes
    Beam picks by timing (docs/reproducibility.md)."""
    slices = [(one.metrics, other.metrics)]
    assert one.per_class.keys() == other.per_class.keys()
    slices += [(one.per_class[synset], other.per_class[synset]) for synset in one.per_class]
    for mine, theirs in slices:
        assert mine.keys() == theirs.keys()
        for name, value in mine.items():
            if name == CROSS_ENTROPY:
                assert value == pytest.approx(theirs[name], rel=1e-6), name
            else:
                assert value == theirs[name], name


def test_a_fresh_root_on_two_beam_workers_gives_the_same_bytes_weights_and_metrics(
    chain, resumed, uninterrupted
):
    """Transform's layout depends on the records alone (components/uncompressed_transform) and
    training on the seed alone: the same transformed bytes and the same weights, bit for bit,
    although one training was killed and resumed (models/resume.py restores its variables,
    random generators, input position and learning-rate schedule), and the same TFMA metrics."""
    current = _run_components(chain.root)[2]
    transformed = [
        _files(run[configs.TRANSFORM].uri("transformed_examples"))
        for run in (current, uninterrupted)
    ]
    assert transformed[0].keys() == transformed[1].keys() and transformed[0]
    assert [name for name in transformed[0] if transformed[0][name] != transformed[1][name]] == []
    resumed_weights, reference = (
        checkpoint_tensors(os.path.join(run[configs.TRAINER].uri("model"), "Format-Serving"))
        for run in (current, uninterrupted)
    )
    assert resumed_weights.keys() == reference.keys() and len(reference) > 10
    assert [n for n in reference if resumed_weights[n] != reference[n]] == []
    _assert_same_metrics(
        *(load_evaluation(run[configs.EVALUATOR]) for run in (current, uninterrupted))
    )


def test_every_bad_record_is_quarantined_and_never_trained_on(chain, resumed):
    assert "Quarantine: 7 record(s) rejected" in resumed.stdout
    quarantine = _run_components(chain.root)[2][configs.QUARANTINE]
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
    (examples,) = _run_components(chain.root)[2][configs.TRAINER].inputs["examples"]
    codec = compression.compression_type_of(examples)
    assert codec == ""  # UncompressedTransform's
    assert _count(os.path.join(examples.uri, "Split-train", "*"), codec) == SAMPLE_TRAIN
    assert _count(os.path.join(examples.uri, "Split-validation", "*"), codec) == SAMPLE_VALIDATION


def test_a_model_that_fails_the_gate_leaves_the_served_model_intact(
    chain, killed_in_evaluator, rejected
):
    killed, current = _run_components(chain.root)[3:5]
    assert not killed[configs.EVALUATOR].succeeded  # killed mid-Evaluator
    assert killed[configs.EVALUATOR].outputs == {}
    evaluator = current[configs.EVALUATOR]
    assert evaluator.state == "complete"
    assert evaluator.execution_id != killed[configs.EVALUATOR].execution_id
    assert current[configs.TRAINER].state == "cached"  # the one-step model of run 4
    evaluation = load_evaluation(evaluator)
    assert evaluation.has_baseline and not evaluation.blessed and evaluation.failures
    assert "Baseline (last blessed model)" in rejected.stdout
    assert "Blessed: NO, nothing pushed." in rejected.stdout
    assert metadata.pushed_destination(current[configs.PUSHER]) is None
    assert (
        file_digests(chain.serving_dir) == killed_in_evaluator
    )  # every byte of the old model kept
    (version,) = _versions(chain.serving_dir)
    model = tf.saved_model.load(os.path.join(chain.serving_dir, version))
    first = next(iter(tf.data.TFRecordDataset(records.split_files(chain.data_root, "validation"))))
    probabilities = model.signatures["serving_default"](examples=tf.stack([first]))["probabilities"]
    assert abs(float(tf.reduce_sum(probabilities)) - 1.0) < 1e-4


def test_the_metadata_store_survives_every_kill(chain, rejected):
    with sqlite3.connect(metadata.metadata_path(chain.root)) as connection:
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
