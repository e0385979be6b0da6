"""UncompressedTransform: TFX's Transform interface; in a real pipeline it writes the same
records as TFX's Transform, uncompressed, says so on its artifact in ML Metadata, and the
CodecTrainer hands that codec to run_fn."""

import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from tfx import v1 as tfx
from tfx.components.example_gen import utils as example_gen_utils
from tfx.orchestration import metadata, pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.proto import example_gen_pb2, transform_pb2
from tfx.types import standard_artifacts

from components.codec_trainer.component import CodecTrainer
from components.uncompressed_transform import executor
from components.uncompressed_transform.component import UncompressedTransform
from data import bundled, compression, records
from models import preprocessing
from models.config import TransformConfig, transform_custom_config

PREPROCESSING_FN = f"{preprocessing.__name__}.{preprocessing.preprocessing_fn.__name__}"
CUSTOM_CONFIG = transform_custom_config(
    TransformConfig(resize_size=40, crop_size=32, analyzer_sample_one_in=2), "test"
)
CODEC_FILE = "codec.json"
PIPELINE_NAME = "uncompressed-transform-test"


def _transform(examples, schema, cls=UncompressedTransform):
    return cls(
        examples=examples,
        schema=schema,
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=transform_pb2.SplitsConfig(
            analyze=[records.TRAIN_SPLIT], transform=list(records.SPLITS)
        ),
        custom_config=CUSTOM_CONFIG,
        disable_statistics=True,
    )


def test_it_is_a_transform_that_runs_the_uncompressed_executor():
    transform = _transform(
        tfx.dsl.Channel(type=standard_artifacts.Examples),
        tfx.dsl.Channel(type=standard_artifacts.Schema),
    ).with_id("Transform")
    assert isinstance(transform, tfx.components.Transform)
    assert transform.id == "Transform"
    assert transform.executor_spec.executor_class is executor.Executor
    assert issubclass(executor.Executor, tfx.components.Transform.EXECUTOR_SPEC.executor_class)
    assert transform.outputs["transformed_examples"].type is standard_artifacts.Examples


def record_codec_run_fn(fn_args):
    """A run_fn that reports what it was told and reads every record with that codec."""
    compression_type = compression.tf_compression_type(fn_args.examples_compression)
    count = sum(
        1
        for pattern in fn_args.train_files + fn_args.eval_files
        for _ in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type)
    )
    os.makedirs(fn_args.serving_model_dir)
    with open(os.path.join(fn_args.serving_model_dir, CODEC_FILE), "w") as f:
        json.dump({"codec": fn_args.examples_compression, "records": count}, f)


def _examples(dataset):
    """The tf.Examples of a dataset of records, in a fixed order (by image)."""
    examples = [tf.train.Example.FromString(r.numpy()) for r in dataset]
    return sorted(examples, key=lambda e: e.features.feature["image"].bytes_list.value[0])


def _write_sample(root, per_split=12):
    """The first records of the bundled sample, in the layout ImportExampleGen reads."""
    for split in records.SPLITS:
        files = records.split_files(bundled.SAMPLE_DIR, split)
        os.makedirs(os.path.join(root, split))
        with tf.io.TFRecordWriter(os.path.join(root, split, "part-0")) as writer:
            for record in tf.data.TFRecordDataset(files).take(per_split):
                writer.write(record.numpy())


