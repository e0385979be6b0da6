"""``alexnet-tfx convert-imagenet``: the raw ILSVRC-2012 tree to TFRecord shards, with Beam."""

from __future__ import annotations

import logging
import os
import sys

from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-imagenet",
        help="convert the raw ILSVRC-2012 JPEG tree to TFRecord shards (a Beam pipeline)",
        description="Convert train/<synset>/*.JPEG and val/ to build_imagenet_data.py TFRecord "
        "shards, with a manifest of counts and rejected files. Beam pipeline arguments go after "
        "'--' (default: the DirectRunner).",
    )
    p.add_argument("--train-dir", required=True, help="train/ holding one folder per synset")
    p.add_argument(
        "--validation-dir",
        required=True,
        help="val/ holding one folder per synset, or the images directly (then give "
        "--validation-labels)",
    )
    p.add_argument(
        "--validation-labels",
        default=None,
        metavar="FILE",
        help="imagenet_2012_validation_synset_labels.txt: one synset per line, line N labels "
        "ILSVRC2012_val_<N>.JPEG (for a flat --validation-dir)",
    )
    p.add_argument(
        "--bounding-boxes-dir",
        default=None,
        metavar="DIR",
        help="the unpacked ILSVRC bounding-box XML files (optional)",
    )
    p.add_argument("--output-dir", required=True, help="where the shards and manifest.json go")
    p.add_argument("--train-shards", type=flags.positive_int, default=1024, help="default: 1024")
    p.add_argument("--validation-shards", type=flags.positive_int, default=128, help="default: 128")
    p.add_argument(
        "beam_args",
        nargs="*",
        metavar="BEAM_ARG",
        help="e.g. --runner=DataflowRunner --setup_file=./setup.py",
    )
    flags.add_verbose_flag(p)
    p.set_defaults(handler=main)


def main(args) -> int:
    """Converts, then prints the counts and the throughput."""
    from data import convert, preflight
    from data.errors import UserError

    train, validation = preflight.check_raw_tree(
        args.train_dir, args.validation_dir, args.validation_labels
    )
    # Per-shard progress lines (one every few seconds on ImageNet), without Beam's INFO chatter.
    progress = logging.StreamHandler(sys.stderr)
    progress.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    log = logging.getLogger(convert.__name__)
    log.addHandler(progress)
    log.setLevel(logging.INFO)
    log.propagate = False
    splits = [(train, args.train_shards), (validation, args.validation_shards)]
    result = convert.convert(splits, args.output_dir, args.bounding_boxes_dir, args.beam_args)
    manifest = result.manifest
    converted = 0
    for split, _ in splits:
        counts = manifest["splits"][split.name]
        converted += counts["records"]
        print(
            f"{split.name}: {counts['records']} records in {len(counts['shards'])} shards, "
            f"{len(counts['classes'])} classes, {counts['rejects']} rejected"
        )
    examined = converted + sum(r["split"] != convert.BOUNDING_BOXES for r in manifest["rejects"])
    print(f"{examined} files in {result.seconds:.1f} s ({examined / result.seconds:.1f} images/s)")
    print(", ".join(f"{name}: {count}" for name, count in result.counters.items()))
    manifest_path = os.path.join(args.output_dir, convert.MANIFEST)
    print(f"manifest (counts, shards, rejects with reasons): {manifest_path}")
    empty = [split.name for split, _ in splits if manifest["splits"][split.name]["records"] == 0]
    if empty:
        raise UserError(
            f"no image of {', '.join(empty)} could be converted; the rejects in "
            f"{manifest_path} say why"
        )
    return 0
