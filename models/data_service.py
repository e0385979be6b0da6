"""tf.data service: the Trainer's training input on other machines' CPUs.

When one machine's cores cannot parse as many images as its GPUs train on, the input pipeline
(``models.input_pipeline.epoch_dataset``: read, shuffle, batch, parse, decode_raw) runs on
tf.data service workers instead, and the Trainer receives finished uint8 batches over gRPC.

* ``serve_dispatcher(port)``: one per training job; it hands out work.
* ``serve_worker(port, dispatcher)``: as many as needed (docs/scaling.md); each reads the
  transformed records itself (they must see the same paths: gs://, or a shared volume).
* ``make_dataset(..., data_service="grpc://DISPATCHER:PORT")`` (``TrainerConfig.data_service``)
  sends the training dataset's graph to the dispatcher and reads its output.

Sharding is dynamic (``ShardingPolicy.DYNAMIC``, i.e. processing mode
``"distributed_epoch"``): the dispatcher hands each worker the next file when it asks, so each
element is produced once per epoch whatever the number of workers, and a slow worker takes
fewer files. The workers run the dataset's graph as TensorFlow ops only; the input pipeline has
no Python function in it (a ``py_function`` could not run there).
"""

from __future__ import annotations

import tensorflow as tf

PROTOCOL = "grpc"


def _address(service: str) -> tuple[str, str]:
    """("grpc", "HOST:PORT") from "grpc://HOST:PORT" (or "HOST:PORT")."""
    protocol, separator, address = service.partition("://")
    if not separator:
        return PROTOCOL, service
    if protocol != PROTOCOL:
        raise ValueError(f"tf.data service address {service!r}: expected grpc://HOST:PORT")
    return protocol, address


def distribute(
    dataset: tf.data.Dataset, service: str, compression: str | None = None
) -> tf.data.Dataset:
    """``dataset`` produced by the service's workers, each element once per iteration.

    ``compression``: None sends the uint8 batches as they are. tf.data's default ("AUTO",
    snappy) shrank real crops to 0.77x but cost the receiving Trainer 0.12-0.18 CPU-ms per
    image to uncompress (and the worker 0.25), against 0.19 for reading and parsing the records
    itself: it would take back most of the CPU the service is there to save.
    """
    return dataset.apply(
        tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=service if "://" in service else f"{PROTOCOL}://{service}",
            compression=compression,
        )
    )


def start_dispatcher(
    port: int = 0, work_dir: str | None = None
) -> tf.data.experimental.service.DispatchServer:
    """A dispatcher listening on ``port`` (0: any free port), started.

    ``work_dir`` (e.g. a gs:// path) makes it fault tolerant: a restarted dispatcher recovers
    its state from there.
    """
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, protocol=PROTOCOL, work_dir=work_dir, fault_tolerant_mode=bool(work_dir)
    )
    return tf.data.experimental.service.DispatchServer(config, start=True)


# A worker learns of a new job's tasks when it heartbeats; TF's default (30 s) left the first
# training batch waiting ~19 s in a test. One small RPC a second per worker costs nothing.
HEARTBEAT_MS = 1000


def start_worker(
    port: int, dispatcher: str, worker_address: str | None = None
) -> tf.data.experimental.service.WorkerServer:
    """A worker on ``port`` (0: any free port) registered with ``dispatcher``
    ("grpc://HOST:PORT" or "HOST:PORT"), started. ``worker_address`` is what the Trainer dials
    ("POD_IP:PORT" on Kubernetes; "%port%" stands for the port bound); default:
    localhost:%port%."""
    _, dispatcher_address = _address(dispatcher)
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher_address,
        worker_address=worker_address or "localhost:%port%",
        port=port,
        protocol=PROTOCOL,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    return tf.data.experimental.service.WorkerServer(config, start=True)


def serve_dispatcher(port: int, work_dir: str | None = None) -> None:
    """``alexnet-tfx data-service dispatcher --port PORT``: serves until killed."""
    start_dispatcher(port, work_dir).join()


def serve_worker(port: int, dispatcher: str, worker_address: str | None = None) -> None:
    """``alexnet-tfx data-service worker --port PORT --dispatcher grpc://HOST:PORT``: serves
    until killed."""
    start_worker(port, dispatcher, worker_address).join()