@pytest.mark.slow
def test_in_a_pipeline_the_records_are_tfxs_uncompressed_and_run_fn_gets_the_codec(tmp_path):
    _write_sample(str(tmp_path / "input"))
    example_gen = tfx.components.ImportExampleGen(
        input_base=str(tmp_path / "input"),
        input_config=example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=split, pattern=f"{split}/*")
                for split in records.SPLITS
            ]
        ),
    )
    schema_gen = tfx.components.ImportSchemaGen(schema_file=bundled.schema_file("build_imagenet"))
    examples, schema = example_gen.outputs["examples"], schema_gen.outputs["schema"]
    ours = _transform(examples, schema).with_id("Transform")
    tfxs = _transform(examples, schema, tfx.components.Transform).with_id("TfxTransform")
    trainer = CodecTrainer(
        run_fn=f"{__name__}.record_codec_run_fn",
        examples=ours.outputs["transformed_examples"],
        transform_graph=ours.outputs["transform_graph"],
        train_args=tfx.proto.TrainArgs(splits=[records.TRAIN_SPLIT], num_steps=1),
        eval_args=tfx.proto.EvalArgs(splits=[records.VALIDATION_SPLIT], num_steps=1),
    ).with_id("Trainer")
    connection = metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite"))
    LocalDagRunner().run(
        pipeline.Pipeline(
            pipeline_name=PIPELINE_NAME,
            pipeline_root=str(tmp_path / "root"),
            components=[example_gen, schema_gen, ours, tfxs, trainer],
            metadata_connection_config=connection,
        )
    )
    store = metadata_store.MetadataStore(connection)
    # The property as published to ML Metadata, not only as set in the executor's process.
    published = store.get_artifacts_by_type(standard_artifacts.Examples.TYPE_NAME)
    (ours_examples,) = [a for a in published if "/Transform/transformed_examples/" in a.uri]
    (tfxs_examples,) = [a for a in published if "/TfxTransform/transformed_examples/" in a.uri]
    assert ours_examples.custom_properties[compression.PROPERTY].string_value == "NONE"
    assert compression.PROPERTY not in tfxs_examples.custom_properties
    assert compression.codec_of(ours_examples) == compression.NONE
    assert compression.codec_of(tfxs_examples) == compression.GZIP
    # The payload format TFX's Transform leaves out (its readers warn, then assume tf.Example).
    payload = example_gen_utils.PAYLOAD_FORMAT_PROPERTY_NAME
    assert ours_examples.custom_properties[payload].string_value == "FORMAT_TF_EXAMPLE"
    assert payload not in tfxs_examples.custom_properties
    ours_uri, tfxs_uri = ours_examples.uri, tfxs_examples.uri

    for split in records.SPLITS:
        our_files = tf.io.gfile.glob(os.path.join(ours_uri, f"Split-{split}", "*"))
        tfx_files = tf.io.gfile.glob(os.path.join(tfxs_uri, f"Split-{split}", "*"))
        assert our_files and all(f.endswith(executor.OUTPUT_SUFFIX) for f in our_files)
        assert tfx_files and all(f.endswith(".gz") for f in tfx_files)
        ours_records = _examples(tf.data.TFRecordDataset(our_files, ""))
        tfx_records = _examples(tf.data.TFRecordDataset(tfx_files, "GZIP"))
        assert len(ours_records) == len(tfx_records) == 12
        # The same records: images, labels, synsets exactly; the analyzers' statistics up to
        # float32 summation order (Beam combines partial sums in any order).
        for got, want in zip(ours_records, tfx_records, strict=True):
            got, want = got.features.feature, want.features.feature
            assert set(got) == set(want)
            for key in got:
                if got[key].HasField("float_list"):
                    np.testing.assert_allclose(
                        got[key].float_list.value, want[key].float_list.value, rtol=1e-4
                    )
                else:
                    assert got[key] == want[key], key

    (model,) = store.get_artifacts_by_type(standard_artifacts.Model.TYPE_NAME)
    with open(os.path.join(model.uri, "Format-Serving", CODEC_FILE)) as f:
        assert json.load(f) == {"codec": "NONE", "records": 24}


def _write(records: list[bytes], directory, *beam_args: str) -> dict[str, bytes]:
    """``WriteCanonicalTFRecords`` of ``records`` in a Beam pipeline; the files written."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as p:
        _ = (
            p
            | beam.Create(records, reshuffle=False)
            | executor.WriteCanonicalTFRecords(str(directory / "out"))
        )
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_the_records_are_framed_as_tensorflow_frames_them_and_checked(tmp_path):
    """The framing and masked CRC-32C are TensorFlow's: tf.data verifies both."""
    values = [b"", b"x", bytes(range(256)) * 700]
    ((name, written),) = _write(values, tmp_path).items()
    assert name == "out-00000-of-00001.tfrecord"
    reference = tmp_path / "reference"
    with tf.io.TFRecordWriter(str(reference)) as writer:
        for value in values:
            writer.write(value)
    path = str(tmp_path / name)
    assert sorted(r.numpy() for r in tf.data.TFRecordDataset(path)) == sorted(values)
    assert len(written) == reference.stat().st_size
    corrupted = tmp_path / "corrupted.tfrecord"
    corrupted.write_bytes(written[:-1] + bytes([written[-1] ^ 1]))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(corrupted)))


def test_the_layout_depends_on_the_records_alone(tmp_path):
    """2,500 records in one order on one worker, and in another over two worker processes:
    the same shards, byte for byte: three of them, each sorted by the records' SHA-256."""
    records = [i.to_bytes(4, "big") * 8 for i in range(2500)]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _write(records, tmp_path / "one")
    two = _write(
        records[::-1],
        tmp_path / "two",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    )
    assert one == two
    assert sorted(one) == [f"out-0000{i}-of-00003.tfrecord" for i in range(3)]
    shards = [
        [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "one" / name))]
        for name in sorted(one)
    ]
    assert sorted(r for shard in shards for r in shard) == sorted(records)
    for shard in shards:
        digests = [hashlib.sha256(r).digest() for r in shard]
        assert digests == sorted(digests)


def test_an_example_gets_the_same_bytes_whatever_order_its_features_came_in():
    """Two Examples concatenated parse as one with both features (protobuf merges them): in
    either order, other bytes for the same example, until made canonical."""
    image = tf.train.Example(
        features=tf.train.Features(
            feature={"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\x00" * 9]))}
        )
    ).SerializeToString()
    label = tf.train.Example(
        features=tf.train.Features(
            feature={"class_index": tf.train.Feature(int64_list=tf.train.Int64List(value=[3]))}
        )
    ).SerializeToString()
    assert image + label != label + image
    assert tf.train.Example.FromString(image + label) == tf.train.Example.FromString(label + image)
    canonical = executor.canonical_example(label + image)
    assert canonical == executor.canonical_example(image + label)
    assert tf.train.Example.FromString(canonical) == tf.train.Example.FromString(image + label)
