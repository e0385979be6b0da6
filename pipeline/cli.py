"""``alexnet-tfx``: the command line. Flags are declared here, the work is done elsewhere.

Each subcommand's module is imported only when that subcommand runs, so ``--help`` and flag
errors answer at once instead of after TensorFlow's import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from models import catalog
from pipeline import configs


class CliError(Exception):
    """A user error: printed as one line, exit status 2, no traceback."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _add_training_flags(p) -> None:
    """Model, training and gate flags: the same for every orchestrator."""
    p.add_argument("--model", choices=sorted(catalog.MODELS), default=configs.MODEL)
    p.add_argument("--train-steps", type=_non_negative_int, default=configs.TRAIN_STEPS)
    p.add_argument("--eval-steps", type=_positive_int, default=configs.EVAL_STEPS)
    p.add_argument("--batch-size", type=_positive_int, default=configs.BATCH_SIZE)
    p.add_argument("--learning-rate", type=float, default=configs.LEARNING_RATE)
    p.add_argument(
        "--initialization",
        choices=("paper", "glorot"),
        default=configs.INITIALIZATION,
        help="AlexNet's initial weights: the paper's N(0, 0.01) with biases of 1 (needs many "
        "epochs; use it for ImageNet) or Glorot-uniform with zero biases (the default: learns "
        "the bundled sample in minutes)",
    )
    p.add_argument(
        "--store-full-region",
        action="store_true",
        help="store the 256x256 center region; the Trainer then takes random crops of it",
    )
    p.add_argument("--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"), default=None)
    p.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    p.add_argument(
        "--min-top1",
        type=float,
        default=configs.MIN_TOP1_ACCURACY,
        help="value threshold: the lowest top-1 accuracy a model may have to be blessed",
    )
    p.add_argument(
        "--max-top1-drop",
        type=float,
        default=configs.MAX_TOP1_DROP,
        help="change threshold: how much top-1 may fall below the last blessed model",
    )
    p.add_argument("--no-cache", action="store_true", help="re-execute every component")


def trainer_config(args) -> dict:
    """The ``models.trainer.TrainerConfig`` overrides that the training flags set."""
    config = {"batch_size": args.batch_size, "learning_rate": args.learning_rate, "xla": args.xla}
    if args.mixed_precision:
        config["mixed_precision"] = args.mixed_precision
    if args.model != "cifar10":  # the CIFAR-10 net has one initialisation of its own
        config["initialization"] = args.initialization
    return config


def _add_run_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the whole pipeline with the local orchestrator",
        description="Run ingest -> validate -> Transform -> train -> evaluate -> push locally "
        "(LocalDagRunner, SQLite ML Metadata, Beam DirectRunner).",
    )
    p.add_argument(
        "--data-root",
        default=configs.SAMPLE_DATA_ROOT,
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
        choices=("auto", "build_imagenet", "tfds"),
        default="auto",
        help="record format of --data-root (default: detected from the first record)",
    )
    p.add_argument("--pipeline-root", default=configs.PIPELINE_ROOT, help="artifacts + metadata")
    p.add_argument(
        "--serving-dir",
        default=None,
        help="where blessed models are pushed " "(default: PIPELINE_ROOT/serving_model)",
    )
    _add_training_flags(p)
    p.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline argument, e.g. --beam-arg=--direct_num_workers=2 (repeatable)",
    )
    p.set_defaults(handler="pipeline.local_runner:main")


def _add_convert_parser(subparsers) -> None:
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
    p.add_argument("--train-shards", type=_positive_int, default=1024, help="default: 1024")
    p.add_argument("--validation-shards", type=_positive_int, default=128, help="default: 128")
    p.add_argument(
        "beam_args",
        nargs="*",
        metavar="BEAM_ARG",
        help="e.g. --runner=DataflowRunner --setup_file=./setup.py",
    )
    p.set_defaults(handler="data.convert:main")


def _add_compile_kubeflow_parser(subparsers) -> None:
    from data import records
    from pipeline import kubeflow_runner

    p = subparsers.add_parser(
        "compile-kubeflow",
        help="compile the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines",
        description="Compile the pipeline to a KFP v2 PipelineJob JSON (offline, deterministic): "
        "every step in --image, the Trainer on --gpus, Beam steps on --beam-runner. Submit it "
        "with 'alexnet-tfx submit'.",
    )
    p.add_argument("--output", default="pipeline.json", help="the JSON to write (pipeline.json)")
    p.add_argument("--image", required=True, help="the pipeline image built from the Dockerfile")
    p.add_argument("--pipeline-root", required=True, help="gs://... for artifacts (and metadata)")
    p.add_argument(
        "--data-root",
        required=True,
        help="gs://... directory of train-*/validation-* TFRecord shards; a runtime parameter "
        "(submit --param data_root=... runs the same spec on other data)",
    )
    p.add_argument(
        "--record-format",
        choices=sorted(records.FORMATS),
        default=records.BUILD_IMAGENET.name,
        help="record format of --data-root (compilation is offline: it cannot look)",
    )
    p.add_argument(
        "--serving-dir", default=None, help="gs://... (default: PIPELINE_ROOT/serving_model)"
    )
    p.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
    p.add_argument("--gpus", type=_positive_int, default=None, help="GPUs for the Trainer")
    p.add_argument(
        "--gpu-type",
        default=None,
        help="accelerator: NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ... (Vertex AI) or "
        "nvidia.com/gpu (Kubeflow Pipelines); alone, it means one GPU",
    )
    p.add_argument("--trainer-cpus", type=float, default=8.0)
    p.add_argument("--trainer-memory-gb", type=float, default=32.0)
    p.add_argument(
        "--beam-runner",
        choices=kubeflow_runner.BEAM_RUNNERS,
        default="DirectRunner",
        help="Beam runner of ImportExampleGen, Quarantine, StatisticsGen, Transform, Evaluator "
        "(DirectRunner: multi-processing inside each step's pod)",
    )
    p.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline option, e.g. --beam-arg=--project=P (repeatable)",
    )
    p.add_argument("--beam-cpus", type=float, default=8.0, help="CPUs of each Beam step's pod")
    p.add_argument("--beam-memory-gb", type=float, default=32.0)
    _add_training_flags(p)
    p.set_defaults(handler="pipeline.kubeflow_runner:main")


