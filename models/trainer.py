"""The Trainer's ``run_fn``: the paper's training recipe on the transformed records.

SGD with momentum 0.9, learning rate 0.01 divided by 10 when validation accuracy stops
improving, weight decay 5e-4 (in the model), batch 128, dropout 0.5, random crops, flips and
PCA lighting: every value comes from the Trainer's ``custom_config``
(``models.config.TrainerConfig``, with the ``TransformConfig`` its input was made with).
Distribution, mixed precision and XLA are switches of the same config.

The host input only reads and parses uint8 batches (``models.input_pipeline``); the model's
first layer crops, flips, lights and normalises them on the accelerator
(``models.augmentation``). The TFRecord codec comes from the examples artifact, through
``components.codec_trainer`` (``fn_args.examples_compression``).

Reproducible: the seed fixes the initial weights, the input order, augmentation and dropout,
and TensorFlow's deterministic kernels make the same data, code, settings and seed give the
same weights (``TrainerConfig.deterministic``, docs/reproducibility.md). Resuming: a re-run
after a crash continues exactly where the killed training stopped (``models.resume``), its
state kept under ``checkpoint_root`` in a directory keyed by the training inputs and config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from absl import logging

from data import compression
from models import augmentation, catalog, input_pipeline, metric_names, resume, signatures
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


STATISTICS_KEYS = (pp.RGB_MEAN_KEY, pp.RGB_STD_KEY, pp.RGB_EIGVAL_KEY, pp.RGB_EIGVEC_KEY)


def pixel_statistics(file_pattern, compression_type: str) -> dict[str, np.ndarray]:
    """The training-set statistics Transform attached to every record (read from the first).

    ``compression_type``: tf.data's, from the examples artifact (``data.compression``).
    """
    files = (
        tf.io.gfile.glob(file_pattern)
        if isinstance(file_pattern, str)
        else [f for pattern in file_pattern for f in tf.io.gfile.glob(pattern)]
    )
    first = next(iter(tf.data.TFRecordDataset(sorted(files)[:1], compression_type)))
    spec = {
        pp.RGB_MEAN_KEY: tf.io.FixedLenFeature([3], tf.float32),
        pp.RGB_STD_KEY: tf.io.FixedLenFeature([3], tf.float32),
        pp.RGB_EIGVAL_KEY: tf.io.FixedLenFeature([3], tf.float32),
        pp.RGB_EIGVEC_KEY: tf.io.FixedLenFeature([9], tf.float32),
    }
    spec[pp.RGB_STATISTICS_IMAGES_KEY] = tf.io.FixedLenFeature([1], tf.int64)
    features = tf.io.parse_single_example(first, spec)
    statistics = {key: features[key].numpy() for key in STATISTICS_KEYS}
    if not all(np.all(np.isfinite(v)) for v in statistics.values()):
        raise ValueError(f"Transform's pixel statistics are not finite: {statistics}")
    measured = int(features[pp.RGB_STATISTICS_IMAGES_KEY][0])
    if measured == 0:
        logging.warning(
            "Transform sampled no training image for the pixel statistics (a split smaller "
            "than its analyzer_sample_one_in): normalising with neutral ones, mean %s, std %s",
            pp.NEUTRAL_MEAN,
            pp.NEUTRAL_STD,
        )
    else:
        logging.info("Pixel statistics of %d training images: %s", measured, statistics)
    return statistics


def build_model(
    transform: TransformConfig, config: TrainerConfig, num_classes: int, statistics: dict
) -> tf_keras.Model:
    """uint8 stored regions -> float32 logits: augmentation (in training) and normalisation
    (``models.augmentation.Augment``), then the selected network."""
    entry = catalog.get(config.model)
    side = transform.stored_size
    inputs = tf_keras.Input([side, side, 3], dtype="uint8", name="image")
    normalized = augmentation.Augment(
        crop_size=entry.crop_size,
        rgb_mean=statistics[pp.RGB_MEAN_KEY],
        rgb_std=statistics[pp.RGB_STD_KEY],
        rgb_eigval=statistics[pp.RGB_EIGVAL_KEY],
        rgb_eigvec=statistics[pp.RGB_EIGVEC_KEY],
        lighting_std=config.lighting_std,
        name=signatures.AUGMENT_LAYER,
    )(inputs)
    network = entry.build(
        num_classes=num_classes,
        lrn_implementation=config.lrn_implementation,
        weight_decay=config.weight_decay,
        classifier_activation=None,
        name=signatures.NETWORK_LAYER,
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
    training records (batches are full and run across passes: ``steps`` batches hold
    ``epochs * per_pass * batch_size`` records, the rest of a pass starting the next). An epoch is
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


def count_records(file_patterns: list[str], compression_type: str) -> int:
    """The records in the files, read through: the training split's size, for epochs. On full
    ImageNet that is one more pass over the data, before 90 (docs/scaling.md)."""
    dataset = input_pipeline.read_records(file_patterns, compression_type, training=False)
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
    compression_type: str,
    training: bool,
    start: int = 0,
    pass_size: int | None = None,
) -> tf.data.Dataset:
    """The Trainer's host input over transformed ``files``: uint8 regions of ``transform``'s
    stored size in batches of ``config``'s (``bench input`` measures exactly this).
    ``compression_type``: tf.data's, from the examples artifact. Training starts at record
    ``start`` of the stream (``pass_size`` records a pass), where a killed run stopped."""
    return input_pipeline.make_dataset(
        files,
        batch_size=config.batch_size,
        stored_size=transform.stored_size,
        compression_type=compression_type,
        training=training,
        seed=config.seed,
        cache=config.cache_dataset,
        data_service=config.data_service if training else None,
        deterministic=config.deterministic,
        start=start,
        pass_size=pass_size,
    )


def examples_compression_type(fn_args) -> str:
    """tf.data's ``compression_type`` of the examples, as their artifact records it.

    ``components.codec_trainer``'s executor reads the artifact's ``compression`` property into
    ``fn_args.examples_compression``; a plain TFX Trainer cannot, and run_fn will not guess.
    """
    codec = getattr(fn_args, "examples_compression", None)
    if codec is None:
        raise ValueError(
            "fn_args has no examples_compression: run this run_fn with "
            "components.codec_trainer.component.CodecTrainer, which reads the TFRecord codec "
            "from the examples artifact"
        )
    return compression.tf_compression_type(codec)


@contextlib.contextmanager
def op_determinism(enabled: bool):
    """TensorFlow's deterministic kernels (and seeded random ops) while the block runs. The
    switch is the process's, and a local run's other components run in the same process after
    the Trainer, so it is put back as it was."""
    from tensorflow.python.framework import config as tf_config  # disable is not exported

    before = tf_config.is_op_determinism_enabled()
    if enabled:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not before:
            tf_config.disable_op_determinism()


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (referenced by import path from the pipeline)."""
    transform, config = parse_trainer_custom_config(fn_args.custom_config)
    compression_type = examples_compression_type(fn_args)
    records = (
        count_records(fn_args.train_files, compression_type) if needs_record_count(config) else None
    )
    plan = schedule(config, records)
    # Before anything is built or traced: TensorFlow picks kernels and checks seeds then, and
    # Keras gives each random layer a generator.
    tf_keras.utils.set_random_seed(config.seed)
    with op_determinism(config.deterministic), resume.random_generators():
        _train_and_export(fn_args, transform, config, plan, compression_type, records)


