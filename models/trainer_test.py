"""Tests for models/trainer.py and models/signatures.py, without an orchestrator.

A real tf.Transform run (Beam, in memory) over bundled sample records produces the transform
graph and transformed records that the TFX Transform component would; ``run_fn`` then trains
on them and exports, exactly as the Trainer component calls it.
"""

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
from tfx.components.trainer.fn_args_utils import FnArgs

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from data import bundled, compression, records
from models import catalog, trainer
from models import preprocessing as pp
from models.augmentation import Augment
from models.config import (
    TrainerConfig,
    TransformConfig,
    parse_trainer_custom_config,
    transform_custom_config,
)

RAW_SPEC = {
    records.ENCODED: tf.io.FixedLenFeature([], tf.string),
    records.LABEL: tf.io.FixedLenFeature([], tf.int64),
}


def _sample_records(split, limit):
    files = records.split_files(bundled.SAMPLE_DIR, split)
    return [r.numpy() for r in tf.data.TFRecordDataset(files).take(limit)]


def transform_sample(out_dir, model="alexnet", store_full_region=False, n_train=48, n_eval=16):
    """Runs tf.Transform over sample records and writes them as the UncompressedTransform does
    (uncompressed TFRecords); returns (transform dir, train glob, eval glob)."""
    config = transform_custom_config(
        TransformConfig.for_model(
            model, store_full_region=store_full_region, analyzer_sample_one_in=1
        ),
        "test",
    )
    schema = schema_utils.schema_from_feature_spec(RAW_SPEC)
    metadata = dataset_metadata.DatasetMetadata(schema)
    transform_dir = os.path.join(out_dir, "transform_graph")
    with beam.Pipeline() as p, tft_beam.Context(temp_dir=os.path.join(out_dir, "tmp")):

        def read(split, n):
            instances = [
                {k: v.numpy() for k, v in tf.io.parse_single_example(r, RAW_SPEC).items()}
                for r in _sample_records(split, n)
            ]
            return p | f"Create{split}" >> beam.Create(instances)

        (train, train_meta), transform_fn = (
            read("train", n_train),
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(pp.preprocessing_fn, custom_config=config)
        )
        evaluation, _ = (
            (read("validation", n_eval), metadata),
            transform_fn,
        ) | tft_beam.TransformDataset()
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
        _ = metadata | tft_beam.WriteMetadata(
            os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR), pipeline=p
        )
        for name, data in (("train", train), ("eval", evaluation)):
            _ = data | f"Write{name}" >> beam.io.WriteToTFRecord(
                os.path.join(out_dir, name, "part"),
                coder=tft.coders.ExampleProtoCoder(train_meta.schema),
                file_name_suffix=".tfrecord",
                compression_type=beam.io.filesystem.CompressionTypes.UNCOMPRESSED,
            )
    return transform_dir, os.path.join(out_dir, "train", "*"), os.path.join(out_dir, "eval", "*")


def fn_args(tmp, transform_dir, train_glob, eval_glob, train_steps, **config):
    """What the CodecTrainer's executor hands run_fn for these files, for ``TrainerConfig(
    **config)`` on the default Transform of ``transform_sample``: TFX's FnArgs and the codec
    of the records (components/codec_trainer)."""
    trainer_config = TrainerConfig(train_steps=train_steps, eval_steps=2, **config)
    args = FnArgs(
        train_files=[train_glob],
        eval_files=[eval_glob],
        transform_output=transform_dir,
        serving_model_dir=os.path.join(tmp, "serving_model"),
        model_run_dir=os.path.join(tmp, "model_run"),
        train_steps=train_steps,
        eval_steps=2,
        custom_config={
            "transform": dataclasses.asdict(TransformConfig(analyzer_sample_one_in=1)),
            "trainer": dataclasses.asdict(trainer_config),
        },
    )
    args.examples_compression = compression.NONE
    return args


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    return transform_sample(str(tmp_path_factory.mktemp("transform")))


@pytest.fixture(scope="module")
def exported(transformed, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("trainer"))
    args = fn_args(tmp, *transformed, train_steps=4, batch_size=8, steps_per_epoch=2)
    trainer.run_fn(args)
    return args


