"""What each Kubeflow backend does with a compiled spec, as ``kubeflow-local`` applies it.

Open-source Kubeflow Pipelines 2.x and Vertex AI Pipelines run the same pipeline spec schema
but differ in what they implement. Each rule below cites the file of kubeflow/pipelines
(tags 2.0.0 to 2.17.0, ``backend/src/v2/``) it follows, so the dry run fails where the real
backend would; docs/kubeflow.md has the same rules as a table. Vertex AI's behaviour is the
one TFX's compiler writes for (resolvers run, ``preCacheCheck`` runs, inputs arrive typed,
nothing is copied to the pod).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import uuid

from data.errors import UserError
from pipeline import kubeflow_platform

# KFP's API server takes schema 2.1.0 only (backend/src/apiserver/template/v2_template.go).
SCHEMA_VERSION = "2.1.0"
# Task names become Argo DAG task names verbatim (compiler/argocompiler/dag.go), which Argo
# validates (workflowFieldNameFmt in argo-workflows' validation_utils.go), and each task X also
# becomes a task X-driver (dag.go: driverTaskName := name + "-driver").
ARGO_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]*")
ARGO_NAME_MAX = 128 - len("-driver")
DRIVER_TASK_SUFFIX = "-driver"
# The launcher's local path of a remote URI (component/launcher_v2.go, LocalPathForURI).
LOCAL_PREFIXES = {"gs://": "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}
# The output metadata file in the pod, before 2.15 (component/constants.go).
POD_OUTPUT_FILE = "/tmp/kfp_outputs/output_metadata.json"


@dataclasses.dataclass
class Copies:
    """What the launcher copied between the bucket and the pod for one step."""

    downloaded_bytes: int = 0
    downloaded: list[str] = dataclasses.field(default_factory=list)  # the input URIs
    not_uploaded: list[str] = dataclasses.field(default_factory=list)  # outputs with no local copy


class Vertex:
    name = kubeflow_platform.VERTEX
    runs_pre_cache_check = True
    copies_artifacts = False

    def check(self, job: dict) -> None:
        """Vertex AI runs every executor kind TFX's compiler writes."""

    def input_artifact(self, artifact: dict, declared_type: dict) -> dict:
        """Typed as the consuming component declares it (what TFX's entrypoint expects)."""
        return {**artifact, "type": declared_type}

    def output_artifact(self, artifact: dict) -> dict:
        return artifact

    def output_uri(self, root: str, pipeline: str, run_id: str, task: str, key: str) -> str:
        return os.path.join(root, run_id, task, key)

    def output_file(self, task_root: str, pod_dir: str) -> str:
        # Vertex AI gives the executor a file next to its outputs in the pipeline root.
        return os.path.join(task_root, "executor_output.json")

    def cache_key(self, container: dict, inputs: dict, parameters: dict, outputs: dict) -> str:
        """Input artifacts, parameter values, output types and the whole container spec."""
        return _digest(
            {
                "inputs": {k: [a["name"] for a in v] for k, v in inputs.items()},
                "parameters": parameters,
                "outputs": outputs,
                "container": container,
            }
        )

    def artifact_name(self, run_id: str, task: str, key: str, number: int) -> str:
        return f"{run_id}/{task}/{key}"