def _add_submit_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "submit",
        help="run a compiled pipeline on Kubeflow Pipelines or Vertex AI Pipelines",
        description="Start a run of the PipelineJob JSON that compile-kubeflow wrote.",
    )
    p.add_argument("--pipeline", default="pipeline.json", help="the compiled JSON")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="Kubeflow Pipelines API endpoint, e.g. http://localhost:8080")
    where.add_argument("--vertex", action="store_true", help="Vertex AI Pipelines")
    p.add_argument("--project", help="Google Cloud project (--vertex)")
    p.add_argument("--region", help="Google Cloud region, e.g. us-central1 (--vertex)")
    p.add_argument("--run-name", default=None, help="default: PIPELINE_NAME-YYYYmmdd-HHMMSS")
    p.add_argument("--experiment", default=None)
    p.add_argument("--namespace", default=None, help="Kubeflow profile namespace (--host)")
    p.add_argument("--service-account", default=None)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a runtime parameter, e.g. --param data_root=gs://... (repeatable)",
    )
    p.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a Vertex AI label"
    )
    p.add_argument("--no-cache", action="store_true", help="re-execute every step of this run")
    p.set_defaults(handler="pipeline.kubeflow_runner:submit")


def _add_report_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write an HTML report of a run: verdict, metrics, per-class plots, history",
        description="Write one self-contained HTML file (plots embedded as PNG) showing how a "
        "run's model did and why it was or was not pushed, read from ML Metadata.",
    )
    p.add_argument(
        "--pipeline-root",
        default=configs.PIPELINE_ROOT,
        help="where the pipeline ran (default: %(default)s, where 'run' writes)",
    )
    p.add_argument("--output", default="report.html", help="the HTML to write (report.html)")
    p.add_argument("--run-id", default=None, help="which run (default: the latest)")
    p.set_defaults(handler="pipeline.report:main")


def _add_bench_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure throughput, memory and sizes against same-run baselines",
        description="Benchmarks on generated ImageNet-like images (made once from the bundled "
        "sample's photographs, under --work-dir). Each prints its figures as ratios to a "
        "baseline measured in the same run, then one JSON line. See docs/benchmarks.md.",
    )
    benches = p.add_subparsers(dest="bench", metavar="BENCH", required=True)

    def bench(name: str, help_text: str, images: int | None, module: str | None = None):
        b = benches.add_parser(name, help=help_text, description=help_text)
        if images:
            b.add_argument(
                "--images", type=_positive_int, default=images, help=f"default: {images}"
            )
        b.add_argument(
            "--work-dir",
            default=None,
            help="generated images and pipeline roots (default: $TMPDIR/alexnet-tfx-bench)",
        )
        b.set_defaults(handler=f"bench.{module or name}:main")
        return b

    bench(
        "transform",
        "Transform images/s / single-thread decode limit (marginal, N/10 -> N images); "
        "peak RSS at N/10 and N",
        10000,
    )
    b = bench(
        "input",
        "Trainer input pipeline images/s per core / reading the same GZIP records",
        1000,
        module="trainer_input",
    )
    b.add_argument("--batch-size", type=_positive_int, default=128, help="the paper's 128")
    b.add_argument("--batches", type=_positive_int, default=40, help="batches timed")
    b = bench(
        "overhead",
        "training step time with the real input / with the same batches in memory; on a GPU, "
        "add --mixed-precision and --xla",
        1000,
    )
    b.add_argument("--model", choices=sorted(catalog.MODELS), default=configs.MODEL)
    b.add_argument("--batch-size", type=_positive_int, default=128, help="the paper's 128")
    b.add_argument("--steps", type=_positive_int, default=10, help="steps timed per input")
    b.add_argument("--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"))
    b.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    b = bench(
        "e2e",
        "'alexnet-tfx run' (the bundled sample) in a fresh pipeline root: wall time, "
        "per-component durations from ML Metadata, peak RSS",
        None,
    )
    b.add_argument(
        "run_args",
        nargs="*",
        metavar="RUN_ARG",
        help="after '--': flags for 'alexnet-tfx run' (default: none, as 'make run')",
    )
    bench(
        "sizes",
        "transformed bytes per image / input JPEG bytes; SavedModel bytes / float32 weights",
        1000,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alexnet-tfx",
        description="Train AlexNet (Krizhevsky et al., 2012) on ImageNet with TFX.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run_parser(subparsers)
    _add_compile_kubeflow_parser(subparsers)
    _add_submit_parser(subparsers)
    _add_convert_parser(subparsers)
    _add_report_parser(subparsers)
    _add_bench_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, function_name = args.handler.split(":")
    handler = getattr(importlib.import_module(module_name), function_name)
    try:
        return handler(args) or 0
    except CliError as error:
        print(f"alexnet-tfx {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Handlers raise ``pipeline.cli.CliError``; run that module's main, not this __main__ copy,
    # so ``python -m pipeline.cli`` catches it too.
    from pipeline.cli import main as _main

    sys.exit(_main())