def test_run_fn_trains_and_writes_history(exported):
    with open(os.path.join(exported.model_run_dir, trainer.HISTORY_FILE)) as f:
        history = json.load(f)
    assert history["epoch"] == [1, 2]
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(np.isfinite(history["loss"]))
    # The objective is the cross-entropy plus the weight-decay penalty, logged apart: the
    # Evaluator's loss is the cross-entropy alone.
    for total, cross_entropy in zip(history["loss"], history["cross_entropy"], strict=True):
        assert total > cross_entropy > 0
    assert len(history["val_cross_entropy"]) == 2


def test_export_has_the_networks_weights_and_nothing_else(exported, transformed):
    """No optimizer slots, and the on-device augmentation adds no weight: its statistics are
    constants of the graph."""
    variables = tf.saved_model.load(exported.serving_model_dir).variables
    names = [v.name for v in variables]
    assert not [n for n in names if "SGD" in n or "momentum" in n.lower()]
    num_classes = tft.TFTransformOutput(transformed[0]).vocabulary_size_by_name(
        pp.CLASSES_VOCABULARY
    )
    network = catalog.get("alexnet").build(num_classes=num_classes, initialization="glorot")
    assert len(variables) == len(network.weights)
    weights = sum(int(np.prod(v.shape)) for v in variables)
    assert weights == network.count_params() > 50_000_000  # AlexNet's ~58M at 6 classes, once


def checkpoint_tensors(serving_model_dir: str) -> dict[str, bytes]:
    """The exported model's variables as bytes, by checkpoint key (the object graph aside: a
    serialized proto, not a tensor)."""
    reader = tf.train.load_checkpoint(os.path.join(serving_model_dir, "variables", "variables"))
    return {
        name: reader.get_tensor(name).tobytes()
        for name, dtype in reader.get_variable_to_dtype_map().items()
        if dtype != tf.string
    }


def test_the_same_seed_gives_the_same_weights_another_seed_others(exported, transformed, tmp_path):
    """Trained again in this process (another Keras graph, other layer names), with the same
    settings: the same tensors, bit for bit; with seed 1: others."""
    again = fn_args(
        str(tmp_path / "a"), *transformed, train_steps=4, batch_size=8, steps_per_epoch=2
    )
    trainer.run_fn(again)
    assert checkpoint_tensors(again.serving_model_dir) == checkpoint_tensors(
        exported.serving_model_dir
    )
    other = fn_args(
        str(tmp_path / "b"), *transformed, train_steps=4, batch_size=8, steps_per_epoch=2, seed=1
    )
    trainer.run_fn(other)
    reference, changed = (
        checkpoint_tensors(exported.serving_model_dir),
        checkpoint_tensors(other.serving_model_dir),
    )
    assert reference.keys() == changed.keys()
    assert any(reference[name] != changed[name] for name in reference)


def test_run_fn_refuses_to_guess_the_codec(transformed, tmp_path):
    args = fn_args(str(tmp_path), *transformed, train_steps=1)
    args.examples_compression = None
    with pytest.raises(ValueError, match="CodecTrainer"):
        trainer.run_fn(args)


def test_the_models_input_is_the_stored_uint8_region(exported, transformed):
    loaded = tf_keras.models.load_model(
        exported.serving_model_dir, custom_objects={"Augment": Augment}, compile=False
    )
    assert loaded.input.dtype == tf.uint8
    assert loaded.input.shape.as_list() == [None, 227, 227, 3]
    num_classes = tft.TFTransformOutput(transformed[0]).vocabulary_size_by_name(
        pp.CLASSES_VOCABULARY
    )
    assert loaded.output.shape.as_list() == [None, num_classes]