class Kfp:
    name = kubeflow_platform.KFP
    # Nothing in backend/src reads lifecycle.preCacheCheck (any tag).
    runs_pre_cache_check = False
    copies_artifacts = True

    def check(self, job: dict) -> None:
        """What the API server and the compiler refuse, with their messages."""
        spec = job["pipelineSpec"]
        if spec.get("schemaVersion") != SCHEMA_VERSION:  # apiserver/template/v2_template.go
            raise UserError(
                "Kubeflow Pipelines refuses the spec: KFP only supports schema version "
                f"{SCHEMA_VERSION}, but the pipeline spec has version {spec.get('schemaVersion')}"
            )
        executors = spec["deploymentSpec"]["executors"]
        for name in sorted(spec["components"]):
            label = spec["components"][name].get("executorLabel")
            kinds = set(executors.get(label, {})) if label else {"container"}
            if not kinds & {"container", "importer"}:  # compiler/visitor.go, dfs
                raise UserError(
                    "Kubeflow Pipelines refuses the spec: error processing component "
                    f'name="{name}": executor(label="{label}"): non-container and '
                    "non-importer executor not implemented (the open-source backend runs no "
                    "resolver; compile with --backend kfp)"
                )
        # Then Argo, on the workflow the compiler made.
        tasks = spec["root"]["dag"]["tasks"]
        for name in sorted(tasks):
            if not ARGO_NAME.fullmatch(name) or len(name) > ARGO_NAME_MAX:
                raise UserError(
                    f"Kubeflow Pipelines' Argo workflow refuses task {name!r}: name must "
                    "consist of alpha-numeric characters or '-', and must start with an "
                    f"alpha-numeric character (at most {ARGO_NAME_MAX} characters)"
                )
            if name.endswith(DRIVER_TASK_SUFFIX) and name[: -len(DRIVER_TASK_SUFFIX)] in tasks:
                raise UserError(
                    f"Kubeflow Pipelines' Argo workflow refuses task {name!r}: the compiler "
                    f"names task {name[: -len(DRIVER_TASK_SUFFIX)]!r}'s driver so"
                )

    def input_artifact(self, artifact: dict, declared_type: dict) -> dict:
        """Untyped, named by its ML Metadata id (driver/driver.go resolveInputs,
        metadata/client.go GetOutputArtifactsByExecutionId: ``Schema: "" // TODO``)."""
        return {**artifact, "type": {"instanceSchema": ""}}

    def output_artifact(self, artifact: dict) -> dict:
        """Unnamed, as the driver provisions outputs before 2.15 (driver.go provisionOutputs;
        from 2.15 the name is the output key)."""
        return {**artifact, "name": ""}

    def output_uri(self, root: str, pipeline: str, run_id: str, task: str, key: str) -> str:
        # driver.go provisionOutputs: <root>/<pipeline>/<run>/<task>/<uuid>/<key> (2.4+).
        return os.path.join(root, pipeline, run_id, task, uuid.uuid4().hex, key)

    def output_file(self, task_root: str, pod_dir: str) -> str:
        return pod_path(pod_dir, POD_OUTPUT_FILE)

    def cache_key(self, container: dict, inputs: dict, parameters: dict, outputs: dict) -> str:
        """cacheutils/cache.go GenerateCacheKey: input artifact names (ids, not URIs),
        parameter values, output artifacts without their URIs, output parameter types, and
        the image with command and arguments (not env, resources or lifecycle)."""
        return _digest(
            {
                "inputs": {k: [a["name"] for a in v] for k, v in inputs.items()},
                "parameters": parameters,
                "outputs": outputs,
                "image": container.get("image"),
                "cmd_args": [*container.get("command", ()), *container.get("args", ())],
            }
        )

    def artifact_name(self, run_id: str, task: str, key: str, number: int) -> str:
        return str(number)  # metadata/converter.go: the MLMD id

    def download(self, inputs: dict, remote, pod_dir: str, copies: Copies) -> None:
        """launcher_v2.go downloadArtifacts: every input artifact, whole, to its local path
        (/gcs/BUCKET/..., /minio/..., /s3/...), whether the command reads it or not; a URI of
        another scheme is skipped. ``remote``: the gs:// URI of a path here."""
        for artifacts in inputs.values():
            for artifact in artifacts:
                local = local_path_for_uri(remote(artifact["uri"]))
                if local is None:
                    continue
                copies.downloaded.append(remote(artifact["uri"]))
                copies.downloaded_bytes += _copy(artifact["uri"], pod_path(pod_dir, local))

    def upload(self, outputs: dict, remote, pod_dir: str, copies: Copies) -> None:
        """launcher_v2.go uploadOutputArtifacts: each output's local path, if it exists, to
        its URI; a missing local path is only a warning."""
        for artifacts in outputs.values():
            for artifact in artifacts:
                local = local_path_for_uri(remote(artifact["uri"]))
                if local is None or not os.path.exists(pod_path(pod_dir, local)):
                    copies.not_uploaded.append(remote(artifact["uri"]))
                    continue
                _copy(pod_path(pod_dir, local), artifact["uri"])

    def prepare_outputs(self, outputs: dict, remote, pod_dir: str) -> None:
        """launcher_v2.go prepareOutputFolders: the parent of each output's local path."""
        for artifacts in outputs.values():
            for artifact in artifacts:
                local = local_path_for_uri(remote(artifact["uri"]))
                if local is None:
                    raise UserError(
                        f"failed to generate local storage path for output artifact "
                        f"{artifact['uri']!r}: unsupported storage scheme"
                    )
                os.makedirs(os.path.dirname(pod_path(pod_dir, local)), exist_ok=True)


BACKENDS = {backend.name: backend for backend in (Kfp(), Vertex())}


def local_path_for_uri(uri: str) -> str | None:
    for scheme, prefix in LOCAL_PREFIXES.items():
        if uri.startswith(scheme):
            return prefix + uri[len(scheme) :]
    return None


def pod_path(pod_dir: str, path: str) -> str:
    """An absolute path inside the step's pod, as a directory here."""
    return os.path.join(pod_dir, path.lstrip("/"))


def _copy(source: str, destination: str) -> int:
    """Copies a file or a directory tree; the bytes copied."""
    if os.path.isdir(source):
        shutil.copytree(source, destination, dirs_exist_ok=True)
        return sum(
            os.path.getsize(os.path.join(parent, name))
            for parent, _, names in os.walk(destination)
            for name in names
        )
    if os.path.exists(source):
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(source, destination)
        return os.path.getsize(destination)
    return 0


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
