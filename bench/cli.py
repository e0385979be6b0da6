"""``alexnet-tfx bench``: its flags, beside the benchmarks they run (docs/benchmarks.md)."""

from __future__ import annotations

import importlib

from models import catalog
from pipeline.commands.flags import add_verbose_flag, positive_int


def _handler(module: str):
    """Imports the benchmark only when it runs, so ``--help`` answers at once."""

    def handler(args) -> int:
        return importlib.import_module(f"bench.{module}").main(args)

    return handler


def add_parser(subparsers) -> None:
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
            b.add_argument("--images", type=positive_int, default=images, help=f"default: {images}")
        b.add_argument(
            "--work-dir",
            default=None,
            help="generated images and pipeline roots (default: $TMPDIR/alexnet-tfx-bench)",
        )
        add_verbose_flag(b)
        b.set_defaults(handler=_handler(module or name))
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
    b.add_argument("--batch-size", type=positive_int, default=128, help="the paper's 128")
    b.add_argument("--batches", type=positive_int, default=40, help="batches timed")
    b = bench(
        "overhead",
        "training step time with the real input / with the same batches in memory; on a GPU, "
        "add --mixed-precision and --xla",
        1000,
    )
    b.add_argument("--model", choices=sorted(catalog.MODELS), default="alexnet")
    b.add_argument("--batch-size", type=positive_int, default=128, help="the paper's 128")
    b.add_argument("--steps", type=positive_int, default=10, help="steps timed per input")
    b.add_argument("--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"))
    b.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    b = bench(
        "determinism",
        "training step time with deterministic kernels / without; host input images/s in the "
        "seed's order / in any order",
        1000,
    )
    b.add_argument("--batch-size", type=positive_int, default=32, help="default: 32")
    b.add_argument("--steps", type=positive_int, default=5, help="steps timed per setting")
    b.add_argument("--batches", type=positive_int, default=40, help="input batches timed")
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
