"""``alexnet-tfx data-service dispatcher|worker``: tf.data service servers for the Trainer.

When one machine's CPUs cannot feed its GPUs, ``run --data-service grpc://HOST:PORT`` (or
``compile-kubeflow --data-service``) sends the Trainer's training input to these servers
(``models.data_service``; docs/scaling.md says how many workers a GPU needs). Each serves
until it is stopped.
"""

from __future__ import annotations

from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "data-service",
        help="serve the Trainer's training input: a tf.data service dispatcher or worker",
        description="Start a tf.data service dispatcher (one per training job) or worker (as "
        "many as the GPUs need); the Trainer reaches them with --data-service.",
    )
    servers = p.add_subparsers(dest="server", metavar="SERVER", required=True)
    dispatcher = servers.add_parser("dispatcher", help="hands the workers their files")
    dispatcher.add_argument("--port", type=flags.non_negative_int, required=True)
    dispatcher.add_argument(
        "--work-dir",
        default=None,
        help="where the dispatcher keeps its state to survive a restart (e.g. gs://...)",
    )
    flags.add_verbose_flag(dispatcher)
    dispatcher.set_defaults(handler=_dispatcher)
    worker = servers.add_parser("worker", help="reads, parses and batches records")
    worker.add_argument("--port", type=flags.non_negative_int, required=True)
    worker.add_argument(
        "--dispatcher", required=True, help="the dispatcher: grpc://HOST:PORT or HOST:PORT"
    )
    worker.add_argument(
        "--worker-address",
        default=None,
        help="the address the Trainer dials for this worker (on Kubernetes POD_IP:PORT; "
        "default localhost:PORT)",
    )
    flags.add_verbose_flag(worker)
    worker.set_defaults(handler=_worker)


def _dispatcher(args) -> int:
    from models import data_service

    print(f"tf.data service dispatcher on port {args.port}", flush=True)
    data_service.serve_dispatcher(args.port, args.work_dir)
    return 0


def _worker(args) -> int:
    from models import data_service

    print(f"tf.data service worker on port {args.port}, dispatcher {args.dispatcher}", flush=True)
    data_service.serve_worker(args.port, args.dispatcher, args.worker_address)
    return 0
