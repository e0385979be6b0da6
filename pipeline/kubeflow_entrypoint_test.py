"""The open-source backend's entrypoint: untyped inputs typed again (TFX's own entrypoint fails
on them), artifacts through their references and back, ExampleGen's driver as a step.
The whole entrypoint runs every step of tests/kubeflow_local_e2e_test.py."""

from __future__ import annotations

import argparse
import json
import os
import shutil

import pytest
import tensorflow as tf
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
from tfx.types import standard_artifacts

from data import bundled
from pipeline import kubeflow_entrypoint

EXAMPLES_SCHEMA = "title: tfx.Examples\ntype: object\n"
INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}}}}


def _untyped_input(uri: str) -> pipeline_spec_pb2.ExecutorInput:
    """An input artifact as the open-source backend hands it over (driver/driver.go,
    metadata/client.go): named by its id, ``instanceSchema`` empty."""
    return json_format.ParseDict(
        {
            "inputs": {
                "artifacts": {
                    "examples": {
                        "artifacts": [
                            {
                                "name": "17",
                                "type": {"instanceSchema": ""},
                                "uri": uri,
                                "metadata": {"split_names": '["train", "validation"]'},
                            }
                        ]
                    }
                }
            }
        },
        pipeline_spec_pb2.ExecutorInput(),
    )


def test_tfx_fails_on_an_untyped_input_and_typed_restores_the_declared_type():
    executor_input = _untyped_input("gs://b/examples")
    with pytest.raises(AttributeError):  # tensorflow/tfx#7768: yaml.safe_load("") is None
        kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(executor_input.inputs.artifacts)
    spec = json_format.ParseDict(INPUTS_SPEC, pipeline_spec_pb2.ComponentInputsSpec())
    kubeflow_entrypoint.typed(executor_input, spec)
    parsed = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(executor_input.inputs.artifacts)
    (examples,) = parsed["examples"]
    assert isinstance(examples, standard_artifacts.Examples)
    assert (examples.uri, examples.split_names) == ("gs://b/examples", '["train", "validation"]')


def test_an_artifact_goes_by_reference_and_comes_back_as_it_left(tmp_path):
    """The producer's output, with what its executor wrote to the output file, is the
    consumer's input artifact; unnamed before KFP 2.15, it is named by its URI."""
    producer = json_format.ParseDict(
        {
            "outputs": {
                "artifacts": {
                    "examples": {
                        "artifacts": [
                            {"name": "", "uri": "gs://b/run/task/examples", "metadata": {}}
                        ]
                    }
                },
                "outputFile": str(tmp_path / "output_metadata.json"),
            }
        },
        pipeline_spec_pb2.ExecutorInput(),
    )
    written = {"artifacts": {"examples": {"artifacts": [{"metadata": {"compression": "NONE"}}]}}}
    (tmp_path / "output_metadata.json").write_text(json.dumps(written))
    kubeflow_entrypoint.to_references(producer, str(tmp_path / "output_metadata.json"))
    output = json.loads((tmp_path / "output_metadata.json").read_text())
    parameter = output["parameterValues"]["examples_artifact"]
    assert output["artifacts"] == written["artifacts"]  # what the launcher records, kept

    consumer = json_format.ParseDict(
        {"inputs": {"parameterValues": {"examples_artifact": parameter, "splits": "[]"}}},
        pipeline_spec_pb2.ExecutorInput(),
    )
    spec = json_format.ParseDict(INPUTS_SPEC, pipeline_spec_pb2.ComponentInputsSpec())
    kubeflow_entrypoint.from_references(consumer, spec)
    assert dict(consumer.inputs.parameter_values) == {
        "splits": consumer.inputs.parameter_values["splits"]
    }
    (artifact,) = consumer.inputs.artifacts["examples"].artifacts
    assert artifact.name == artifact.uri == "gs://b/run/task/examples"
    assert json_format.MessageToDict(artifact.metadata) == {"compression": "NONE"}


def _lookup(role: str, parameters: dict, output_file) -> dict:
    """A lookup step as the spec runs it; its output parameters."""
    executor_input = {
        "inputs": {"parameterValues": parameters},
        "outputs": {"outputFile": str(output_file)},
    }
    args = argparse.Namespace(json_serialized_invocation_args=json.dumps(executor_input))
    kubeflow_entrypoint.run_lookup(role, args)
    with open(output_file) as f:
        return json.load(f)["parameterValues"]


def test_the_input_fingerprint_step_fingerprints_the_data_it_would_ingest(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(bundled.SAMPLE_DIR, data)
    role = kubeflow_entrypoint.INPUT_FINGERPRINT_ROLE
    parameters = {
        "input_base": str(data),
        "input_config": json.dumps({"splits": [{"name": "train", "pattern": "train-*"}]}),
    }
    first = _lookup(role, parameters, tmp_path / "first.json")
    assert first["span"] == 0
    assert "split:train" in first["input_fingerprint"]
    assert json.loads(first["input_config"])["splits"][0]["pattern"] == "train-*"
    assert _lookup(role, parameters, tmp_path / "again.json") == first
    shard = sorted(p for p in os.listdir(data) if p.startswith("train-"))[0]
    with open(data / shard, "ab") as f:
        f.write(b"\0")  # one byte more: another file
    changed = _lookup(role, parameters, tmp_path / "changed.json")
    assert changed["input_fingerprint"] != first["input_fingerprint"]


def test_the_pushed_model_step_names_the_newest_model_by_its_content(tmp_path):
    """The same model pushed again has the same fingerprint; another model another; none ""."""
    role = kubeflow_entrypoint.PUSHED_MODEL_FINGERPRINT_ROLE
    serving = tmp_path / "serving"
    parameters = {"serving_dir": str(serving)}
    assert _lookup(role, parameters, tmp_path / "none.json") == {"pushed_model_fingerprint": ""}
    model = tf.Module()
    model.v = tf.Variable([1.0, 2.0])
    tf.saved_model.save(model, str(serving / "1700000000"))
    first = _lookup(role, parameters, tmp_path / "first.json")["pushed_model_fingerprint"]
    shutil.copytree(serving / "1700000000", serving / "1700000100")
    assert _lookup(role, parameters, tmp_path / "again.json") == {"pushed_model_fingerprint": first}
    model.v.assign([3.0, 4.0])
    tf.saved_model.save(model, str(serving / "1700000200"))
    other = _lookup(role, parameters, tmp_path / "other.json")["pushed_model_fingerprint"]
    assert first and other and other != first
