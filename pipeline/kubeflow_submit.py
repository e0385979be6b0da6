"""Starting a compiled pipeline (``compile-kubeflow``'s JSON) on Kubeflow Pipelines or Vertex AI.

A host that cannot be reached, credentials that are missing and a job the service refuses are
each one UserError line; the run's parameters are checked against the compiled job first.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile

from data.errors import UserError
from pipeline.kubeflow_platform import BACKEND_NAMES, backend_of, check_pipeline_name, check_remote
from pipeline.kubeflow_runner import DATA_ROOT_PARAMETER


def load_job(path: str) -> dict:
    """A compiled ``PipelineJob``; a clear error for anything else."""
    try:
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
    except OSError as error:
        raise UserError(f"--pipeline {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise UserError(f"--pipeline {path} is not JSON ({error})") from None
    if not isinstance(job, dict) or "pipelineSpec" not in job or "runtimeConfig" not in job:
        raise UserError(
            f"--pipeline {path} is not a compiled pipeline job: make it with "
            "'alexnet-tfx compile-kubeflow'"
        )
    return job


def check_backend(job: dict, backend: str) -> None:
    """A job compiled for the other backend is refused before anything is sent: the
    open-source backend refuses Vertex AI's resolver steps (with its own message), and a job
    compiled for it would run on Vertex AI without TFX's own Resolver."""
    from pipeline import kubeflow_backends

    compiled = backend_of(job)
    if compiled == backend:
        return
    kubeflow_backends.BACKENDS[backend].check(job)
    raise UserError(
        f"--pipeline was compiled for {BACKEND_NAMES[compiled]}: compile it with "
        f"'alexnet-tfx compile-kubeflow --backend {backend}' to run on {BACKEND_NAMES[backend]}"
    )


def run_parameters(job: dict, overrides: list[str]) -> dict[str, str]:
    """The job's runtime parameters, each ``NAME=VALUE`` in ``overrides`` replacing one."""
    parameters = dict(job["runtimeConfig"].get("parameterValues", {}))
    for override in overrides:
        name, sep, value = override.partition("=")
        if not sep:
            raise UserError(f"--param {override!r}: expected NAME=VALUE")
        if name not in parameters:
            raise UserError(f"--param {name}: the pipeline's parameters are {sorted(parameters)}")
        parameters[name] = value
    if DATA_ROOT_PARAMETER in parameters:
        check_remote(parameters[DATA_ROOT_PARAMETER], f"--param {DATA_ROOT_PARAMETER}")
    return parameters


def parse_labels(labels: list[str]) -> dict[str, str]:
    result = {}
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise UserError(f"--label {label!r}: expected KEY=VALUE")
        result[key] = value
    return result


def run_name(job: dict, name: str | None) -> str:
    """``name``, checked, or PIPELINE_NAME-YYYYmmdd-HHMMSS."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return check_pipeline_name(name or f"{job['pipelineSpec']['pipelineInfo']['name']}-{stamp}")


def kfp_package(job: dict, directory: str) -> str:
    """The pipeline spec as the YAML package ``kfp.Client`` reads (it takes no PipelineJob)."""
    import yaml

    path = os.path.join(directory, "pipeline.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(job["pipelineSpec"], f, sort_keys=True)
    return path


def submit_kfp(
    job: dict,
    host: str,
    *,
    run_name: str,
    parameters: dict,
    experiment: str | None = None,
    namespace: str | None = None,
    enable_caching: bool | None = None,
    service_account: str | None = None,
) -> str:
    """Starts a run on Kubeflow Pipelines at ``host``; returns its run id."""
    import warnings

    import kfp
    import kfp_server_api
    import urllib3

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "works with KFP >= 2.0.0-beta.2"
            client = kfp.Client(host=host, **({"namespace": namespace} if namespace else {}))
        with tempfile.TemporaryDirectory() as directory:
            result = client.create_run_from_pipeline_package(
                kfp_package(job, directory),
                arguments=parameters,
                run_name=run_name,
                experiment_name=experiment,
                namespace=namespace,
                # The root is compiled into the Trainer's checkpoint path: never a different one.
                pipeline_root=job["runtimeConfig"]["gcsOutputDirectory"],
                enable_caching=enable_caching,
                service_account=service_account,
            )
    except urllib3.exceptions.MaxRetryError as error:
        reason = str(error.reason).split(": ", 1)[-1]  # drop the connection object's repr
        raise UserError(f"cannot reach Kubeflow Pipelines at {host} ({reason})") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise UserError(f"cannot reach Kubeflow Pipelines at {host} ({error})") from None
    except kfp_server_api.ApiException as error:
        raise UserError(
            f"Kubeflow Pipelines at {host} refused the run: {error.status} {error.reason}"
        ) from None
    return result.run_id


def vertex_job(
    path: str,
    job: dict,
    *,
    project: str,
    region: str,
    run_name: str,
    parameters: dict,
    labels: dict[str, str],
    enable_caching: bool | None = None,
    credentials=None,
):
    """The Vertex AI ``PipelineJob`` for the compiled file at ``path``, not yet submitted.

    Its labels are the compiler's (TFX version, runner) plus ``labels``; its pipeline root is
    the compiled one.
    """
    from google.auth import exceptions as auth_exceptions
    from google.cloud import aiplatform

    try:
        return aiplatform.PipelineJob(
            display_name=job["displayName"],
            template_path=path,
            job_id=run_name,
            pipeline_root=job["runtimeConfig"]["gcsOutputDirectory"],
            parameter_values=parameters,
            enable_caching=enable_caching,
            labels={**job.get("labels", {}), **labels},
            project=project,
            location=region,
            credentials=credentials,
        )
    except auth_exceptions.DefaultCredentialsError as error:
        raise UserError(
            "no Google Cloud credentials: run 'gcloud auth application-default login' or set "
            f"GOOGLE_APPLICATION_CREDENTIALS ({str(error).splitlines()[0]})"
        ) from None
    except ValueError as error:  # labels or job id that Vertex AI would reject
        raise UserError(f"Vertex AI: {error}") from None
