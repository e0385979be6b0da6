"""The compiled job adapted to open-source Kubeflow Pipelines 2.x (``--backend kfp``).

TFX's Kubeflow V2 compiler writes for Vertex AI. What the open-source backend does differently
with such a spec, and what this module changes for it (docs/kubeflow.md has the table, with the
backend's source files):

* Resolver steps: its compiler refuses them. ``create_pipeline(baseline=BASELINE_PUSHED)``
  finds the baseline in a container step instead (``components.pushed_baseline``).
* ``lifecycle.preCacheCheck``: nothing reads it. ExampleGen's driver becomes a step of its own,
  never cached, whose output parameters (span, input fingerprint, resolved input config) are
  ExampleGen's parameters, so ExampleGen's cache key changes with the data.
* Input artifacts: its launcher copies every one to the pod's disk before the step starts (all
  of it: 140 GB of examples for each Beam step, docs/scaling.md), and the only flag that skips
  the copy (``_kfp_workspace``, 2.15+) is set by its own workspace importer and never stored
  with an artifact. TFX's executors read ``artifact.uri`` themselves, so the artifacts travel
  by reference instead: each step also returns each output artifact as a JSON output parameter
  ``<key>_artifact``, and takes its inputs as such parameters (``pipeline.kubeflow_entrypoint``
  turns them back into the artifacts TFX expects). The outputs stay artifacts in the backend's
  ML Metadata, at their real URIs; only the consuming edges are parameters.

Steps whose output depends on the world rather than on their inputs (the driver, the
baseline) are not cached. Every step runs ``pipeline.kubeflow_entrypoint``.
"""

from __future__ import annotations

import json

from pipeline import configs, kubeflow_entrypoint

ENTRYPOINT = ("python", "-m", "pipeline.kubeflow_entrypoint")
DRIVER_SUFFIX = "-driver"
# The driver's output parameters, each becoming the ExampleGen parameter of the same name.
DRIVER_OUTPUTS = {
    kubeflow_entrypoint.SPAN: "NUMBER_INTEGER",
    kubeflow_entrypoint.INPUT_FINGERPRINT: "STRING",
    kubeflow_entrypoint.INPUT_CONFIG: "STRING",
}
# What the driver reads of ExampleGen's parameters.
DRIVER_INPUTS = ("input_base", "input_config", "range_config")
UNCACHED = (configs.LATEST_PUSHED_MODEL,)
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"


def adapt(job: dict) -> dict:
    """``job`` (compiled with ``ENTRYPOINT`` and the pushed baseline) for the OSS backend."""
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    for name in UNCACHED:
        tasks[name].pop("cachingOptions", None)
    _driver_step(spec, configs.EXAMPLE_GEN)
    for task in tasks.values():
        _by_reference(task, spec["components"][task["componentRef"]["name"]])
    return job


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


def _driver_step(spec: dict, name: str) -> None:
    """ExampleGen's ``preCacheCheck`` as a step of its own, before it."""
    tasks, components = spec["root"]["dag"]["tasks"], spec["components"]
    executors = spec["deploymentSpec"]["executors"]
    task = tasks[name]
    component = components[task["componentRef"]["name"]]
    container = executors[component["executorLabel"]]["container"]
    del container["lifecycle"]
    driver = name + DRIVER_SUFFIX
    parameters = component["inputDefinitions"]["parameters"]
    components[driver] = {
        "executorLabel": f"{driver}_executor",
        "inputDefinitions": {
            "parameters": {key: parameters[key] for key in DRIVER_INPUTS if key in parameters}
        },
        "outputDefinitions": {
            "parameters": {key: {"parameterType": kind} for key, kind in DRIVER_OUTPUTS.items()}
        },
    }
    executors[f"{driver}_executor"] = {
        "container": {
            "image": container["image"],
            "command": list(ENTRYPOINT),
            "args": [
                kubeflow_entrypoint.DRIVER_ROLE,
                "--json_serialized_invocation_args",
                "{{$}}",
            ],
        }
    }
    task_parameters = task["inputs"]["parameters"]
    tasks[driver] = {  # no cachingOptions: the data it fingerprints is not among its inputs
        "componentRef": {"name": driver},
        "inputs": {
            "parameters": {
                key: task_parameters[key] for key in DRIVER_INPUTS if key in task_parameters
            }
        },
        "taskInfo": {"name": driver},
    }
    for key, kind in DRIVER_OUTPUTS.items():
        parameters[key] = {"parameterType": kind}
        task_parameters[key] = {
            "taskOutputParameter": {"producerTask": driver, "outputParameterKey": key}
        }
    task["dependentTasks"] = sorted({*task.get("dependentTasks", ()), driver})
    # TFX's entrypoint reads the parameters' types from its own copy of the input definitions.
    args = container["args"]
    index = args.index(INPUTS_SPEC_FLAG) + 1
    args[index] = json.dumps(component["inputDefinitions"], indent=2, sort_keys=True)
