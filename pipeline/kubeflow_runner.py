"""``alexnet-tfx compile-kubeflow`` and ``submit``: the pipeline on Kubeflow Pipelines v2 or
Vertex AI Pipelines.

The Kubeflow twin of ``local_runner``: it calls the same ``create_pipeline`` and adds only what
a cluster needs: the container image on every step, a GPU request on the Trainer, CPU and
memory on the Beam steps, Beam options for a distributed runner, and paths inside the image.
The result is a KFP ``PipelineJob`` JSON (pipeline spec schema 2.1.0, which Kubeflow Pipelines
2.x and Vertex AI both run), written with sorted keys so that it can be reviewed and diffed.

Every flag is checked before TFX is imported, so a wrong flag costs a one-line error at once.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import tempfile

from pipeline import cli, configs
from pipeline.cli import CliError

# The Dockerfile's WORKDIR: the package lives here in the image, so the spec names files here,
# never on the compiling machine.
IMAGE_ROOT = "/alexnet-tfx"
IMAGE_SCHEMA_DIR = f"{IMAGE_ROOT}/data/schema"

# A runtime parameter, so that one reviewed spec can run on the sample or on full ImageNet.
DATA_ROOT_PARAMETER = "data_root"

TRAINER = "Trainer"

BEAM_RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner")

# Kubeflow Pipelines and Vertex AI both require this form; TFX's own message for a bad name is
# garbled, so the name is checked here first.
_PIPELINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
# registry[:port]/path[:tag][@digest], lower-case path components (Docker's reference grammar).
_IMAGE = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
# A Kubernetes extended resource such as nvidia.com/gpu (Kubeflow Pipelines on Kubernetes).
_K8S_RESOURCE = re.compile(r"[a-z0-9.-]+/[a-z0-9.-]+")
# Steps read and write with TensorFlow's file system, which reads gs:// natively; s3:// or
# minio:// would need tensorflow-io, which the image does not have.
_REMOTE_SCHEMES = ("gs://",)


# ---------------------------------------------------------------------------------- checks


def check_pipeline_name(name: str) -> str:
    if not _PIPELINE_NAME.fullmatch(name):
        raise CliError(
            f"--pipeline-name {name!r}: Kubeflow needs lower-case letters, digits and '-', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


def check_remote(uri: str, flag: str) -> str:
    """A URI every pod can reach; a local path would name a directory on no pod."""
    if not uri.startswith(_REMOTE_SCHEMES) or len(uri) <= len("gs://"):
        raise CliError(
            f"{flag} {uri!r} is not a remote URI: the steps run in pods, so it must be one of "
            f"{', '.join(s + '...' for s in _REMOTE_SCHEMES)}"
        )
    return uri.rstrip("/")


def check_image(image: str) -> str:
    if not _IMAGE.fullmatch(image):
        raise CliError(
            f"--image {image!r} is not a container image reference "
            "(e.g. us-docker.pkg.dev/PROJECT/REPO/alexnet-tfx:TAG)"
        )
    return image


def gpu_request(gpus: int | None, gpu_type: str | None) -> tuple[int, str | None]:
    """(count, type) of the Trainer's accelerator; a type alone means one GPU."""
    if gpus and not gpu_type:
        raise CliError(
            f"--gpus {gpus} needs --gpu-type (e.g. NVIDIA_TESLA_T4 on Vertex AI, "
            "nvidia.com/gpu on Kubeflow Pipelines)"
        )
    if not gpu_type:
        return 0, None
    from google.cloud.aiplatform_v1.types import accelerator_type

    vertex_types = {t.name for t in accelerator_type.AcceleratorType} - {
        "ACCELERATOR_TYPE_UNSPECIFIED"
    }
    if gpu_type not in vertex_types and not _K8S_RESOURCE.fullmatch(gpu_type):
        raise CliError(
            f"--gpu-type {gpu_type!r} is neither a Vertex AI accelerator "
            f"({', '.join(sorted(vertex_types))}) nor a Kubernetes resource name "
            "such as nvidia.com/gpu"
        )
    return gpus or 1, gpu_type


