"""``alexnet-tfx predict``: what a pushed model sees in your own photos."""

from __future__ import annotations

import json
import sys

from pipeline import configs
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="classify image files with the latest pushed model",
        description="Classify JPEG/PNG/GIF/BMP files (and every image under a directory) "
        "through the pushed SavedModel's serving signature, the one a model server calls: "
        "the top-5 classes with synsets and probabilities per image. A file that is not an "
        "image, or is corrupt, gets one error line (exit status 1); the others are classified.",
    )
    p.add_argument("paths", nargs="+", metavar="IMAGE_OR_DIR", help="image files, directories")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--model", default=None, help="a SavedModel, or a push directory (its newest version)"
    )
    where.add_argument(
        "--pipeline-root",
        default=None,
        help=f"the newest model pushed by this root's runs (default: {configs.PIPELINE_ROOT})",
    )
    p.add_argument(
        "--ten-crop",
        action="store_true",
        help="the paper's ten-crop test (serving_ten_crop: a model that stored the 256 region)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument("--batch-size", type=flags.positive_int, default=32, help="default: 32")
    flags.add_verbose_flag(p)
    p.set_defaults(handler=main)


def main(args) -> int:
    from pipeline import predict

    files = predict.image_files(args.paths)
    model = predict.find_model(args.model, args.pipeline_root)
    signature = predict.load_signature(model, args.ten_crop)
    long_list = len(files) > args.batch_size

    def progress(done: int, total: int) -> None:
        print(f"[{done}/{total}] classified", file=sys.stderr, flush=True)

    failed = 0
    for prediction in predict.classify(
        signature, files, args.batch_size, progress if long_list else None
    ):
        if prediction.error:
            failed += 1
            print(f"alexnet-tfx predict: {prediction.path}: {prediction.error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": prediction.path, "error": prediction.error}))
            continue
        if args.json:
            top = [
                {
                    "synset": g.synset,
                    "name": g.name,
                    "class_index": g.class_index,
                    "probability": g.probability,
                }
                for g in prediction.top
            ]
            print(json.dumps({"path": prediction.path, "top5": top}), flush=True)
        else:
            print(prediction.path)
            for guess in prediction.top:
                print(f"  {guess.probability:6.1%}  {guess.synset}  {guess.name}")
    return 1 if failed else 0
