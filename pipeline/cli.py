"""``alexnet-tfx``: builds the command line from the subcommands' own modules and dispatches.

The entry point sits above every layer: it names each subcommand's module (the benchmarks'
too) and imports it to declare its flags. Those modules import nothing heavy, so ``--help``
and flag errors answer at once; a handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from data.errors import UserError

COMMANDS = (
    "pipeline.commands.run",
    "pipeline.commands.compile_kubeflow",
    "pipeline.commands.submit",
    "pipeline.commands.kubeflow_local",
    "pipeline.commands.convert_imagenet",
    "pipeline.commands.report",
    "pipeline.commands.predict",
    "pipeline.commands.tensorboard",
    "pipeline.commands.data_service",
    "bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alexnet-tfx",
        description="Train AlexNet (Krizhevsky et al., 2012) on ImageNet with TFX.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline import run_log  # imports no TensorFlow

    # Every command: TensorFlow's, TFX's and Beam's known noise stays off the terminal.
    with run_log.quiet(verbose=getattr(args, "verbose", False)):
        try:
            return args.handler(args) or 0
        except UserError as error:
            print(f"alexnet-tfx {args.command}: error: {error}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