def beam_pipeline_args(
    runner: str, extra: list[str], *, image: str, pipeline_root: str, workers: int
) -> list[str]:
    """``--runner``, the runner's defaults that ``extra`` does not set, then ``extra``.

    Dataflow, Flink and Spark workers run this same image (it carries Beam's SDK harness
    entrypoint), so they see the same TFX, TensorFlow and package as the pods.
    """
    from apache_beam.options import pipeline_options as po

    beam_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_logger.level
    beam_logger.setLevel(logging.ERROR)  # its warnings would repeat the error below
    try:
        options = po.PipelineOptions(extra)
        known = options.get_all_options()
        unknown = set(options.get_all_options(retain_unknown_options=True)) - set(known)
    finally:
        beam_logger.setLevel(level)
    if unknown:
        raise CliError(f"--beam-arg: Beam has no option {', '.join(sorted(unknown))}")
    if known["runner"] not in (None, runner):
        raise CliError(
            f"--beam-arg --runner={known['runner']} contradicts --beam-runner {runner}: "
            "give the runner once, with --beam-runner"
        )

    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}

    def require(*names: str) -> None:
        # Given explicitly: Beam's own defaults would start a local Flink or Spark in the pod.
        missing = [f"--beam-arg=--{name}=..." for name in names if f"--{name}" not in given]
        if missing:
            raise CliError(f"--beam-runner {runner} needs {' and '.join(missing)}")

    worker_image = ["--environment_type=DOCKER", f"--environment_config={image}"]
    if runner == "DirectRunner":
        # One process per CPU the pod asked for, not per CPU of the node it lands on.
        defaults = ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]
    elif runner == "DataflowRunner":
        require("project", "region")
        if known["temp_location"]:
            check_remote(known["temp_location"], "--beam-arg --temp_location")
        defaults = [f"--temp_location={pipeline_root}/beam-tmp", f"--sdk_container_image={image}"]
    elif runner == "FlinkRunner":
        require("flink_master")
        defaults = ["--flink_submit_uber_jar", *worker_image]
    elif runner == "SparkRunner":
        require("spark_rest_url")
        defaults = ["--spark_submit_uber_jar", *worker_image]
    else:
        raise CliError(f"--beam-runner {runner!r}: expected one of {', '.join(BEAM_RUNNERS)}")
    return [
        f"--runner={runner}",
        *(arg for arg in defaults if arg.split("=", 1)[0] not in given),
        *extra,
    ]


def beam_steps(pipeline) -> list:
    """The pipeline's steps that run a Beam pipeline."""
    from tfx.dsl.components.base import executor_spec

    return [
        step
        for step in pipeline.components
        if isinstance(getattr(step, "executor_spec", None), executor_spec.BeamExecutorSpec)
    ]


def resource_spec(cpus: float, memory_gb: float, gpus: int = 0, gpu_type: str | None = None):
    """A KFP ResourceSpec. Only limits are set: Kubernetes then makes the requests equal to
    them (the pod is never squeezed), and Vertex AI sizes the machine from them."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=cpus, memory_limit=memory_gb
    )
    if gpus:
        spec.accelerator.type = gpu_type
        spec.accelerator.count = gpus
    return spec


# ---------------------------------------------------------------------------------- compile


def compile_job(args) -> dict:
    """The ``PipelineJob`` (as a JSON dict) that the ``compile-kubeflow`` flags describe."""
    for flag, value in (
        ("--trainer-cpus", args.trainer_cpus),
        ("--trainer-memory-gb", args.trainer_memory_gb),
        ("--beam-cpus", args.beam_cpus),
        ("--beam-memory-gb", args.beam_memory_gb),
    ):
        if not value > 0:
            raise CliError(f"{flag} must be > 0, got {value}")
    pipeline_name = check_pipeline_name(args.pipeline_name)
    image = check_image(args.image)
    pipeline_root = check_remote(args.pipeline_root, "--pipeline-root")
    data_root = check_remote(args.data_root, "--data-root")
    serving_dir = check_remote(
        args.serving_dir or f"{pipeline_root}/{configs.SERVING_DIR_NAME}", "--serving-dir"
    )
    gpus, gpu_type = gpu_request(args.gpus, args.gpu_type)
    beam_args = beam_pipeline_args(
        args.beam_runner,
        args.beam_arg,
        image=image,
        pipeline_root=pipeline_root,
        workers=max(1, int(args.beam_cpus)),
    )

    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        data_root=tfx.dsl.experimental.RuntimeParameter(name=DATA_ROOT_PARAMETER, ptype=str),
        record_format=args.record_format,
        schema_file=f"{IMAGE_SCHEMA_DIR}/{args.record_format}.pbtxt",
        serving_dir=serving_dir,
        model=args.model,
        train_steps=args.train_steps,
        eval_steps=args.eval_steps,
        store_full_region=args.store_full_region,
        trainer_config=cli.trainer_config(args),
        min_top1=args.min_top1,
        max_top1_drop=args.max_top1_drop,
        enable_cache=not args.no_cache,
    )
    trainer = resource_spec(args.trainer_cpus, args.trainer_memory_gb, gpus, gpu_type)
    beam = resource_spec(args.beam_cpus, args.beam_memory_gb)
    for step in beam_steps(pipeline):
        # Only Beam steps get Beam options: a Trainer or Pusher given --runner=... would only
        # confuse whoever reads the spec.
        step.with_beam_pipeline_args(beam_args)
        # TFX 1.16 drops platform config on FileBasedExampleGen: ImportExampleGen gets the
        # cluster's default resources (it only copies records; with a distributed runner,
        # its workers do the copying).
        if not isinstance(step, tfx.components.ImportExampleGen):
            step.with_platform_config(beam)
    trainers = [step for step in pipeline.components if step.id == TRAINER]
    if not trainers:  # a renamed Trainer would silently lose its GPUs
        raise RuntimeError(f"create_pipeline has no step {TRAINER!r}")
    trainers[0].with_platform_config(trainer)

    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        )
    )
    return runner.run(pipeline, parameter_values={DATA_ROOT_PARAMETER: data_root}, write_out=False)


def write_job(job: dict, path: str) -> None:
    """Indented, sorted JSON: the same inputs give the same bytes, and diffs stay readable."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(job, f, indent=2, sort_keys=True)
        f.write("\n")


