"""``alexnet-tfx run``: the pipeline on this machine (LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner), with one progress line per component and a summary at the end.

Flags are checked before anything runs, so a wrong flag costs a one-line error, not a
half-built pipeline root.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from data import records
from pipeline import configs, runs
from pipeline.cli import CliError


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


def _writable_dir(path: str, flag: str) -> str:
    path = os.path.abspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise CliError(f"{flag} {path}: cannot create it ({error.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f"{flag} {path}: not writable")
    return path


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
    from tfx import v1 as tfx

    absl_logger = logging.getLogger("absl")
    handler = _Progress()
    previous_level = absl_logger.level
    absl_logger.setLevel(logging.INFO)
    absl_logger.addHandler(handler)
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    finally:
        absl_logger.removeHandler(handler)
        absl_logger.setLevel(previous_level)


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
        trainer_config={"batch_size": args.batch_size, "learning_rate": args.learning_rate},
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
