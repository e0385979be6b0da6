"""``alexnet-tfx run``: the pipeline on this machine (LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner), with one progress line per component and a summary at the end.

Flags and input are checked before anything runs, so a wrong flag, a corrupt shard or a full
disk costs a one-line error, not a half-built pipeline root or a Beam stack trace. A lock on the
pipeline root keeps a second run from sharing its SQLite metadata store.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sys
import time

from data import records
from pipeline import cli, configs, runs
from pipeline.cli import CliError

LOCK_FILE = "run.lock"
# Below this a run cannot finish even on the bundled sample (~0.5 GB of artifacts and Trainer
# checkpoints); ImageNet needs far more, but this catches a full disk before anything runs.
MIN_FREE_BYTES = 1 << 30


def is_raw_tree(data_root: str) -> bool:
    """A raw ILSVRC-2012 tree (train/<synset>/*.JPEG) rather than TFRecord shards."""
    return os.path.isdir(os.path.join(data_root, "train"))


def resolve_record_format(data_root: str, requested: str) -> str:
    """The record format of ``data_root``: checked shards, format read off the first record."""
    if not os.path.isdir(data_root):
        raise CliError(f"--data-root {data_root!r} is not a directory")
    if is_raw_tree(data_root):
        if requested not in ("auto", records.BUILD_IMAGENET.name):
            raise CliError(
                f"--record-format {requested}: a raw tree becomes build_imagenet records"
            )
        return records.BUILD_IMAGENET.name
    try:
        files = {split: records.split_files(data_root, split) for split in records.SPLITS}
    except FileNotFoundError as error:
        raise CliError(str(error)) from None
    import tensorflow as tf

    for split_files in files.values():
        for path in split_files:
            verify_shard(path)
    first_file = files[records.TRAIN_SPLIT][0]
    try:
        first = next(iter(tf.data.TFRecordDataset(first_file)), None)
    except tf.errors.OpError as error:
        raise CliError(f"{first_file} is not a readable TFRecord file: {error.message}") from None
    if first is None:
        raise CliError(f"{first_file} holds no records")
    example = tf.train.Example.FromString(first.numpy())
    try:
        detected = records.detect_format(example.features.feature, source=first_file)
    except records.RecordFormatError as error:
        raise CliError(str(error)) from None
    if requested not in ("auto", detected.name):
        raise CliError(
            f"--record-format {requested} but {first_file} is in the {detected.name} format"
        )
    return detected.name


def verify_shard(path: str) -> None:
    """Reads every record of a TFRecord file, checking its CRCs.

    ImportExampleGen would stop at the first bad record with a Beam error that names neither the
    file nor the record. Reading costs about a second per GB.
    """
    import tensorflow as tf

    from data.image_check import tf_error_reason

    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path):
            count += 1
    except tf.errors.OpError as error:
        raise CliError(
            f"{path}: record {count} (0-based) is unreadable ({tf_error_reason(error)}), and so "
            "is every record after it in this file. Replace the file, or move it out of "
            "--data-root."
        ) from None


def _writable_dir(path: str, flag: str) -> str:
    path = os.path.abspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise CliError(f"{flag} {path}: cannot create it ({error.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f"{flag} {path}: not writable")
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise CliError(
            f"{flag} {path}: its filesystem is (nearly) full, {free / 2**20:.1f} MiB free; a run "
            f"needs at least {MIN_FREE_BYTES / 2**30:.0f} GiB"
        )
    return path


@contextlib.contextmanager
def exclusive_run(pipeline_root: str):
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
            raise CliError(
                f"--pipeline-root {pipeline_root} is in use by another alexnet-tfx run "
                f"(pid {holder}), and its SQLite metadata store takes one run at a time: wait "
                "for that run to finish, or use another --pipeline-root"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


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


def run_pipeline(pipeline) -> None:
    """Runs ``pipeline`` with LocalDagRunner, printing progress per component."""
    from absl import logging as absl_logging
    from tfx import v1 as tfx

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
        tfx.orchestration.LocalDagRunner().run(pipeline)
    finally:
        for handler in handlers:
            absl_logger.removeHandler(handler)
        absl_logger.propagate = previous_propagate
        absl_logging.set_verbosity(previous_verbosity)


def format_summary(pipeline_root: str) -> str:
    """The latest run's components, metrics, gate verdict and push, as text."""
    store = runs.open_store(pipeline_root)
    ids = runs.run_ids(store)
    if not ids:
        return "No pipeline run recorded."
    components = runs.component_runs(store, ids[-1])
    lines = [f"Run {ids[-1]} ({len(ids)} run(s) in {pipeline_root})"]
    for node_id, component in components.items():
        lines.append(f"  {node_id:<32} {component.state:<9} {component.seconds:7.1f} s")
    quarantine = components.get("Quarantine")
    if quarantine and quarantine.outputs.get("report"):
        report = quarantine.outputs["report"][0]
        rejected = report.custom_properties["rejected_count"].int_value
        lines.append(f"Quarantine: {rejected} record(s) rejected (report: {report.uri})")
    evaluator = components.get("Evaluator")
    if evaluator is None or evaluator.state not in ("complete", "cached"):
        lines.append("No evaluation: the run stopped before the Evaluator.")
        return "\n".join(lines)
    evaluation = runs.load_evaluation(evaluator)
    m = evaluation.metrics
    lines.append(
        f"Evaluation ({m.get('example_count', 0):.0f} validation examples): "
        f"top-1 {m.get('accuracy', float('nan')):.3f}, "
        f"top-5 {m.get('top5_accuracy', float('nan')):.3f}, loss {m.get('loss', float('nan')):.3f}"
    )
    if evaluation.has_baseline:
        b = evaluation.baseline_metrics
        lines.append(f"Baseline (last blessed model): top-1 {b.get('accuracy', float('nan')):.3f}")
    else:
        lines.append("Baseline: none yet, so only the value threshold applies.")
    if evaluation.blessed:
        destination = runs.pushed_destination(components.get("Pusher"))
        lines.append(f"Blessed: yes. Pushed to {destination}.")
    else:
        lines.append("Blessed: NO, nothing pushed. " + " ".join(evaluation.failures))
    return "\n".join(lines)


def main(args) -> int:
    """The ``run`` subcommand."""
    pipeline_root = _writable_dir(args.pipeline_root, "--pipeline-root")
    serving_dir = _writable_dir(
        args.serving_dir or os.path.join(pipeline_root, configs.SERVING_DIR_NAME), "--serving-dir"
    )
    with exclusive_run(pipeline_root):
        return _run(args, pipeline_root, serving_dir)


def _run(args, pipeline_root: str, serving_dir: str) -> int:
    data_root = os.path.abspath(args.data_root)
    record_format = resolve_record_format(data_root, args.record_format)

    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=pipeline_root,
        data_root=data_root,
        record_format=record_format,
        schema_file=os.path.join(configs.SCHEMA_DIR, f"{record_format}.pbtxt"),
        serving_dir=serving_dir,
        raw_tree=is_raw_tree(data_root),
        validation_labels=args.validation_labels and os.path.abspath(args.validation_labels),
        model=args.model,
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        store_full_region=args.store_full_region,
        trainer_config=cli.trainer_config(args),
        min_top1=args.min_top1,
        max_top1_drop=args.max_top1_drop,
        beam_pipeline_args=args.beam_arg,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            runs.metadata_path(pipeline_root)
        ),
        enable_cache=not args.no_cache,
    )
    layout = "raw ILSVRC-2012 tree" if is_raw_tree(data_root) else f"{record_format} records"
    print(f"Running {configs.PIPELINE_NAME} on {data_root} ({layout})", flush=True)
    try:
        run_pipeline(pipeline)
    except Exception as error:  # the summary says how far it got; the error says why
        print(format_summary(pipeline_root), flush=True)
        print(f"alexnet-tfx run: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(format_summary(pipeline_root), flush=True)
    return 0
