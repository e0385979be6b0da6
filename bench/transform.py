"""``bench transform``: the Transform component's throughput and memory, against the decode
limit.

* **Throughput**: images per CPU-second through the real Transform component (ExampleGen ->
  Quarantine -> Transform, one Beam worker, in memory; the process's CPU time, all threads)
  divided by the images per CPU-second of a single-thread tf.data pipeline doing the per-image
  work of Transform's transform pass (decode, central square, resize, crop, raw bytes:
  ``preprocess_image``, ``raw_bytes``) on the same records: the decode limit. Per CPU-second,
  because the component uses both cores of this machine while the limit uses one, and because
  it holds up when others share the machine; the wall-clock ratio is reported too.
  tf.Transform reads the training split twice (analyzers, then transform); the analysis pass
  decodes only the images it samples (``analyzer_sample_one_in``).
* **Marginal rate**: Transform runs on N/10 and on N images; (N - N/10) / (t(N) - t(N/10))
  removes the costs that do not grow with the data (tracing, Beam set-up, the SavedModel).
* **Memory**: peak RSS of a process that executes only the Transform (upstream components are
  cached), at both sizes.

The decode limit is measured before and after the Transform runs and averaged, because other
work on the machine shifts absolute rates; ratios measured in one run are what to compare.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

from bench import images, output, pipeline_run
from pipeline import configs


@dataclasses.dataclass
class Rate:
    images: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.images / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.images / self.cpu_seconds


def decode_limit(data_root: str) -> Rate:
    """Single-thread tf.data over ``data_root``'s records: parse, ``preprocess_image``, raw
    bytes, as Transform's transform pass does for each image."""
    import tensorflow as tf

    from data import records
    from models import preprocessing as pp
    from models.config import TrainerConfig, TransformConfig

    config = TransformConfig.for_model(TrainerConfig.model)
    resize, stored = config.resize_size, config.stored_size
    image_key = records.BUILD_IMAGENET.image_key
    files = [path for split in records.SPLITS for path in records.split_files(data_root, split)]
    spec = {image_key: tf.io.FixedLenFeature([], tf.string)}
    dataset = tf.data.TFRecordDataset(files).map(
        lambda r: pp.raw_bytes(
            pp.preprocess_image(tf.io.parse_single_example(r, spec)[image_key], resize, stored)[
                tf.newaxis
            ]
        )
    )
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    iterator = iter(dataset.with_options(options))
    next(iterator)  # traces the function: not part of the per-image cost
    count, start, start_cpu = 0, time.perf_counter(), time.process_time()
    for _ in iterator:
        count += 1
    return Rate(count, time.perf_counter() - start, time.process_time() - start_cpu)


def run_transform(work_dir: str, data_root: str, num_images: int) -> pipeline_run.PipelineFigures:
    """Transform alone, in a fresh process, after its inputs ran (and are cached)."""
    root = os.path.join(work_dir, f"transform-{num_images}")
    shutil.rmtree(root, ignore_errors=True)
    pipeline_run.run(root, data_root, pipeline_run.TRANSFORM_INPUTS)
    figures = pipeline_run.run(root, data_root, (configs.TRANSFORM,))
    shutil.rmtree(root, ignore_errors=True)
    return figures


def main(args) -> int:
    large = args.images
    small = max(2, large // 10)
    work_dir = args.work_dir or output.DEFAULT_WORK_DIR
    data = {n: images.ensure_dataset(work_dir, n)[0] for n in (small, large)}

    before = decode_limit(data[large])
    runs = {n: run_transform(work_dir, data[n], n) for n in (small, large)}
    after = decode_limit(data[large])
    limit = Rate(
        before.images + after.images,
        before.seconds + after.seconds,
        before.cpu_seconds + after.cpu_seconds,
    )
    rates = {n: Rate(n, r.seconds[configs.TRANSFORM], r.cpu_seconds) for n, r in runs.items()}
    marginal = Rate(
        large - small,
        rates[large].seconds - rates[small].seconds,
        rates[large].cpu_seconds - rates[small].cpu_seconds,
    )
    rss = {n: runs[n].peak_rss_bytes for n in (small, large)}
    lines = [
        f"decode limit (1 thread): {limit.per_second:.1f} images/s "
        f"({before.per_second:.1f} before, {after.per_second:.1f} after the Transform runs), "
        f"{limit.per_cpu_second:.1f} images per CPU-second",
        *(
            f"Transform, {n} images: {rates[n].seconds:.1f} s, {rates[n].per_second:.1f} "
            f"images/s, {rates[n].cpu_seconds:.1f} CPU-s, peak RSS {rss[n] / output.MIB:.0f} MiB "
            f"(imports {runs[n].start_rss_bytes / output.MIB:.0f} MiB)"
            for n in (small, large)
        ),
        f"Transform marginal rate ({small} -> {large} images): {marginal.per_second:.1f} "
        f"images/s, {marginal.per_cpu_second:.1f} images per CPU-second",
        f"ratio to the decode limit per CPU-second: "
        f"{marginal.per_cpu_second / limit.per_cpu_second:.3f} marginal, "
        f"{rates[large].per_cpu_second / limit.per_cpu_second:.3f} at {large} images "
        f"(target >= 0.7); wall clock {marginal.per_second / limit.per_second:.3f} marginal",
        f"peak RSS growth {small} -> {large} images: {rss[large] / rss[small]:.2f}x "
        "(target <= 1.2x, <= 2 GiB)",
    ]
    output.report(
        "transform",
        lines,
        {
            "images": [small, large],
            "ratio": marginal.per_cpu_second / limit.per_cpu_second,
            "ratio_at_n": rates[large].per_cpu_second / limit.per_cpu_second,
            "wall_ratio": marginal.per_second / limit.per_second,
            "wall_ratio_at_n": rates[large].per_second / limit.per_second,
            "images_per_s": rates[large].per_second,
            "marginal_images_per_s": marginal.per_second,
            "marginal_images_per_cpu_s": marginal.per_cpu_second,
            "decode_limit_images_per_s": limit.per_second,
            "decode_limit_images_per_cpu_s": limit.per_cpu_second,
            "peak_rss_mib": [rss[small] / output.MIB, rss[large] / output.MIB],
            "rss_growth": rss[large] / rss[small],
        },
    )
    return 0
