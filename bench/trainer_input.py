"""``bench input``: images per CPU-second of the Trainer's host input, and what the on-device
augmentation would cost on this CPU.

* **Host input**: ``models.trainer.make_dataset`` (``models.input_pipeline``) on the real
  Transform's output, as ``run_fn`` builds it for training: parallel reads, shuffle, batches of
  ``--batch-size``, parse, one ``decode_raw`` -> uint8 images and labels. The codec is the one
  recorded on the Transform's ``transformed_examples`` artifact in ML Metadata
  (``data.compression``), as the Trainer gets it. Measured confined to one thread (tf.data's
  private thread pool of size 1) and with all cores (AUTOTUNE), in images per CPU-second of
  this process, which holds up when others share the machine. Also with ``cache_dataset``
  (decoded images held in RAM), one thread.
* **Read floor**, measured in the same run: reading the same records with the same codec,
  single-threaded, nothing else done. No host input on these files can beat it.
* **Augmentation**: the model's first layer (``models.augmentation.Augment``, training mode:
  crop, mirror, PCA lighting, normalisation) on uint8 batches held in memory, per image, on this
  CPU. On a GPU it runs inside the training step; it is reported apart because it is not host
  work.
"""

from __future__ import annotations

import glob
import os
import time

from bench import images, output, pipeline_run
from bench.transform import Rate
from pipeline import configs

TARGET = 3000  # host images per CPU-second (the target)
AUGMENT_BATCHES = 5  # batches through the augmentation layer, timed


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


def transformed_files(transform, split: str = "train") -> tuple[list[str], str]:
    """(the Transform's ``split`` files, tf.data's compression_type from its artifact)."""
    from data import compression

    (examples,) = transform.outputs["transformed_examples"]
    files = sorted(glob.glob(os.path.join(examples.uri, f"Split-{split}", "*")))
    return files, compression.compression_type_of(examples)


def training_dataset(transform, batch_size: int, cache: bool = False):
    """The Trainer's training dataset over the Transform's train split, as ``run_fn`` builds
    it: (dataset, files, compression_type)."""
    from models import trainer
    from models.config import TrainerConfig, TransformConfig

    files, compression_type = transformed_files(transform)
    config = TrainerConfig(batch_size=batch_size, cache_dataset=cache)
    transform_config = TransformConfig.for_model(config.model)
    dataset = trainer.make_dataset(transform_config, config, files, compression_type, True)
    return dataset, files, compression_type


def augmentation_rate(files, compression_type: str, batch_size: int, batches: int) -> Rate:
    """The Trainer's ``Augment`` layer, training mode, on uint8 batches held in memory."""
    import tensorflow as tf

    from models import augmentation, catalog, trainer
    from models import preprocessing as pp
    from models.config import TrainerConfig, TransformConfig

    config = TrainerConfig(batch_size=batch_size)
    transform_config = TransformConfig.for_model(config.model)
    statistics = trainer.pixel_statistics(files, compression_type)
    layer = augmentation.Augment(
        crop_size=catalog.get(config.model).crop_size,
        rgb_mean=statistics[pp.RGB_MEAN_KEY],
        rgb_std=statistics[pp.RGB_STD_KEY],
        rgb_eigval=statistics[pp.RGB_EIGVAL_KEY],
        rgb_eigvec=statistics[pp.RGB_EIGVEC_KEY],
        lighting_std=config.lighting_std,
    )
    dataset = trainer.make_dataset(transform_config, config, files, compression_type, True)
    held = next(iter(dataset))[0]
    step = tf.function(lambda x: tf.reduce_sum(layer(x, training=True)))
    step(held).numpy()  # traces
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        step(held).numpy()
    return Rate(batches * batch_size, time.perf_counter() - start, time.process_time() - start_cpu)


def main(args) -> int:
    import tensorflow as tf

    from models import input_pipeline

    work_dir = args.work_dir or output.DEFAULT_WORK_DIR
    data_root, _ = images.ensure_dataset(work_dir, args.images)
    transform = pipeline_run.outputs(work_dir, data_root, configs.TRANSFORM)
    dataset, files, compression_type = training_dataset(transform, args.batch_size)
    warm_up = 1024 // args.batch_size + 2  # the Trainer's shuffle buffer, then two batches
    n = args.batches * args.batch_size

    read = (
        tf.data.TFRecordDataset(
            files, compression_type, buffer_size=input_pipeline.READ_BUFFER_BYTES
        )
        .repeat()
        .batch(args.batch_size)
    )
    floor = Rate(n, *time_batches(_single_thread(read), args.batches, 2))
    one = Rate(n, *time_batches(_single_thread(dataset), args.batches, warm_up))
    every = Rate(n, *time_batches(dataset, args.batches, warm_up))
    cached_dataset = training_dataset(transform, args.batch_size, cache=True)[0]
    epoch = -(-len(list(tf.data.TFRecordDataset(files, compression_type))) // args.batch_size)
    cached = Rate(n, *time_batches(_single_thread(cached_dataset), args.batches, warm_up + epoch))
    augment = augmentation_rate(files, compression_type, args.batch_size, AUGMENT_BATCHES)
    codec = compression_type or "uncompressed"
    lines = [
        f"records: {len(files)} files, {codec} (from the Transform artifact)",
        f"read only ({codec}, 1 thread): {floor.per_second:.0f} images/s, "
        f"{floor.per_cpu_second:.0f} images per CPU-second",
        f"host input to uint8 batches, 1 thread: {one.per_second:.0f} images/s, "
        f"{one.per_cpu_second:.0f} images per CPU-second",
        f"host input, all {os.cpu_count()} cores (AUTOTUNE): {every.per_second:.0f} "
        f"images/s, {every.per_cpu_second:.0f} images per CPU-second",
        f"host input from the RAM cache, 1 thread: {cached.per_second:.0f} images/s, "
        f"{cached.per_cpu_second:.0f} images per CPU-second",
        f"host input / read floor per CPU-second: {one.per_cpu_second / floor.per_cpu_second:.3f}"
        f" (1 thread), {every.per_cpu_second / floor.per_cpu_second:.3f} (all cores); "
        f"target >= {TARGET} images per CPU-second",
        f"on-device augmentation (crop, mirror, lighting, normalise) on this CPU: "
        f"{1e3 * augment.cpu_seconds / augment.images:.3f} CPU-ms per image "
        f"({augment.per_cpu_second:.0f} images per CPU-second; on a GPU it is part of the step)",
    ]
    output.report(
        "input",
        lines,
        {
            "images": args.images,
            "batch_size": args.batch_size,
            "compression": codec,
            "host_images_per_cpu_s": one.per_cpu_second,
            "host_images_per_cpu_s_all_cores": every.per_cpu_second,
            "host_images_per_cpu_s_cached": cached.per_cpu_second,
            "ratio": one.per_cpu_second / floor.per_cpu_second,
            "images_per_s_one_thread": one.per_second,
            "images_per_s_all_cores": every.per_second,
            "read_floor_images_per_cpu_s": floor.per_cpu_second,
            "augment_cpu_ms_per_image": 1e3 * augment.cpu_seconds / augment.images,
        },
    )
    return 0
