"""The Trainer's ``run_fn``: the paper's training recipe on the transformed records.

SGD with momentum 0.9, learning rate 0.01 divided by 10 when validation accuracy stops
improving, weight decay 5e-4 (in the model), batch 128, dropout 0.5, random crops, flips and
PCA lighting: every value comes from the Trainer's ``custom_config``
(``models.config.TrainerConfig``, with the ``TransformConfig`` its input was made with).
Distribution, mixed precision and XLA are switches of the same config.

Resuming: a re-run of the pipeline after a crash is a new TFX execution with new output
directories, so ``BackupAndRestore`` keeps its state under ``checkpoint_root`` in a directory
keyed by the training inputs and config. The same run resumes where it stopped; any change of
data or config starts afresh. Keras deletes the backup when training completes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from absl import logging

from models import catalog, input_pipeline, metric_names, signatures
from models import preprocessing as pp
from models.config import TrainerConfig, TransformConfig, parse_trainer_custom_config

HISTORY_FILE = "history.json"


def make_strategy(distribution: str) -> tf.distribute.Strategy:
    """MirroredStrategy over all visible GPUs (or, when forced, all logical CPUs)."""
    gpus = tf.config.list_logical_devices("GPU")
    if distribution == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if distribution != "auto":
        raise ValueError(f"unknown distribution {distribution!r}; expected 'auto' or 'mirrored'")
    if gpus:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def pixel_statistics(file_pattern, feature_spec: dict) -> dict[str, tf.Tensor]:
    """The training-set statistics Transform attached to every record (read from the first)."""
    files = (
        tf.io.gfile.glob(file_pattern)
        if isinstance(file_pattern, str)
        else [f for pattern in file_pattern for f in tf.io.gfile.glob(pattern)]
    )
    first = next(iter(tf.data.TFRecordDataset(sorted(files)[:1], compression_type="GZIP")))
    features = tf.io.parse_single_example(first, feature_spec)
    return {key: features[key] for key in (pp.RGB_MEAN_KEY, pp.RGB_STD_KEY)}


def build_model(config: TrainerConfig, num_classes: int, rgb_mean, rgb_std) -> tf_keras.Model:
    """0..255 RGB images -> float32 logits: normalisation, then the selected network."""
    entry = catalog.get(config.model)
    crop = entry.crop_size
    inputs = tf_keras.Input([crop, crop, 3], name="image")
    normalized = tf_keras.layers.Normalization(
        mean=list(map(float, rgb_mean)),
        variance=[float(s) ** 2 for s in rgb_std],
        name="normalize",
    )(inputs)
    network = entry.build(
        num_classes=num_classes,
        lrn_implementation=config.lrn_implementation,
        weight_decay=config.weight_decay,
        classifier_activation=None,
        **config.model_options(),
    )
    # Logits in float32 whatever the policy, for a numerically stable loss.
    logits = tf_keras.layers.Activation("linear", dtype="float32", name="logits")(
        network(normalized)
    )
    return tf_keras.Model(inputs, logits, name=config.model.replace("-", "_"))


def epoch_length(train_steps: int, max_steps_per_epoch: int) -> int:
    """The longest epoch of at most ``max_steps_per_epoch`` steps that divides
    ``train_steps``, so that training runs exactly the configured number of steps."""
    return max(
        d for d in range(1, min(train_steps, max_steps_per_epoch) + 1) if train_steps % d == 0
    )


@dataclasses.dataclass(frozen=True)
class Schedule:
    steps: int  # training steps in all
    steps_per_epoch: int  # between validations, and learning-rate decisions


def schedule(config: TrainerConfig, train_records: int | None) -> Schedule:
    """How many steps to train, and how many between validations.

    ``config.train_steps`` when set, else ``config.epochs`` passes over the ``train_records``
    training records (batches are full: the last partial one of a pass is dropped). An epoch is
    a pass unless ``config.steps_per_epoch`` is shorter; it always divides the steps.
    """
    per_pass = None if train_records is None else train_records // config.batch_size
    if config.train_steps is not None:
        steps = config.train_steps
    elif per_pass:
        steps = config.epochs * per_pass
    else:
        raise ValueError(
            f"{train_records} training records make no batch of {config.batch_size}: lower "
            "--batch-size"
        )
    if steps == 0:
        return Schedule(0, 0)
    longest = config.steps_per_epoch or per_pass or steps
    return Schedule(steps, epoch_length(steps, longest))


def needs_record_count(config: TrainerConfig) -> bool:
    return config.train_steps is None or config.steps_per_epoch is None


def count_records(file_patterns: list[str], compression: str) -> int:
    """The records in the files, read through (the split's size, for epochs)."""
    files = [f for pattern in file_patterns for f in tf.io.gfile.glob(pattern)]
    dataset = tf.data.TFRecordDataset(files, compression_type=compression, num_parallel_reads=8)
    return int(dataset.reduce(np.int64(0), lambda count, _: count + 1))


def _backup_dir(config: TrainerConfig, fn_args) -> str:
    """A directory that a re-run with the same inputs and config finds again."""
    if not config.checkpoint_root:
        return os.path.join(fn_args.model_run_dir, "backup")
    key = json.dumps(
        {"custom_config": fn_args.custom_config, "train_files": sorted(fn_args.train_files)},
        sort_keys=True,
    )
    return os.path.join(config.checkpoint_root, hashlib.sha256(key.encode()).hexdigest()[:16])


def make_dataset(
    transform: TransformConfig,
    config: TrainerConfig,
    files: list[str],
    feature_spec: dict,
    training: bool,
) -> tf.data.Dataset:
    """The Trainer's input over transformed ``files``: ``transform``'s geometry, ``config``'s
    batch size, lighting and seed (``bench input`` measures exactly this)."""
    return input_pipeline.make_dataset(
        files,
        feature_spec,
        batch_size=config.batch_size,
        crop_size=transform.crop_size,
        stored_size=transform.stored_size,
        training=training,
        lighting_std=config.lighting_std,
        seed=config.seed,
    )


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (referenced by import path from the pipeline)."""
    transform, config = parse_trainer_custom_config(fn_args.custom_config)
    records = count_records(fn_args.train_files, "GZIP") if needs_record_count(config) else None
    plan = schedule(config, records)
    tf_keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        tf_keras.mixed_precision.set_global_policy(config.mixed_precision)

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    feature_spec = tf_transform_output.transformed_feature_spec()
    num_classes = tf_transform_output.vocabulary_size_by_name(pp.CLASSES_VOCABULARY)
    stats = pixel_statistics(fn_args.train_files, feature_spec)

    strategy = make_strategy(config.distribution)
    logging.info(
        "Training %s (%d classes) for %d steps, validating every %d, on %d replica(s)",
        config.model,
        num_classes,
        plan.steps,
        plan.steps_per_epoch,
        strategy.num_replicas_in_sync,
    )
    with strategy.scope():
        model = build_model(config, num_classes, stats[pp.RGB_MEAN_KEY], stats[pp.RGB_STD_KEY])
        model.compile(
            optimizer=tf_keras.optimizers.SGD(config.learning_rate, momentum=config.momentum),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[
                tf_keras.metrics.SparseCategoricalAccuracy(name=metric_names.TOP1),
                tf_keras.metrics.SparseTopKCategoricalAccuracy(k=5, name=metric_names.TOP5),
                tf_keras.metrics.SparseCategoricalCrossentropy(
                    from_logits=True, name=metric_names.CROSS_ENTROPY
                ),
            ],
            jit_compile=config.xla,
        )

    history = {}
    if plan.steps > 0:
        validation = make_dataset(transform, config, fn_args.eval_files, feature_spec, False)
        if config.eval_steps:  # Keras keeps one validation iterator: repeat, never run dry
            validation = validation.repeat()
        result = model.fit(
            make_dataset(transform, config, fn_args.train_files, feature_spec, training=True),
            steps_per_epoch=plan.steps_per_epoch,
            epochs=plan.steps // plan.steps_per_epoch,
            validation_data=validation,
            validation_steps=config.eval_steps,
            verbose=2,  # a line per epoch: progress bars garble logs that are not terminals
            callbacks=[
                tf_keras.callbacks.BackupAndRestore(_backup_dir(config, fn_args)),
                tf_keras.callbacks.ReduceLROnPlateau(
                    monitor=metric_names.VALIDATION_PREFIX + metric_names.TOP1,
                    mode="max",
                    factor=0.1,
                    patience=config.lr_patience,
                ),
                tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
            ],
        )
        history = {key: [float(v) for v in values] for key, values in result.history.items()}
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        epochs = len(history.get(metric_names.TRAINING_LOSS, []))
        json.dump({"epoch": list(range(1, epochs + 1)), **history}, f)

    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        include_optimizer=False,  # optimizer slots would double the exported size
        signatures=signatures.make_serving_signatures(
            model,
            tf_transform_output,
            transform.record_format,
            crop_size=transform.crop_size,
            stored_size=transform.stored_size,
        ),
    )
