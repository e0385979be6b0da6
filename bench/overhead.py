"""``bench overhead``: training step time with the real input pipeline / with the same batches
already in memory (same model, same batch size, same compiled step).

The real input is ``models.input_pipeline.make_dataset`` on the real Transform's output, as the
Trainer builds it (uint8 batches; the codec from the Transform's artifact); the in-memory input
cycles through a few of its batches held as tensors (the "synthetic data" of GPU benchmarks, but
real pixels). Both feed the same model, whose first layer augments on the device, so the ratio
is what the host input costs the training loop: 1.0 when it keeps up. On CPU the model and the
input share the cores; on a GPU machine run it with ``--mixed-precision mixed_float16 --xla``
to measure steps/s of both inputs (docs/benchmarks.md).
"""

from __future__ import annotations

import time

from bench import images, output, pipeline_run, trainer_input
from pipeline import configs

IN_MEMORY_BATCHES = 4


def compiled_model(transform_config, config, transform, files, compression_type: str):
    """The Trainer's model and optimizer, compiled as ``models.trainer.run_fn`` compiles them."""
    import tensorflow_transform as tft
    import tf_keras

    from models import preprocessing as pp
    from models import trainer

    tf_transform_output = tft.TFTransformOutput(transform.uri("transform_graph"))
    model = trainer.build_model(
        transform_config,
        config,
        tf_transform_output.vocabulary_size_by_name(pp.CLASSES_VOCABULARY),
        trainer.pixel_statistics(files, compression_type),
    )
    model.compile(
        optimizer=tf_keras.optimizers.SGD(config.learning_rate, momentum=config.momentum),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=config.xla,
    )
    return model


def step_seconds(model, dataset, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds per training step over ``steps`` steps (after ``fit`` has traced
    the step)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps, (time.process_time() - start_cpu) / steps


def main(args) -> int:
    import tensorflow as tf
    import tf_keras

    from models.config import TrainerConfig, TransformConfig

    work_dir = args.work_dir or output.DEFAULT_WORK_DIR
    data_root, _ = images.ensure_dataset(work_dir, args.images)
    transform = pipeline_run.outputs(work_dir, data_root, configs.TRANSFORM)
    config = TrainerConfig(
        model=args.model,
        batch_size=args.batch_size,
        mixed_precision=args.mixed_precision,
        xla=args.xla,
        deterministic=not args.xla,  # XLA has no deterministic max-pool gradient
    )
    tf_keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        tf_keras.mixed_precision.set_global_policy(config.mixed_precision)
    real, files, compression_type = trainer_input.training_dataset(transform, config.batch_size)
    held = list(real.take(IN_MEMORY_BATCHES))
    in_memory = tf.data.Dataset.from_tensor_slices(
        tuple(tf.stack([batch[i] for batch in held]) for i in range(2))
    ).repeat()
    transform_config = TransformConfig.for_model(config.model)
    model = compiled_model(transform_config, config, transform, files, compression_type)

    model.fit(in_memory, steps_per_epoch=2, epochs=1, verbose=0)  # traces the step
    model.fit(real, steps_per_epoch=2, epochs=1, verbose=0)  # fills the shuffle buffer
    # Memory, real, memory: the in-memory time is the mean of two, bracketing the real one.
    before = step_seconds(model, in_memory, args.steps)
    real_step, real_cpu = step_seconds(model, real, args.steps)
    after = step_seconds(model, in_memory, args.steps)
    memory_step, memory_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    devices = [d.device_type for d in tf.config.list_logical_devices()]
    device = "GPU" if "GPU" in devices else "CPU"
    lines = [
        f"{config.model}, batch {config.batch_size} on {device}, "
        f"precision {config.mixed_precision or 'float32'}, XLA {'on' if config.xla else 'off'}",
        f"batches in memory: {memory_step:.3f} s/step ({1 / memory_step:.2f} steps/s, "
        f"{config.batch_size / memory_step:.0f} images/s)",
        f"real input pipeline: {real_step:.3f} s/step ({1 / real_step:.2f} steps/s, "
        f"{config.batch_size / real_step:.0f} images/s)",
        f"input overhead (real / in memory): {real_step / memory_step:.3f} (target <= 1.1)",
        f"CPU-seconds per step: {before[1]:.3f} and {after[1]:.3f} in memory, "
        f"{real_cpu:.3f} with the real input",
    ]
    output.report(
        "overhead",
        lines,
        {
            "model": config.model,
            "device": device,
            "batch_size": config.batch_size,
            "mixed_precision": config.mixed_precision,
            "xla": config.xla,
            "ratio": real_step / memory_step,
            "step_s_real": real_step,
            "step_s_in_memory": memory_step,
            "step_cpu_s_real": real_cpu,
            "step_cpu_s_in_memory": memory_cpu,
            "images_per_s_real": config.batch_size / real_step,
            "images_per_s_in_memory": config.batch_size / memory_step,
        },
    )
    return 0
