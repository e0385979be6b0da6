"""CodecTrainer: TFX's Trainer interface; its executor reads the examples' codec from the
artifact into fn_args. (A real pipeline run with ML Metadata in between:
components/uncompressed_transform/component_test.py.)"""

import pytest
from tfx import v1 as tfx
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.codec_trainer import executor
from components.codec_trainer.component import CodecTrainer
from data import compression


def test_it_is_a_trainer_that_runs_the_codec_executor():
    trainer = CodecTrainer(
        run_fn="models.trainer.run_fn",
        examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
        transform_graph=tfx.dsl.Channel(type=standard_artifacts.TransformGraph),
    ).with_id("Trainer")
    assert isinstance(trainer, tfx.components.Trainer)
    assert trainer.id == "Trainer"
    assert trainer.executor_spec.executor_class is executor.Executor


def _examples(tmp_path, name, codec=None):
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path / name)
    artifact.split_names = '["train", "eval"]'
    if codec:
        compression.set_codec(artifact, codec)
    return artifact


def _fn_args(tmp_path, examples):
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")
    return executor.Executor()._GetFnArgs(
        {standard_component_specs.EXAMPLES_KEY: examples},
        {
            standard_component_specs.MODEL_KEY: [model],
            standard_component_specs.MODEL_RUN_KEY: [model_run],
        },
        {
            standard_component_specs.TRAIN_ARGS_KEY: proto_utils.proto_to_json(
                tfx.proto.TrainArgs(num_steps=3)
            ),
            standard_component_specs.EVAL_ARGS_KEY: proto_utils.proto_to_json(
                tfx.proto.EvalArgs(num_steps=1)
            ),
            standard_component_specs.CUSTOM_CONFIG_KEY: '{"batch_size": 8}',
        },
    )


@pytest.mark.parametrize(
    "codec, expected",
    [(compression.NONE, "NONE"), (compression.GZIP, "GZIP"), (None, "GZIP")],
)
def test_fn_args_carry_the_codec_of_the_artifact(tmp_path, codec, expected):
    fn_args = _fn_args(tmp_path, [_examples(tmp_path, "e", codec)])
    assert isinstance(fn_args, executor.CodecFnArgs)
    assert fn_args.examples_compression == expected
    # Everything TFX's executor put there is still there.
    assert fn_args.train_steps == 3 and fn_args.custom_config == {"batch_size": 8}
    assert fn_args.train_files == [str(tmp_path / "e" / "Split-train" / "*")]
    assert fn_args.serving_model_dir.startswith(str(tmp_path / "model"))


def test_examples_of_different_codecs_are_refused(tmp_path):
    examples = [_examples(tmp_path, "a", compression.NONE), _examples(tmp_path, "b")]
    with pytest.raises(ValueError, match="different codecs"):
        _fn_args(tmp_path, examples)
