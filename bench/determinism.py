"""``bench determinism``: what reproducible training costs, as ratios from one run.

* **Training step**: the Trainer's model (``models.trainer.build_model``, compiled as
  ``run_fn`` compiles it) on the same uint8 batches held in memory, traced once with
  TensorFlow's deterministic kernels (``models.trainer.op_determinism``) and once without;
  seconds per step, alternated (off, on, off) so that drift of the machine falls on both.
* **Host input**: ``models.trainer.make_dataset`` on the real Transform's output, all cores,
  with the training order fixed by the seed (``deterministic``) and in whatever order the
  parallel reads deliver; images per second and per CPU-second.

On a GPU the step ratio is what the deterministic cuDNN algorithms cost (docs/reproducibility.md
lists them); on a CPU it is mostly the same kernels.
"""

from __future__ import annotations

from bench import images, output, pipeline_run
from bench.overhead import IN_MEMORY_BATCHES, compiled_model, step_seconds
from bench.trainer_input import time_batches, transformed_files
from bench.transform import Rate
from pipeline import configs


def main(args) -> int:
    import dataclasses

    import tensorflow as tf
    import tf_keras

    from models import input_pipeline, trainer
    from models.config import TrainerConfig, TransformConfig

    work_dir = args.work_dir or output.DEFAULT_WORK_DIR
    data_root, _ = images.ensure_dataset(work_dir, args.images)
    transform = pipeline_run.outputs(work_dir, data_root, configs.TRANSFORM)
    files, compression_type = transformed_files(transform)
    transform_config = TransformConfig.for_model(TrainerConfig.model)
    deterministic = TrainerConfig(batch_size=args.batch_size)
    free = dataclasses.replace(deterministic, deterministic=False)

    def dataset(config):
        return trainer.make_dataset(transform_config, config, files, compression_type, True)

    warm_up = input_pipeline.SHUFFLE_BUFFER // args.batch_size + 2  # a shuffle block, two more
    n = args.batches * args.batch_size
    ordered = Rate(n, *time_batches(dataset(deterministic), args.batches, warm_up))
    unordered = Rate(n, *time_batches(dataset(free), args.batches, warm_up))

    tf_keras.utils.set_random_seed(deterministic.seed)
    held = list(dataset(deterministic).take(IN_MEMORY_BATCHES))
    in_memory = tf.data.Dataset.from_tensor_slices(
        tuple(tf.stack([batch[i] for batch in held]) for i in range(2))
    ).repeat()

    def step(config) -> tuple[float, float]:
        with trainer.op_determinism(config.deterministic):
            model = compiled_model(transform_config, config, transform, files, compression_type)
            model.fit(in_memory, steps_per_epoch=2, epochs=1, verbose=0)  # traces the step
            return step_seconds(model, in_memory, args.steps)

    before, on, after = step(free), step(deterministic), step(free)
    off = ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)
    lines = [
        f"{deterministic.model}, batch {args.batch_size}, {len(files)} files, {args.steps} "
        "steps timed each",
        f"training step, deterministic kernels: {on[0]:.3f} s ({on[1]:.3f} CPU-s); "
        f"any kernels: {off[0]:.3f} s ({off[1]:.3f} CPU-s)",
        f"step time deterministic / not: {on[0] / off[0]:.3f} (CPU-s: {on[1] / off[1]:.3f})",
        f"host input, order fixed by the seed: {ordered.per_second:.0f} images/s, "
        f"{ordered.per_cpu_second:.0f} per CPU-second; in any order: "
        f"{unordered.per_second:.0f} images/s, {unordered.per_cpu_second:.0f} per CPU-second",
        f"input throughput ordered / not: {ordered.per_second / unordered.per_second:.3f} "
        f"(per CPU-second: {ordered.per_cpu_second / unordered.per_cpu_second:.3f})",
    ]
    output.report(
        "determinism",
        lines,
        {
            "batch_size": args.batch_size,
            "ratio": on[0] / off[0],  # the training step's time, deterministic / not
            "step_cpu_ratio": on[1] / off[1],
            "step_s_deterministic": on[0],
            "step_s_nondeterministic": off[0],
            "input_ratio": ordered.per_second / unordered.per_second,
            "input_cpu_ratio": ordered.per_cpu_second / unordered.per_cpu_second,
            "images_per_s_ordered": ordered.per_second,
            "images_per_s_unordered": unordered.per_second,
        },
    )
    return 0