def test_signatures_agree_with_each_other_and_with_transform(exported, transformed):
    loaded = tf.saved_model.load(exported.serving_model_dir)
    raw = _sample_records("validation", 6)
    by_examples = loaded.signatures["serving_default"](examples=tf.constant(raw))
    encoded = [
        tf.train.Example.FromString(r).features.feature[records.ENCODED].bytes_list.value[0]
        for r in raw
    ]
    by_bytes = loaded.signatures["serving_image_bytes"](image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(by_examples["probabilities"], by_bytes["probabilities"], atol=1e-6)
    np.testing.assert_allclose(tf.reduce_sum(by_examples["probabilities"], 1), 1.0, atol=1e-5)
    for key in ("top5_class_indices", "top5_synsets", "top5_names", "top5_probabilities"):
        assert by_examples[key].shape == (6, 5)
    # The serving path decodes and crops exactly as the materialised Transform output did.
    served = loaded.signatures["transform_features"](examples=tf.constant(raw))
    transform_dir, _, eval_glob = transformed
    spec = tft.TFTransformOutput(transform_dir).transformed_feature_spec()
    materialised = {
        features[pp.IMAGE_KEY].numpy()
        for features in tf.data.TFRecordDataset(tf.io.gfile.glob(eval_glob), "").map(
            lambda s: tf.io.parse_single_example(s, spec)
        )
    }
    assert all(image in materialised for image in served[pp.IMAGE_KEY].numpy())


def test_top5_names_match_the_classes_list(exported):
    loaded = tf.saved_model.load(exported.serving_model_dir)
    out = loaded.signatures["serving_default"](examples=tf.constant(_sample_records("train", 2)))
    from data import imagenet_classes

    for index, synset, name in zip(
        out["top5_class_indices"].numpy().ravel(),
        out["top5_synsets"].numpy().ravel(),
        out["top5_names"].numpy().ravel(),
        strict=True,
    ):
        assert imagenet_classes.synset_of(int(index)) == synset.decode()
        assert imagenet_classes.name_of(int(index)) == name.decode()


def test_epoch_length_divides_the_steps_exactly():
    assert trainer.epoch_length(120, 20) == 20
    assert trainer.epoch_length(7, 20) == 7
    assert trainer.epoch_length(30, 20) == 15
    assert trainer.epoch_length(1, 20) == 1


def test_the_schedule_counts_epochs_in_full_batches_of_the_records():
    # 308 records in batches of 128: two full batches a pass, the last 52 dropped.
    paper = TrainerConfig(epochs=3, batch_size=128)
    assert trainer.schedule(paper, 308) == trainer.Schedule(steps=6, steps_per_epoch=2)
    # A step count wins; validation every 20 steps, or as often as divides 50 exactly.
    sample = TrainerConfig(train_steps=50, steps_per_epoch=20, batch_size=16)
    assert trainer.schedule(sample, None) == trainer.Schedule(steps=50, steps_per_epoch=10)
    # Steps without an epoch length: validation after each pass over the records.
    assert trainer.schedule(TrainerConfig(train_steps=12, batch_size=10), 60) == (
        trainer.Schedule(steps=12, steps_per_epoch=6)
    )
    assert trainer.schedule(TrainerConfig(train_steps=0), 60) == trainer.Schedule(0, 0)
    with pytest.raises(ValueError, match="100 training records make no batch of 128"):
        trainer.schedule(TrainerConfig(epochs=1, batch_size=128), 100)
    assert trainer.needs_record_count(paper) and not trainer.needs_record_count(sample)


def test_unknown_custom_config_key_is_a_clear_error():
    with pytest.raises(ValueError, match="learning_rat"):
        parse_trainer_custom_config({"trainer": {"learning_rat": 0.1}})
    with pytest.raises(ValueError, match="takes 227"):  # a Transform made for another model
        parse_trainer_custom_config(
            {"transform": {"crop_size": 32}, "trainer": {"model": "alexnet"}}
        )


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_with_mixed_precision(transformed, tmp_path):
    """MirroredStrategy with mixed precision trains the real AlexNet on 2 logical CPU devices,
    to the same weights twice.

    Logical devices must be configured before TensorFlow initialises, so this runs in a fresh
    interpreter.
    """
    script = textwrap.dedent(
        f"""
        import models, json, os
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from models import trainer
        from models.trainer_test import fn_args
        from models.trainer_test import checkpoint_tensors
        weights = []
        for run in ("a", "b"):  # twice: the same weights
            args = fn_args(os.path.join({str(tmp_path)!r}, run), *{transformed!r}, train_steps=2,
                           batch_size=4, steps_per_epoch=2, distribution="mirrored",
                           mixed_precision="mixed_bfloat16")
            strategy = trainer.make_strategy("mirrored")
            assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
            trainer.run_fn(args)
            weights.append(checkpoint_tensors(args.serving_model_dir))
        history = json.load(open(os.path.join(args.model_run_dir, trainer.HISTORY_FILE)))
        import math, tf_keras
        assert tf_keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert all(math.isfinite(v) for v in history["loss"]), history
        assert weights[0] == weights[1]
        print("TRAINED", history["loss"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRAINED" in result.stdout