def _train_and_export(fn_args, transform, config, plan, compression_type, records) -> None:
    if config.mixed_precision:
        tf_keras.mixed_precision.set_global_policy(config.mixed_precision)

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    num_classes = tf_transform_output.vocabulary_size_by_name(pp.CLASSES_VOCABULARY)
    statistics = pixel_statistics(fn_args.train_files, compression_type)

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
        model = build_model(transform, config, num_classes, statistics)
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
        plateau = tf_keras.callbacks.ReduceLROnPlateau(
            monitor=metric_names.VALIDATION_PREFIX + metric_names.TOP1,
            mode="max",
            factor=0.1,
            patience=config.lr_patience,
        )
        state = resume.Resume(_backup_dir(config, fn_args), model, plateau)

    history = {}
    if plan.steps > 0:
        if state.epochs_done:
            logging.info("Resuming after epoch %d of a killed run", state.epochs_done)
        # Where the next epoch starts in the training stream: a pass's size is needed then.
        start = state.epochs_done * plan.steps_per_epoch * config.batch_size
        if start and records is None:
            records = count_records(fn_args.train_files, compression_type)
        train = make_dataset(
            transform, config, fn_args.train_files, compression_type, True, start, records
        )
        validation = make_dataset(transform, config, fn_args.eval_files, compression_type, False)
        if config.eval_steps:  # Keras validates on the first eval_steps batches every epoch
            validation = validation.repeat()  # of a fresh iterator: never let it run dry
        model.fit(
            train,
            steps_per_epoch=plan.steps_per_epoch,
            initial_epoch=state.epochs_done,
            epochs=plan.steps // plan.steps_per_epoch,
            validation_data=validation,
            validation_steps=config.eval_steps,
            verbose=2,  # a line per epoch: progress bars garble logs that are not terminals
            callbacks=[
                plateau,
                state,  # after the schedule, whose counters it saves and restores
                tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
            ],
        )
        history = state.history
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
            stored_size=transform.stored_size,
            crop_size=transform.crop_size,
        ),
    )
    state.finish()  # only now: a kill while exporting resumes, and exports again
