"""``alexnet-tfx run``: the whole pipeline with the local orchestrator."""

from __future__ import annotations

import os

from data import bundled, preflight, records
from pipeline import configs, pipeline_root, run_log
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the whole pipeline with the local orchestrator",
        description="Run ingest -> validate -> Transform -> train -> evaluate -> push locally "
        "(LocalDagRunner, SQLite ML Metadata, Beam DirectRunner).",
    )
    p.add_argument(
        "--data-root",
        default=bundled.SAMPLE_DIR,
        help="directory of train-*/validation-* TFRecord shards, or a raw ILSVRC-2012 tree "
        "with train/<synset>/ and val/ (default: the bundled sample)",
    )
    p.add_argument(
        "--validation-labels",
        default=None,
        help="for a raw tree with a flat val/: imagenet_2012_validation_synset_labels.txt",
    )
    p.add_argument(
        "--record-format",
        choices=("auto", *sorted(records.FORMATS)),
        default="auto",
        help="record format of --data-root (default: detected from the first record)",
    )
    p.add_argument("--pipeline-root", default=configs.PIPELINE_ROOT, help="artifacts + metadata")
    p.add_argument(
        "--serving-dir",
        default=None,
        help="where blessed models are pushed (default: PIPELINE_ROOT/serving_model)",
    )
    flags.add_settings_flags(p)
    p.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline argument, e.g. --beam-arg=--direct_num_workers=2 (repeatable)",
    )
    p.add_argument("--no-cache", action="store_true", help="re-execute every component")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="print every message (TensorFlow's, TFX's, Beam's), not only progress, warnings "
        "and the summary; the log file in the pipeline root has them either way",
    )
    p.set_defaults(handler=main)


def main(args) -> int:
    if args.print_config:  # before anything reads the data or writes the root
        source = "--record-format" if args.record_format != "auto" else "read from the data at run"
        given = {"transform.record_format": (args.record_format, source)}
        return flags.print_config(flags.resolve_settings(args, given))
    root = pipeline_root.writable_dir(args.pipeline_root, "--pipeline-root")
    serving_dir = pipeline_root.writable_dir(
        args.serving_dir or os.path.join(root, configs.SERVING_DIR_NAME), "--serving-dir"
    )
    log = run_log.log_path(root)
    with run_log.logged_run(log, verbose=args.verbose):
        data = preflight.check_data_root(args.data_root, args.record_format, args.validation_labels)
        source = "--record-format" if args.record_format != "auto" else "the data"
        resolved = flags.resolve_settings(
            args, {"transform.record_format": (data.record_format, source)}
        )
        from pipeline import local_runner

        return local_runner.run(
            data,
            resolved.settings,
            root=root,
            serving_dir=serving_dir,
            log=log,
            beam_pipeline_args=args.beam_arg,
            enable_cache=not args.no_cache,
        )
