"""What every step's container runs on open-source Kubeflow Pipelines: TFX's own entrypoint,
with the artifacts passed by reference (``pipeline.kubeflow_oss``), and the lookups that the
spec runs as steps of their own (``--backend kfp``).

* **Artifacts by reference.** The backend's launcher copies every input artifact to the pod's
  disk before the step starts (backend/src/v2/component/launcher_v2.go, ``downloadArtifacts``),
  and TFX's executors read ``artifact.uri`` themselves, so the spec passes artifacts as JSON
  parameters ``<key>_artifact`` instead. Here they become the ExecutorInput's artifacts again,
  and each output artifact, as the executor left it, is returned as such a parameter.
* **Typed inputs.** The backend hands a step its upstream artifacts without a type
  (``instanceSchema: ""``: it records them without a schema, backend/src/v2/metadata/client.go),
  and TFX 1.16's entrypoint then fails importing the artifact class (``yaml.safe_load("")`` is
  None; tensorflow/tfx#7768). The step's input definitions, which TFX's compiler passes in
  ``--json_serialized_inputs_spec_args``, name every input's type: ``typed`` puts it back.
* **Lookups.** The backend ignores ``lifecycle.preCacheCheck``, which Vertex AI runs before
  computing the cache key, so ``input-fingerprint`` computes TFX's input fingerprint (ExampleGen's
  driver) as a step before ExampleGen; ``pushed-model-fingerprint`` names the newest pushed
  model for the baseline step. Each returns output parameters, which enter the next step's
  cache key.

``python -m pipeline.kubeflow_entrypoint [ROLE] --json_serialized_invocation_args
EXECUTOR_INPUT --json_serialized_inputs_spec_args SPEC [beam args]``; ROLE is ``executor``
(the default), ``input-fingerprint`` or ``pushed-model-fingerprint``.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

EXECUTOR_ROLE = "executor"
INPUT_FINGERPRINT_ROLE = "input-fingerprint"
PUSHED_MODEL_FINGERPRINT_ROLE = "pushed-model-fingerprint"
# The output parameters of the input fingerprint step: ExampleGen's parameters on Vertex AI after
# its preCacheCheck (tfx/orchestration/kubeflow/v2/file_based_example_gen/driver.py).
SPAN = "span"
INPUT_FINGERPRINT = "input_fingerprint"
INPUT_CONFIG = "input_config"
REFERENCE_SUFFIX = "_artifact"


def reference_parameter(key: str) -> str:
    """The parameter that carries artifact ``key`` by reference."""
    return key + REFERENCE_SUFFIX


def from_references(executor_input, inputs_spec) -> None:
    """The ``<key>_artifact`` parameters of the step's input artifacts (``inputs_spec``, TFX's
    input definitions) back into input artifacts, untyped, as the backend would hand them
    over."""
    from google.protobuf import json_format

    parameters = executor_input.inputs.parameter_values
    for key in inputs_spec.artifacts:
        name = reference_parameter(key)
        if name in parameters:
            artifact = executor_input.inputs.artifacts[key].artifacts.add()
            json_format.Parse(parameters[name].string_value, artifact)
            del parameters[name]


def typed(executor_input, inputs_spec) -> None:
    """Each input artifact without a type gets the type its input definition declares."""
    for key, artifacts in executor_input.inputs.artifacts.items():
        if key not in inputs_spec.artifacts:
            raise ValueError(f"input artifact {key!r} has no input definition to type it by")
        declared = inputs_spec.artifacts[key].artifact_type
        for artifact in artifacts.artifacts:
            kind = artifact.type.WhichOneof("kind")
            if kind is None or not getattr(artifact.type, kind):
                artifact.type.CopyFrom(declared)


def to_references(executor_input, output_file: str) -> None:
    """Each output artifact, as the executor's output file leaves it, added to that file as
    the ``<key>_artifact`` output parameter, named by its URI: TFX keys artifacts by name, the
    backend names outputs "" (before 2.15) or by their key (the Trainer's ``model`` and the
    baseline's would be one), and a run's URIs are unique."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.dsl.io import fileio

    output = pipeline_spec_pb2.ExecutorOutput()
    if fileio.exists(output_file):
        with fileio.open(output_file, "rb") as f:
            json_format.Parse(f.read(), output)
    for key, artifacts in executor_input.outputs.artifacts.items():
        (artifact,) = artifacts.artifacts
        written = output.artifacts[key].artifacts
        if written:  # what the launcher merges into the artifact (launcher_v2.go)
            artifact.uri = written[0].uri or artifact.uri
            artifact.metadata.update(written[0].metadata)
        reference = {
            "name": artifact.uri,
            "uri": artifact.uri,
            "metadata": json_format.MessageToDict(artifact.metadata),
        }
        output.parameter_values[reference_parameter(key)].string_value = json.dumps(
            reference, sort_keys=True
        )
    with fileio.open(output_file, "wb") as f:
        f.write(json_format.MessageToJson(output, sort_keys=True))


def run_executor(args, beam_args) -> None:
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    executor_input = json_format.Parse(
        args.json_serialized_invocation_args,
        pipeline_spec_pb2.ExecutorInput(),
        ignore_unknown_fields=True,
    )
    inputs_spec = json_format.Parse(
        args.json_serialized_inputs_spec_args,
        pipeline_spec_pb2.ComponentInputsSpec(),
        ignore_unknown_fields=True,
    )
    from_references(executor_input, inputs_spec)
    typed(executor_input, inputs_spec)
    # The output parameters are the references, written below: TFX's entrypoint takes any
    # output parameter for a value artifact of its own.
    tfx_input = pipeline_spec_pb2.ExecutorInput()
    tfx_input.CopyFrom(executor_input)
    tfx_input.outputs.ClearField("parameters")
    args.json_serialized_invocation_args = json_format.MessageToJson(tfx_input)
    kubeflow_v2_run_executor.main((args, beam_args))
    to_references(executor_input, executor_input.outputs.output_file)


def input_fingerprint(parameters: dict) -> dict:
    """ExampleGen's span, input fingerprint and resolved input config.

    TFX's FileBasedInputProcessor computes them, as its Vertex AI driver does; only where they
    go differs (output parameters of this step, not the same step's parameters).
    """
    from absl import logging
    from tfx.components.example_gen import input_processor
    from tfx.proto import example_gen_pb2, range_config_pb2
    from tfx.types import standard_component_specs as keys
    from tfx.utils import proto_utils

    input_config = proto_utils.json_to_proto(
        parameters[keys.INPUT_CONFIG_KEY], example_gen_pb2.Input()
    )
    range_config = None
    if parameters.get(keys.RANGE_CONFIG_KEY):
        range_config = proto_utils.json_to_proto(
            parameters[keys.RANGE_CONFIG_KEY], range_config_pb2.RangeConfig()
        )
    processor = input_processor.FileBasedInputProcessor(
        parameters[keys.INPUT_BASE_KEY], input_config.splits, range_config
    )
    span, version = processor.resolve_span_and_version()
    if version is not None:
        raise ValueError("input patterns with {VERSION} are not supported on Kubeflow Pipelines")
    fingerprint = processor.get_input_fingerprint(span, version)
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    logging.info("Span %s, input fingerprint:\n%s", span, fingerprint)
    return {
        SPAN: span,
        INPUT_FINGERPRINT: fingerprint,
        INPUT_CONFIG: proto_utils.proto_to_json(input_config),
    }


def pushed_model_fingerprint(parameters: dict) -> dict:
    """The SavedModel fingerprint of the newest model in the serving directory ("" for none):
    the baseline step's cache key, so the baseline is copied again only for another model."""
    from components.pushed_baseline import executor as pushed_baseline

    pushed = pushed_baseline.latest_pushed(parameters[pushed_baseline.SERVING_DIR_KEY])
    return {pushed_baseline.FINGERPRINT_KEY: pushed_baseline.fingerprint(pushed)}


LOOKUPS = {
    INPUT_FINGERPRINT_ROLE: input_fingerprint,
    PUSHED_MODEL_FINGERPRINT_ROLE: pushed_model_fingerprint,
}


def run_lookup(role: str, args) -> None:
    """A lookup step: its parameters in, its output parameters to the executor output file."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.dsl.io import fileio

    executor_input = json_format.Parse(
        args.json_serialized_invocation_args,
        pipeline_spec_pb2.ExecutorInput(),
        ignore_unknown_fields=True,
    )
    parameters = {
        key: json_format.MessageToDict(value)
        for key, value in executor_input.inputs.parameter_values.items()
    }
    output = pipeline_spec_pb2.ExecutorOutput()
    for key, value in LOOKUPS[role](parameters).items():
        json_format.ParseDict(value, output.parameter_values[key])
    output_file = executor_input.outputs.output_file
    fileio.makedirs(os.path.dirname(output_file))
    with fileio.open(output_file, "wb") as f:
        f.write(json_format.MessageToJson(output, sort_keys=True))


def parse_flags(argv: list[str]):
    """TFX's entrypoint flags, the role first; the other arguments are Beam's."""
    from absl.flags import argparse_flags  # parses absl's flags too, as app.run needs

    parser = argparse_flags.ArgumentParser(prog="python -m pipeline.kubeflow_entrypoint")
    parser.add_argument("role", nargs="?", choices=(EXECUTOR_ROLE, *LOOKUPS), default=EXECUTOR_ROLE)
    parser.add_argument("--executor_class_path")
    parser.add_argument("--json_serialized_invocation_args", required=True)
    parser.add_argument("--json_serialized_inputs_spec_args")
    args, beam_args = parser.parse_known_args(argv[1:])
    if args.role == EXECUTOR_ROLE and not args.executor_class_path:
        parser.error("the executor needs --executor_class_path")
    return args, beam_args


def main(parsed) -> None:
    args, beam_args = parsed
    if args.role == EXECUTOR_ROLE:
        run_executor(args, beam_args)
    else:
        run_lookup(args.role, args)


if __name__ == "__main__":
    from absl import app

    app.run(main, flags_parser=parse_flags)
