"""The UncompressedTransform's executor: TFX's Transform executor, writing uncompressed TFRecords.

TFX 1.16's Transform always GZIPs its materialised output: ``TransformProcessor._EncodeAndWrite``
(``tfx/components/transform/executor.py``) writes ``beam.io.WriteToTFRecord(output_path,
file_name_suffix='.gz')``, and the ``.gz`` suffix selects the codec. Deflating each 155 KB crop
cost Transform 5-7.5 ms of its 14.4 ms per image, and inflating it cost the Trainer's input
more than anything else it did (docs/benchmarks.md).

The override point is that one static method: ``UncompressedTransformProcessor`` overrides
``_EncodeAndWrite`` for TFRecords (Parquet goes to TFX's own), and nothing else. It writes the
TFRecord framing itself with ``google_crc32c`` (hardware CRC, 0.006 ms per 155 KB record)
where Beam's ``WriteToTFRecord`` without python-snappy falls back to crcmod (0.37 ms per
record, measured here): the same bytes, checked by every TFRecord reader. And it writes them
in a layout that depends on the records alone (``WriteCanonicalTFRecords``): Beam leaves the
number of shards and the order of records in them to its bundles, which differ with the number
of workers and from run to run, and the Trainer's input order, and so the model, would follow
them (docs/reproducibility.md). Nor are TFX's records canonical: tfx_bsl serializes each
Example's feature map in the order of a C++ hash map, which protobuf seeds anew, so the same
example came out as other bytes from run to run; ``canonical_example`` writes the features in
key order. TFX's
``Executor.Do`` builds its processor by module-level name (``TransformProcessor().Transform(
...)``), so ``Executor.Do`` binds that name to the subclass for the duration of TFX's ``Do``
(where the Beam pipeline is built), then states the codec on the artifact. Analyzers, the
analyzer cache, the transform graph, splits and statistics are TFX's, untouched.

``Do`` checks what it wrote: should a TFX release stop building its processor by that name, the
output would be ``.gz`` files again and the run fails, instead of recording a wrong codec.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct

import apache_beam as beam
import google_crc32c
import pyarrow as pa
from tensorflow.core.example import example_pb2
from tfx.components.transform import executor as tfx_transform_executor
from tfx.components.transform import labels
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs

from data import compression

# Shards are named transformed_examples-00000-of-00004.tfrecord: no suffix that any reader
# (Beam's and tfx_bsl's AUTO detection included) takes for a compressed file.
OUTPUT_SUFFIX = ".tfrecord"
TFX_GZIP_SUFFIX = ".gz"
# Records per shard: a shard is grouped and sorted in one worker's memory (about 160 MB of
# 227-pixel crops), and the number of shards follows from the number of records alone.
RECORDS_PER_SHARD = 1024


def _masked_crc32c(data: bytes) -> bytes:
    """The TFRecord format's masked CRC-32C of ``data``, little-endian."""
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord(value: bytes) -> bytes:
    """``value`` in the TFRecord framing: length, its CRC, the bytes, their CRC."""
    length = struct.pack("<Q", len(value))
    return length + _masked_crc32c(length) + value + _masked_crc32c(value)


