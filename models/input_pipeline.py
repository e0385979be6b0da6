"""The Trainer's host input: transformed records -> uint8 image batches and labels.

Plain tf.data, testable without TFX. The host only reads and parses; everything per pixel
beyond that (crop, mirror, PCA lighting, cast, normalisation) is the model's first layer
(``models.augmentation``), on the accelerator:

    parallel reads, large buffers -> [cache] -> shuffle -> batch -> parse_example
    -> one decode_raw per batch -> (uint8 [N, S, S, 3], int64 [N])

No per-image op, no float32 and no randomness beyond the shuffle on the host. The files are
read in parallel; with ``deterministic`` (the default) their records interleave in a fixed
order, so the training order depends on the seed only (docs/reproducibility.md); without it,
in whatever order the reads deliver. Evaluation always keeps the order. Every op is a
TensorFlow kernel (no Python function in the graph), so the same dataset runs on tf.data
service workers (``data_service``: ``models.data_service``).
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
# Files whose records training interleaves, one record from each in turn: a constant, so that
# the order does not follow the machine's core count (AUTOTUNE would); reads stay parallel.
READ_CYCLE = 16
SHUFFLE_BUFFER = 1024  # images shuffled together before batching
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


def training_records(
    file_pattern: str | list[str],
    compression_type: str,
    seed: int | None,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    start: int = 0,
    pass_size: int | None = None,
) -> tf.data.Dataset:
    """The training records, pass after pass without end. Pass p reads the files in a random
    order and permutes its records a block of ``shuffle_buffer`` at a time, both drawn
    statelessly from (``seed``, p), so any pass is the same whether the stream begins there or
    not: from record ``start`` (``pass_size`` records a pass, needed when ``start`` > 0), a
    resumed training goes on where it stopped, reading at most one pass to get there."""
    files = sorted(
        tf.io.gfile.glob(file_pattern)
        if isinstance(file_pattern, str)
        else [f for pattern in file_pattern for f in tf.io.gfile.glob(pattern)]
    )
    if not files:
        raise ValueError(f"no training files match {file_pattern}")
    first_pass, skip = divmod(start, pass_size) if start else (0, 0)
    seed = 0 if seed is None else seed

    def permuted(values, key):
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(values)[0]), key)
        return tf.gather(values, order)

    def one_pass(number):
        key = tf.stack([tf.constant(seed, tf.int64), number])
        names = tf.data.Dataset.from_tensor_slices(permuted(tf.constant(files), key))
        records = names.interleave(
            lambda name: tf.data.TFRecordDataset(name, compression_type, READ_BUFFER_BYTES),
            cycle_length=READ_CYCLE,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return (
            records.batch(shuffle_buffer)
            .enumerate()
            .map(lambda block, r: permuted(r, tf.random.experimental.stateless_fold_in(key, block)))
            .unbatch()
        )

    passes = tf.data.Dataset.range(first_pass, tf.int64.max).flat_map(one_pass)
    return passes.skip(skip)


def _options(ordered: bool) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = ordered
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
    deterministic: bool = True,
) -> tf.data.Dataset:
    """One pass over the records as parsed uint8 batches (what a tf.data service worker runs)."""
    ordered = deterministic or not training
    dataset = read_records(file_pattern, compression_type, training, seed)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    return (
        dataset.batch(batch_size, drop_remainder=drop_remainder)
        .map(
            lambda s: parse_batch(s, stored_size),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=ordered,
        )
        .with_options(_options(ordered))
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
    deterministic: bool = True,
    start: int = 0,
    pass_size: int | None = None,
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
    ``deterministic``: the training order is the seed's alone (not with ``data_service``,
    whose workers take files as they ask). ``start``, ``pass_size``: training begins at that
    record of the stream (``training_records``), where a resumed training left off; with
    ``cache`` or ``data_service`` it begins at the start of the stream.
    """
    if data_service and training:
        from models import data_service as service

        if cache:
            raise ValueError("cache and data_service do not combine: workers read once per epoch")
        if deterministic:
            raise ValueError("a tf.data service cannot give a deterministic training order")
        per_epoch = epoch_dataset(
            file_pattern,
            batch_size,
            stored_size,
            compression_type,
            True,
            shuffle_buffer,
            seed,
            deterministic=False,
        )
        # The repeat inside: one job for the whole training, each epoch's files handed out
        # afresh (a repeat outside would start a job per epoch, each waiting for workers).
        return service.distribute(per_epoch.repeat(), data_service).prefetch(tf.data.AUTOTUNE)

    ordered = deterministic or not training
    if cache:
        dataset = _cached(file_pattern, stored_size, compression_type, training, seed)
        if training:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
        dataset = dataset.batch(batch_size, drop_remainder=training)
        return dataset.with_options(_options(ordered)).prefetch(tf.data.AUTOTUNE)

    if training:
        dataset = training_records(
            file_pattern, compression_type, seed, shuffle_buffer, start, pass_size
        )
    else:
        dataset = read_records(file_pattern, compression_type, training)
    return (
        dataset.batch(batch_size, drop_remainder=training)
        .map(
            lambda s: parse_batch(s, stored_size),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=ordered,
        )
        .with_options(_options(ordered))
        .prefetch(tf.data.AUTOTUNE)
    )
