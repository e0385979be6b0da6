"""``create_pipeline``: the one definition of the pipeline, for every orchestrator.

Components in data order: ImportExampleGen (or RawImageNetExampleGen) -> Quarantine ->
StatisticsGen -> ImportSchemaGen -> ExampleValidator -> Transform -> Trainer -> Resolver
(latest blessed model) -> Evaluator -> Pusher. Module code is referenced by import path,
never by file, so the same definition compiles for the local runner and for Kubeflow (where
the package is baked into the image).

Why ImportSchemaGen: the record contract is fixed (``data/schema/<format>.pbtxt``, reviewed
code), while SchemaGen would bless whatever the first run's data held, e.g. a label domain of
the few classes in a sample.
"""

from __future__ import annotations

import dataclasses
import os

from tfx import v1 as tfx
from tfx.proto import example_gen_pb2, transform_pb2

from components.atomic_pusher.component import AtomicPusher
from components.codec_trainer.component import CodecTrainer
from components.quarantine.component import Quarantine
from components.raw_imagenet_example_gen.component import RawImageNetExampleGen
from components.uncompressed_transform.component import UncompressedTransform
from data import records
from models import catalog, trainer
from pipeline import configs
from pipeline.eval_config import make_eval_config


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    record_format: str,
    schema_file: str,
    serving_dir: str,
    raw_tree: bool = False,
    validation_labels: str | None = None,
    model: str = configs.MODEL,
    train_steps: int = configs.TRAIN_STEPS,
    eval_steps: int = configs.EVAL_STEPS,
    store_full_region: bool = False,
    analyzer_sample_one_in: int = configs.ANALYZER_SAMPLE_ONE_IN,
    trainer_config: dict | None = None,
    min_top1: float = configs.MIN_TOP1_ACCURACY,
    max_top1_drop: float = configs.MAX_TOP1_DROP,
    max_rejected_fraction: float = configs.MAX_REJECTED_FRACTION,
    max_image_pixels: int = configs.MAX_IMAGE_PIXELS,
    beam_pipeline_args: list[str] | None = None,
    metadata_connection_config=None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """The pipeline.

    ``data_root`` holds TFRecord shards (``train-*``, ``validation-*``) in ``record_format``,
    or, with ``raw_tree``, the raw ILSVRC-2012 JPEG tree (``train/<synset>/``, ``val/``; a
    flat ``val/`` needs ``validation_labels``). ``trainer_config`` holds
    ``models.trainer.TrainerConfig`` overrides. ``analyzer_sample_one_in``: Transform measures
    the pixel statistics on the hash-sampled ~1/k of the training images
    (``models.preprocessing``).
    """
    entry = catalog.get(model)
    if raw_tree:
        example_gen = RawImageNetExampleGen(
            input_base=data_root, validation_labels=validation_labels
        )
    else:
        example_gen = tfx.components.ImportExampleGen(
            input_base=data_root,
            input_config=example_gen_pb2.Input(
                splits=[
                    example_gen_pb2.Input.Split(name=split, pattern=records.split_glob(split))
                    for split in records.SPLITS
                ]
            ),
        )
    quarantine = Quarantine(
        examples=example_gen.outputs["examples"],
        record_format=record_format,
        max_rejected_fraction=max_rejected_fraction,
        max_image_pixels=max_image_pixels,
    )
    examples = quarantine.outputs["examples"]
    statistics_gen = tfx.components.StatisticsGen(examples=examples)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    # TFX's Transform writing uncompressed TFRecords, and saying so on its output artifact.
    transform = UncompressedTransform(
        examples=examples,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=configs.PREPROCESSING_FN,
        splits_config=transform_pb2.SplitsConfig(
            analyze=[records.TRAIN_SPLIT], transform=list(records.SPLITS)
        ),
        custom_config={
            "record_format": record_format,
            "resize_size": entry.resize_size,
            "crop_size": entry.crop_size,
            "store_full_region": store_full_region,
            "analyzer_sample_one_in": analyzer_sample_one_in,
        },
        # StatisticsGen already describes the raw data; statistics of one opaque bytes
        # feature per image would cost memory and time (~3 GB on 1k images in a prototype)
        # and say nothing.
        disable_statistics=True,
    ).with_id("Transform")
    # TFX's Trainer handing run_fn the codec recorded on the transformed examples.
    trainer_component = CodecTrainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[records.TRAIN_SPLIT], num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(splits=[records.VALIDATION_SPLIT], num_steps=eval_steps),
        custom_config=dataclasses.asdict(
            trainer.TrainerConfig(
                model=model,
                record_format=record_format,
                store_full_region=store_full_region,
                checkpoint_root=os.path.join(pipeline_root, configs.CHECKPOINT_DIR_NAME),
                **(trainer_config or {}),
            )
        ),
    ).with_id("Trainer")
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=examples,
        model=trainer_component.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=[records.VALIDATION_SPLIT],
        eval_config=make_eval_config(min_top1=min_top1, max_top1_drop=max_top1_drop),
    )
    pusher = AtomicPusher(
        model=trainer_component.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)
        ),
    ).with_id("Pusher")
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            example_gen,
            quarantine,
            statistics_gen,
            schema_gen,
            example_validator,
            transform,
            trainer_component,
            model_resolver,
            evaluator,
            pusher,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args,
    )
