"""``create_pipeline``: the one definition of the pipeline, for every orchestrator.

Components in data order: ImportExampleGen (or RawImageNetExampleGen) -> Quarantine ->
StatisticsGen -> ImportSchemaGen -> ExampleValidator -> Transform -> Trainer -> Resolver
(latest blessed model; on open-source Kubeflow, the latest pushed one) -> Evaluator -> Pusher.
Every setting is an argument (the step configs, Beam arguments and resources per kind of
step), so the runners only build paths and call this.
Module code is referenced by import path, never by file, so the same definition compiles for
the local runner and for Kubeflow (where the package is baked into the image).

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
from components.pushed_baseline import component as pushed_baseline
from components.quarantine import component as quarantine_component
from components.raw_imagenet_example_gen.component import RawImageNetExampleGen
from components.uncompressed_transform.component import UncompressedTransform
from data import records
from models import catalog
from models.config import (
    TrainerConfig,
    TransformConfig,
    trainer_custom_config,
    transform_custom_config,
)
from pipeline import code_fingerprint, configs
from pipeline.eval_config import GateConfig, make_eval_config


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root,
    schema_file: str,
    serving_dir: str,
    transform: TransformConfig,
    trainer: TrainerConfig,
    gate: GateConfig,
    raw_tree: bool = False,
    validation_labels: str | None = None,
    max_rejected_fraction: float = quarantine_component.MAX_REJECTED_FRACTION,
    max_image_pixels: int = quarantine_component.MAX_IMAGE_PIXELS,
    beam_pipeline_args: list[str] | None = None,
    beam_platform_config=None,
    trainer_platform_config=None,
    metadata_connection_config=None,
    enable_cache: bool = True,
    baseline: str = configs.BASELINE_RESOLVER,
) -> tfx.dsl.Pipeline:
    """The pipeline.

    ``data_root`` (a path, or a RuntimeParameter when compiled) holds TFRecord shards
    (``train-*``, ``validation-*``) in ``transform.record_format``, or, with ``raw_tree``, the
    raw ILSVRC-2012 JPEG tree (``data.preflight``; a flat ``val/`` needs
    ``validation_labels``). ``beam_pipeline_args`` go to the steps that run Beam, and only to
    them; ``beam_platform_config`` and ``trainer_platform_config`` (e.g. KFP ResourceSpecs)
    size those steps' and the Trainer's containers on orchestrators that honour them.
    ``baseline`` is where the gate's baseline comes from: TFX's Resolver (the last blessed
    model in ML Metadata), or, where no Resolver runs, the newest model pushed to
    ``serving_dir`` (``components.pushed_baseline``).
    """
    if raw_tree:
        example_gen = RawImageNetExampleGen(
            input_base=data_root, validation_labels=validation_labels
        ).with_id(configs.RAW_EXAMPLE_GEN)
    else:
        example_gen = tfx.components.ImportExampleGen(
            input_base=data_root,
            input_config=example_gen_pb2.Input(
                splits=[
                    example_gen_pb2.Input.Split(name=split, pattern=records.split_glob(split))
                    for split in records.SPLITS
                ]
            ),
        ).with_id(configs.EXAMPLE_GEN)
    quarantine = quarantine_component.Quarantine(
        examples=example_gen.outputs["examples"],
        record_format=transform.record_format,
        max_rejected_fraction=max_rejected_fraction,
        max_image_pixels=max_image_pixels,
    ).with_id(configs.QUARANTINE)
    examples = quarantine.outputs["examples"]
    statistics_gen = tfx.components.StatisticsGen(examples=examples).with_id(configs.STATISTICS_GEN)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file).with_id(configs.SCHEMA_GEN)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id(configs.EXAMPLE_VALIDATOR)
    # TFX's Transform writing uncompressed TFRecords, and saying so on its output artifact.
    transform_component = UncompressedTransform(
        examples=examples,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=configs.PREPROCESSING_FN,
        splits_config=transform_pb2.SplitsConfig(
            analyze=[records.TRAIN_SPLIT], transform=list(records.SPLITS)
        ),
        custom_config=transform_custom_config(
            transform, code_fingerprint.fingerprint([_module(configs.PREPROCESSING_FN)])
        ),
        # StatisticsGen already describes the raw data; statistics of one opaque bytes
        # feature per image would cost memory and time and say nothing.
        disable_statistics=True,
    ).with_id(configs.TRANSFORM)
    if trainer.checkpoint_root is None:
        checkpoint_root = os.path.join(pipeline_root, configs.CHECKPOINT_DIR_NAME)
        trainer = dataclasses.replace(trainer, checkpoint_root=checkpoint_root)
    # TFX's Trainer handing run_fn the codec recorded on the transformed examples.
    trainer_component = CodecTrainer(
        run_fn=configs.RUN_FN,
        examples=transform_component.outputs["transformed_examples"],
        transform_graph=transform_component.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        # The steps are the config's (run_fn reads them there); TrainArgs names the splits
        # and shows the step count where TFX's tools look for it.
        train_args=tfx.proto.TrainArgs(splits=[records.TRAIN_SPLIT], num_steps=trainer.train_steps),
        eval_args=tfx.proto.EvalArgs(
            splits=[records.VALIDATION_SPLIT], num_steps=trainer.eval_steps
        ),
        custom_config=trainer_custom_config(
            transform,
            trainer,
            code_fingerprint.fingerprint(
                [_module(configs.RUN_FN), catalog.get(trainer.model).module]
            ),
        ),
    ).with_id(configs.TRAINER)
    if baseline == configs.BASELINE_RESOLVER:
        baseline_step = tfx.dsl.Resolver(
            strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
            model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
            model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        ).with_id(configs.MODEL_RESOLVER)
        evaluator_class = tfx.components.Evaluator
    elif baseline == configs.BASELINE_PUSHED:
        baseline_step = pushed_baseline.LatestPushedModel(serving_dir).with_id(
            configs.LATEST_PUSHED_MODEL
        )
        evaluator_class = pushed_baseline.Evaluator
    else:
        raise ValueError(f"baseline {baseline!r}: expected one of {configs.BASELINES}")
    evaluator = evaluator_class(
        examples=examples,
        model=trainer_component.outputs["model"],
        baseline_model=baseline_step.outputs["model"],
        example_splits=[records.VALIDATION_SPLIT],
        eval_config=make_eval_config(gate, ten_crop=transform.stored_size > transform.crop_size),
    ).with_id(configs.EVALUATOR)
    pusher = AtomicPusher(
        model=trainer_component.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)
        ),
    ).with_id(configs.PUSHER)

    beam_steps = [example_gen, quarantine, statistics_gen, transform_component, evaluator]
    for step in beam_steps:
        if beam_pipeline_args:
            step.with_beam_pipeline_args(beam_pipeline_args)
        # TFX 1.16 drops platform config on FileBasedExampleGen, which only copies records.
        if beam_platform_config is not None and step is not example_gen:
            step.with_platform_config(beam_platform_config)
    if trainer_platform_config is not None:
        trainer_component.with_platform_config(trainer_platform_config)
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            example_gen,
            quarantine,
            statistics_gen,
            schema_gen,
            example_validator,
            transform_component,
            trainer_component,
            baseline_step,
            evaluator,
            pusher,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
    )


def _module(function_path: str) -> str:
    """``models.trainer`` of ``models.trainer.run_fn``."""
    return function_path.rsplit(".", 1)[0]