def main(args) -> int:
    """The ``compile-kubeflow`` subcommand."""
    if not args.output.endswith(".json"):
        raise CliError(f"--output {args.output!r}: the compiled pipeline is JSON, name it *.json")
    directory = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(directory):
        raise CliError(f"--output {args.output!r}: directory {directory} does not exist")
    job = compile_job(args)
    write_job(job, args.output)
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    print(f"Wrote {args.output}: {len(tasks)} steps, image {args.image}, Beam {args.beam_runner}")
    return 0


# ---------------------------------------------------------------------------------- submit


def load_job(path: str) -> dict:
    """A compiled ``PipelineJob``; a clear error for anything else."""
    try:
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
    except OSError as error:
        raise CliError(f"--pipeline {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise CliError(f"--pipeline {path} is not JSON ({error})") from None
    if not isinstance(job, dict) or "pipelineSpec" not in job or "runtimeConfig" not in job:
        raise CliError(
            f"--pipeline {path} is not a compiled pipeline job: make it with "
            "'alexnet-tfx compile-kubeflow'"
        )
    return job


def run_parameters(job: dict, overrides: list[str]) -> dict[str, str]:
    """The job's runtime parameters, each ``NAME=VALUE`` in ``overrides`` replacing one."""
    parameters = dict(job["runtimeConfig"].get("parameterValues", {}))
    for override in overrides:
        name, sep, value = override.partition("=")
        if not sep:
            raise CliError(f"--param {override!r}: expected NAME=VALUE")
        if name not in parameters:
            raise CliError(f"--param {name}: the pipeline's parameters are {sorted(parameters)}")
        parameters[name] = value
    if DATA_ROOT_PARAMETER in parameters:
        check_remote(parameters[DATA_ROOT_PARAMETER], f"--param {DATA_ROOT_PARAMETER}")
    return parameters


def parse_labels(labels: list[str]) -> dict[str, str]:
    result = {}
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise CliError(f"--label {label!r}: expected KEY=VALUE")
        result[key] = value
    return result


def _run_name(job: dict, name: str | None) -> str:
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
        raise CliError(f"cannot reach Kubeflow Pipelines at {host} ({reason})") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise CliError(f"cannot reach Kubeflow Pipelines at {host} ({error})") from None
    except kfp_server_api.ApiException as error:
        raise CliError(
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
        raise CliError(
            "no Google Cloud credentials: run 'gcloud auth application-default login' or set "
            f"GOOGLE_APPLICATION_CREDENTIALS ({str(error).splitlines()[0]})"
        ) from None
    except ValueError as error:  # labels or job id that Vertex AI would reject
        raise CliError(f"Vertex AI: {error}") from None


def submit(args) -> int:
    """The ``submit`` subcommand."""
    job = load_job(args.pipeline)
    parameters = run_parameters(job, args.param)
    labels = parse_labels(args.label)
    run_name = _run_name(job, args.run_name)
    enable_caching = False if args.no_cache else None  # None: as compiled
    if args.host:
        if labels:
            raise CliError("--label applies to Vertex AI runs only (--vertex)")
        run_id = submit_kfp(
            job,
            args.host,
            run_name=run_name,
            parameters=parameters,
            experiment=args.experiment,
            namespace=args.namespace,
            enable_caching=enable_caching,
            service_account=args.service_account,
        )
        print(f"Started run {run_name} ({run_id}) on {args.host}")
        return 0
    if not (args.project and args.region):
        raise CliError("--vertex needs --project and --region")
    pipeline_job = vertex_job(
        args.pipeline,
        job,
        project=args.project,
        region=args.region,
        run_name=run_name,
        parameters=parameters,
        labels=labels,
        enable_caching=enable_caching,
    )
    from google.api_core import exceptions as api_exceptions

    try:
        pipeline_job.submit(service_account=args.service_account, experiment=args.experiment)
    except api_exceptions.GoogleAPICallError as error:
        raise CliError(f"Vertex AI refused the run: {error.message}") from None
    print(f"Started {pipeline_job.resource_name} in {args.project}/{args.region}")
    return 0
