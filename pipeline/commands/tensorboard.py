"""``alexnet-tfx tensorboard``: TensorBoard on a run's Trainer logs, found through ML Metadata."""

from __future__ import annotations

import os
import time

from data.errors import UserError
from pipeline import configs
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tensorboard",
        help="serve TensorBoard on a run's Trainer logs, on 127.0.0.1",
        description="Find the Trainer's logs of a run through ML Metadata (its model_run "
        "artifact) and serve TensorBoard on them, on this machine only, until Ctrl-C.",
    )
    p.add_argument(
        "--pipeline-root",
        default=configs.PIPELINE_ROOT,
        help="where the pipeline ran (default: %(default)s, where 'run' writes)",
    )
    p.add_argument(
        "--run-id", default=None, help="which run (default: the latest that trained a model)"
    )
    p.add_argument(
        "--port", type=flags.non_negative_int, default=6006, help="default 6006; 0: any free port"
    )
    flags.add_verbose_flag(p)
    p.set_defaults(handler=main)


def main(args) -> int:
    from tensorboard import program

    from pipeline import metadata

    try:
        store = metadata.open_store(os.path.abspath(args.pipeline_root))
        run_id, logdir = metadata.trainer_logs(store, args.run_id)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from None
    board = program.TensorBoard()
    board.configure(
        argv=[None, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(args.port)]
    )
    try:
        url = board.launch()
    except program.TensorBoardServerException as error:
        raise UserError(f"--port {args.port}: {error.msg}") from None
    print(f"TensorBoard on the Trainer logs of run {run_id} ({logdir})", flush=True)
    print(f"Open {url}  (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
