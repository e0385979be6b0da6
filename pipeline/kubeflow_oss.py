"""The compiled job adapted to open-source Kubeflow Pipelines 2.x (``--backend kfp``).

TFX's Kubeflow V2 compiler writes for Vertex AI. What the open-source backend does differently
with such a spec, and what this module changes for it (docs/kubeflow.md has the table, with the
backend's source files):

* Resolver steps: its compiler refuses them. ``create_pipeline(baseline=BASELINE_PUSHED)``
  finds the baseline in a container step instead (``components.pushed_baseline``).
* ``lifecycle.preCacheCheck``: nothing reads it. ExampleGen's driver becomes a step of its own,
  whose output parameters (span, input fingerprint, resolved input config) are ExampleGen's
  parameters, so ExampleGen's cache key changes with the data.
* Input artifacts: its launcher copies every one to the pod's disk before the step starts (all
  of it: 140 GB of examples for each Beam step, docs/scaling.md), and the only flag that skips
  the copy (``_kfp_workspace``, 2.15+) is set by its own workspace importer and never stored
  with an artifact. TFX's executors read ``artifact.uri`` themselves, so the artifacts travel
  by reference instead: each step also returns each output artifact as a JSON output parameter
  ``<key>_artifact``, and takes its inputs as such parameters (``pipeline.kubeflow_entrypoint``
  turns them back into the artifacts TFX expects). The outputs stay artifacts in the backend's
  ML Metadata, at their real URIs; only the consuming edges are parameters.

What depends on the world rather than on a step's inputs (the files under ``data_root``, the
newest pushed model) is looked up by a small step that is never cached, and enters the next
step's cache key as a parameter: ExampleGen is cached while the data is unchanged, the baseline
(and so the Evaluator and the Pusher) while the newest pushed model is. Every step runs
``pipeline.kubeflow_entrypoint``; task names stay valid Argo names that the backend's own
``<task>-driver`` tasks cannot collide with (``pipeline.kubeflow_backends.Kfp.check``).
"""

from __future__ import annotations

import json

from components.pushed_baseline import executor as pushed_baseline
from pipeline import configs, kubeflow_entrypoint

ENTRYPOINT = ("python", "-m", "pipeline.kubeflow_entrypoint")
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
FINGERPRINT_SUFFIX = "-fingerprint"


def adapt(job: dict) -> dict:
    """``job`` (compiled with ``ENTRYPOINT`` and the pushed baseline) for the OSS backend."""
    spec = job["pipelineSpec"]
    # ExampleGen's preCacheCheck, as a step of its own before it.
    container = _container(spec, configs.EXAMPLE_GEN)
    del container["lifecycle"]
    _lookup(
        spec,
        configs.EXAMPLE_GEN,
        kubeflow_entrypoint.INPUT_FINGERPRINT_ROLE,
        inputs=("input_base", "input_config", "range_config"),
        outputs={
            kubeflow_entrypoint.SPAN: "NUMBER_INTEGER",
            kubeflow_entrypoint.INPUT_FINGERPRINT: "STRING",
            kubeflow_entrypoint.INPUT_CONFIG: "STRING",
        },
    )
    _lookup(
        spec,
        configs.LATEST_PUSHED_MODEL,
        kubeflow_entrypoint.PUSHED_MODEL_FINGERPRINT_ROLE,
        inputs=(pushed_baseline.SERVING_DIR_KEY,),
        outputs={pushed_baseline.FINGERPRINT_KEY: "STRING"},
    )
    tasks = spec["root"]["dag"]["tasks"]
    for task in tasks.values():
        _by_reference(task, spec["components"][task["componentRef"]["name"]])
    return job


def _container(spec: dict, task: str) -> dict:
    component = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]
    return spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]


def _lookup(spec: dict, name: str, role: str, inputs: tuple, outputs: dict) -> None:
    """A step before task ``name``, never cached, that runs the entrypoint's ``role`` on some of
    ``name``'s parameters (``inputs``) and returns ``outputs``, which become ``name``'s
    parameters of the same names, and so part of its cache key."""
    tasks, components = spec["root"]["dag"]["tasks"], spec["components"]
    executors = spec["deploymentSpec"]["executors"]
    task = tasks[name]
    component = components[task["componentRef"]["name"]]
    container = _container(spec, name)
    lookup = name + FINGERPRINT_SUFFIX
    parameters = component["inputDefinitions"]["parameters"]
    components[lookup] = {
        "executorLabel": f"{lookup}_executor",
        "inputDefinitions": {
            "parameters": {key: parameters[key] for key in inputs if key in parameters}
        },
        "outputDefinitions": {
            "parameters": {key: {"parameterType": kind} for key, kind in outputs.items()}
        },
    }
    executors[f"{lookup}_executor"] = {
        "container": {
            "image": container["image"],
            "command": list(ENTRYPOINT),
            "args": [role, "--json_serialized_invocation_args", "{{$}}"],
        }
    }
    task_parameters = task["inputs"]["parameters"]
    tasks[lookup] = {  # no cachingOptions: what it looks at is not among its inputs
        "componentRef": {"name": lookup},
        "inputs": {
            "parameters": {key: task_parameters[key] for key in inputs if key in task_parameters}
        },
        "taskInfo": {"name": lookup},
    }
    for key, kind in outputs.items():
        parameters[key] = {"parameterType": kind}
        task_parameters[key] = {
            "taskOutputParameter": {"producerTask": lookup, "outputParameterKey": key}
        }
    task["dependentTasks"] = sorted({*task.get("dependentTasks", ()), lookup})
    # TFX's entrypoint reads the parameters' types from its own copy of the input definitions.
    args = container["args"]
    index = args.index(INPUTS_SPEC_FLAG) + 1
    definitions = json.loads(args[index])
    definitions.setdefault("parameters", {}).update(
        {key: {"parameterType": kind} for key, kind in outputs.items()}
    )
    args[index] = json.dumps(definitions, indent=2, sort_keys=True)


def _by_reference(task: dict, component: dict) -> None:
    """The task's input artifacts as input parameters, and its outputs also as parameters."""
    reference = kubeflow_entrypoint.reference_parameter
    inputs = task.get("inputs", {})
    definitions = component.get("inputDefinitions", {})
    for key, source in inputs.pop("artifacts", {}).items():
        producer = source["taskOutputArtifact"]
        inputs.setdefault("parameters", {})[reference(key)] = {
            "taskOutputParameter": {
                "producerTask": producer["producerTask"],
                "outputParameterKey": reference(producer["outputArtifactKey"]),
            }
        }
        definitions.setdefault("parameters", {})[reference(key)] = {"parameterType": "STRING"}
    definitions.pop("artifacts", None)
    outputs = component.get("outputDefinitions", {})
    for key in outputs.get("artifacts", {}):
        outputs.setdefault("parameters", {})[reference(key)] = {"parameterType": "STRING"}