class _WriteShard(beam.DoFn):
    """One shard's records, sorted by digest, to ``<prefix>-SSSSS-of-NNNNN.tfrecord``. A retried
    bundle writes the same bytes again."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def process(self, shard, shards: int):
        index, keyed = shard
        path = f"{self.prefix}-{index:05d}-of-{shards:05d}{OUTPUT_SUFFIX}"
        fileio.makedirs(os.path.dirname(path))
        with fileio.open(path, "wb") as f:
            for _, value in sorted(keyed):
                f.write(tfrecord(value))
        yield path


def canonical_example(serialized: bytes) -> bytes:
    """A serialized ``tf.train.Example`` with its features in key order, whatever order it
    came in: the same example, the same bytes."""
    return example_pb2.Example.FromString(serialized).SerializeToString(deterministic=True)


@beam.ptransform_fn
def WriteCanonicalTFRecords(records, prefix: str):  # noqa: N802 - a Beam PTransform
    """Serialized records to uncompressed TFRecord shards whose number, contents and order
    depend on the records alone: one shard per ``RECORDS_PER_SHARD`` records, each record in
    the shard its SHA-256 picks, sorted by it. Beam's bundles, and so its workers, change
    nothing; a GroupByKey gathers each shard."""
    shards = (
        records
        | "Count" >> beam.combiners.Count.Globally()
        | "Shards" >> beam.Map(lambda count: max(1, -(-count // RECORDS_PER_SHARD)))
    )
    return (
        records
        | "Digest" >> beam.Map(lambda value: (hashlib.sha256(value).digest(), value))
        | "PickShard"
        >> beam.Map(
            lambda keyed, n: (int.from_bytes(keyed[0][:8], "big") % n, keyed),
            n=beam.pvalue.AsSingleton(shards),
        )
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(_WriteShard(prefix), shards=beam.pvalue.AsSingleton(shards))
    )


class UncompressedTransformProcessor(tfx_transform_executor.TransformProcessor):
    """TFX's ``TransformProcessor``, writing TFRecords without compression."""

    @staticmethod
    @beam.ptransform_fn
    @beam.typehints.with_input_types(tuple[pa.RecordBatch, dict[str, pa.Array]])
    def _EncodeAndWrite(pcoll, schema, file_format: str, output_path: str):
        if file_format != labels.FORMAT_TFRECORD:
            return pcoll | tfx_transform_executor.TransformProcessor._EncodeAndWrite(
                schema=schema, file_format=file_format, output_path=output_path
            )
        # TFX's own steps and labels, with the codec stated instead of implied by a suffix.
        to_examples = tfx_transform_executor.TransformProcessor._RecordBatchToExamplesFn
        return (
            pcoll
            | "EncodeAndSerialize" >> beam.ParDo(to_examples(schema))
            | "ExtractExamples" >> beam.Values()
            | "CanonicalExamples" >> beam.Map(canonical_example)
            | "WriteToTFRecord" >> WriteCanonicalTFRecords(output_path)
        )


@contextlib.contextmanager
def _uncompressed_processor():
    """TFX's executor module builds ``UncompressedTransformProcessor`` while this is open."""
    original = tfx_transform_executor.TransformProcessor
    tfx_transform_executor.TransformProcessor = UncompressedTransformProcessor
    try:
        yield
    finally:
        tfx_transform_executor.TransformProcessor = original


def written_files(split_uri: str) -> list[str]:
    """The TFRecord shards of one split of the output (TFX's ``.temp`` files excluded)."""
    return sorted(
        os.path.join(split_uri, name)
        for name in fileio.listdir(split_uri)
        if not fileio.isdir(os.path.join(split_uri, name))
    )


class Executor(tfx_transform_executor.Executor):
    """TFX's Transform executor; ``transformed_examples`` are uncompressed TFRecords and carry
    the custom property ``compression`` = ``NONE`` (``data.compression``), and the payload
    format (tf.Example) that TFX's Transform leaves unstated, so no reader warns of it."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        with _uncompressed_processor():
            super().Do(input_dict, output_dict, exec_properties)
        for artifact in output_dict.get(standard_component_specs.TRANSFORMED_EXAMPLES_KEY, []):
            for split in artifact_utils.decode_split_names(artifact.split_names):
                split_uri = artifact_utils.get_split_uri([artifact], split)
                gzipped = [f for f in written_files(split_uri) if f.endswith(TFX_GZIP_SUFFIX)]
                if gzipped:
                    raise RuntimeError(
                        f"UncompressedTransform wrote GZIP files ({gzipped[0]}, ...): this TFX "
                        "no longer builds its Transform processor as "
                        "tfx.components.transform.executor.TransformProcessor; see "
                        "components/uncompressed_transform/executor.py"
                    )
            compression.set_codec(artifact, compression.NONE)
            examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
