"""``bench input``: images/s per core of the Trainer's real training input pipeline.

The pipeline is ``models.input_pipeline.make_dataset`` on the real Transform's output
(GZIP TFRecords of serialized uint8 crops), with the Trainer's defaults: shuffle, parse, decode,
random flip, PCA lighting, batches of ``--batch-size``; no model. "Per core" is measured two
ways: the pipeline confined to one thread (tf.data's private thread pool of size 1), and the
default pipeline (all cores, AUTOTUNE) in images per CPU-second. The baseline, measured in the
same run, is the floor under any input pipeline on these files: reading and decompressing the
same records, single-threaded, with nothing else done.
"""

from __future__ import annotations

import glob
import os
import time

from bench import images, output, pipeline_run
from bench.transform import Rate
from pipeline import configs


def _single_thread(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def time_batches(dataset, batches: int, warm_up: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to pull ``batches`` batches after
    ``warm_up`` (which fill the shuffle buffer and trace the functions)."""
    iterator = iter(dataset)
    for _ in range(warm_up):
        next(iterator)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    return time.perf_counter() - start, time.process_time() - start_cpu


def training_dataset(transform, batch_size: int, split: str = "train"):
    """The Trainer's training dataset over the Transform's ``split``, as ``run_fn`` builds it."""
    import tensorflow_transform as tft

    from models import trainer
    from models.config import TrainerConfig, TransformConfig

    feature_spec = tft.TFTransformOutput(
        transform.uri("transform_graph")
    ).transformed_feature_spec()
    files = glob.glob(os.path.join(transform.uri("transformed_examples"), f"Split-{split}", "*"))
    config = TrainerConfig(batch_size=batch_size)
    transform_config = TransformConfig.for_model(config.model)
    dataset = trainer.make_dataset(transform_config, config, files, feature_spec, training=True)
    return dataset, files


def main(args) -> int:
    import tensorflow as tf

    work_dir = args.work_dir or output.DEFAULT_WORK_DIR
    data_root, _ = images.ensure_dataset(work_dir, args.images)
    transform = pipeline_run.outputs(work_dir, data_root, configs.TRANSFORM)
    dataset, files = training_dataset(transform, args.batch_size)
    warm_up = 1024 // args.batch_size + 2  # the Trainer's shuffle buffer, then two batches
    n = args.batches * args.batch_size

    read = tf.data.TFRecordDataset(files, compression_type="GZIP").repeat().batch(args.batch_size)
    floor = Rate(n, *time_batches(_single_thread(read), args.batches, 2))
    one = Rate(n, *time_batches(_single_thread(dataset), args.batches, warm_up))
    every = Rate(n, *time_batches(dataset, args.batches, warm_up))
    lines = [
        f"read + decompress only (1 thread): {floor.per_second:.0f} images/s, "
        f"{floor.per_cpu_second:.0f} images per CPU-second",
        f"input pipeline, 1 thread: {one.per_second:.0f} images/s, "
        f"{one.per_cpu_second:.0f} images per CPU-second",
        f"input pipeline, all {os.cpu_count()} cores (AUTOTUNE): {every.per_second:.0f} "
        f"images/s, {every.per_cpu_second:.0f} images per CPU-second",
        f"per core / read floor: {one.per_cpu_second / floor.per_cpu_second:.3f} (1 thread), "
        f"{every.per_cpu_second / floor.per_cpu_second:.3f} (all cores); "
        f"target >= 2000 images/s per core",
    ]
    output.report(
        "input",
        lines,
        {
            "images": args.images,
            "batch_size": args.batch_size,
            "ratio": one.per_cpu_second / floor.per_cpu_second,
            "images_per_s_per_core": one.per_cpu_second,
            "images_per_s_one_thread": one.per_second,
            "images_per_s_all_cores": every.per_second,
            "images_per_cpu_s_all_cores": every.per_cpu_second,
            "read_floor_images_per_cpu_s": floor.per_cpu_second,
        },
    )
    return 0
