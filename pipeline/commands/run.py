"""``alexnet-tfx run``: the whole pipeline with the local orchestrator."""

from __future__ import annotations

from data import bundled, preflight, records
from pipeline import configs
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
    p.set_defaults(handler=main)


def main(args) -> int:
    data = preflight.check_data_root(args.data_root, args.record_format, args.validation_labels)
    source = "--record-format" if args.record_format != "auto" else "the data"
    resolved = flags.resolve_settings(
        args, {"transform.record_format": (data.record_format, source)}
    )
    from pipeline import local_runner

    return local_runner.run(
        data,
        resolved.settings,
        root=args.pipeline_root,
        serving_dir=args.serving_dir,
        beam_pipeline_args=args.beam_arg,
        enable_cache=not args.no_cache,
    )
