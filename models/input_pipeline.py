"""The Trainer's host input: transformed records -> uint8 image batches and labels.

Plain tf.data, testable without TFX. The host only reads and parses; everything per pixel
beyond that (crop, mirror, PCA lighting, cast, normalisation) is the model's first layer
(``models.augmentation``), on the accelerator:

    parallel reads, large buffers -> [cache] -> shuffle -> batch -> parse_example
    -> one decode_raw per batch -> (uint8 [N, S, S, 3], int64 [N])

No per-image op, no float32 and no randomness beyond the shuffle on the host. Training reads
in whatever order the parallel reads deliver (``deterministic=False``); evaluation keeps the
order. Every op is a TensorFlow kernel (no Python function in the graph), so the same dataset
runs on tf.data service workers (``data_service``: ``models.data_service``).
"""

from __future__ import annotations

import tensorflow as tf

from models import preprocessing as pp

# The transformed features the Trainer reads; the statistics are constants of the model.
FEATURE_SPEC = {
    pp.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    pp.CLASS_INDEX_KEY: tf.io.FixedLenFeature([], tf.int64),
}
READ_BUFFER_BYTES = 8 << 20  # per file read in parallel: fewer, larger reads
SHUFFLE_BUFFER = 1024  # images, before batching
CACHE_BATCH = 256  # records parsed together on the way into the RAM cache


def parse_batch(serialized: tf.Tensor, stored_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """[N] serialized transformed tf.Examples -> (uint8 [N, S, S, 3], int64 [N])."""
    features = tf.io.parse_example(serialized, FEATURE_SPEC)
    return pp.decode_raw(features[pp.IMAGE_KEY], stored_size), features[pp.CLASS_INDEX_KEY]


def read_records(
    file_pattern: str | list[str],
    compression_type: str,
    training: bool,
    seed: int | None = None,
    num_parallel_reads: int | None = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """The serialized records of ``file_pattern``, files in shuffled order when training."""
    files = tf.data.Dataset.list_files(file_pattern, shuffle=training, seed=seed)
    return tf.data.TFRecordDataset(
        files,
        compression_type=compression_type,
        buffer_size=READ_BUFFER_BYTES,
        num_parallel_reads=num_parallel_reads,
    )


def _options(training: bool) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = not training
    return options


def epoch_dataset(
    file_pattern: str | list[str],
    batch_size: int,
    stored_size: int,
    compression_type: str,
    training: bool,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """One pass over the records as parsed uint8 batches (what a tf.data service worker runs)."""
    dataset = read_records(file_pattern, compression_type, training, seed)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    return (
        dataset.batch(batch_size, drop_remainder=drop_remainder)
        .map(
            lambda s: parse_batch(s, stored_size),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=not training,
        )
        .with_options(_options(training))
    )


def _cached(
    file_pattern, stored_size: int, compression_type: str, training: bool, seed
) -> tf.data.Dataset:
    """Decoded (image, label) pairs, read and parsed once, then held in RAM."""
    return (
        read_records(file_pattern, compression_type, training, seed)
        .batch(CACHE_BATCH)
        .map(lambda s: parse_batch(s, stored_size), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .cache()
    )


def make_dataset(
    file_pattern: str | list[str],
    batch_size: int,
    stored_size: int,
    compression_type: str,
    training: bool,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    seed: int | None = None,
    cache: bool = False,
    data_service: str | None = None,
) -> tf.data.Dataset:
    """Batches of (uint8 images [N, S, S, 3], class indices [N] int64), S = ``stored_size``.

    ``compression_type`` is tf.data's ("" or "GZIP"), from the examples artifact
    (``data.compression``). Training repeats forever; evaluation makes one pass and keeps the
    last partial batch. Training batches are full, except through ``data_service``, where each
    worker's last batch of an epoch may be partial (every element is seen once per epoch).

    ``cache``: hold the decoded images in RAM after the first epoch (S * S * 3 bytes per
    image: 154,587 at 227, so 10,000 images take 1.5 GB); later epochs only shuffle and
    batch. ``data_service`` (``grpc://HOST:PORT``, a tf.data service dispatcher): training
    input runs on the service's workers, dynamically sharded (``models.data_service``).
    """
    if data_service and training:
        from models import data_service as service

        if cache:
            raise ValueError("cache and data_service do not combine: workers read once per epoch")
        per_epoch = epoch_dataset(
            file_pattern, batch_size, stored_size, compression_type, True, shuffle_buffer, seed
        )
        # The repeat inside: one job for the whole training, each epoch's files handed out
        # afresh (a repeat outside would start a job per epoch, each waiting for workers).
        return service.distribute(per_epoch.repeat(), data_service).prefetch(tf.data.AUTOTUNE)

    if cache:
        dataset = _cached(file_pattern, stored_size, compression_type, training, seed)
        if training:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
        dataset = dataset.batch(batch_size, drop_remainder=training)
        return dataset.with_options(_options(training)).prefetch(tf.data.AUTOTUNE)

    dataset = read_records(file_pattern, compression_type, training, seed)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
    return (
        dataset.batch(batch_size, drop_remainder=training)
        .map(
            lambda s: parse_batch(s, stored_size),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=not training,
        )
        .with_options(_options(training))
        .prefetch(tf.data.AUTOTUNE)
    )
