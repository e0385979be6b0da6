"""What the pipeline needs on Kubeflow Pipelines v2 / Vertex AI, and checks of it: the image
(and where files are inside it), remote URIs, the Trainer's GPUs, Beam options per runner, and
container resources.

Every check raises a one-line UserError before TFX is imported, so a wrong flag costs nothing.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re

from data import bundled
from data.errors import UserError

# The Dockerfile's WORKDIR: the package lives here in the image, so the spec names files here,
# never on the compiling machine.
IMAGE_ROOT = "/alexnet-tfx"
PACKAGE_ROOT = os.path.dirname(bundled.DATA_DIR)

BEAM_RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner")

# The backends a spec is compiled for (docs/kubeflow.md), and the job label that records it.
KFP, VERTEX = "kfp", "vertex"
BACKEND_NAMES = {KFP: "Kubeflow Pipelines 2.x (open source)", VERTEX: "Vertex AI Pipelines"}
BACKENDS = tuple(BACKEND_NAMES)
BACKEND_LABEL = "alexnet-tfx-backend"


def backend_of(job: dict) -> str:
    """The backend a compiled job was made for; jobs compiled before the label: Vertex AI's."""
    return job.get("labels", {}).get(BACKEND_LABEL, VERTEX)


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
# Steps read and write artifacts with TensorFlow's file system and Beam's, which read gs://.
# TensorFlow 2.16 has no s3:// and no minio:// file system (docs/kubeflow.md, "Storage"), so a
# root there would fail at the first step that opens a file.
REMOTE_SCHEMES = ("gs://",)
UNSUPPORTED_SCHEMES = ("s3://", "minio://")


def image_path(local_path: str) -> str:
    """Where a file of this package lives inside the image."""
    relative = os.path.relpath(local_path, PACKAGE_ROOT)
    return posixpath.join(IMAGE_ROOT, *relative.split(os.sep))


def local_path(path_in_image: str) -> str:
    """The file of this package that ``path_in_image`` names (``image_path``'s inverse);
    any other path unchanged."""
    relative = posixpath.relpath(path_in_image, IMAGE_ROOT)
    if not path_in_image.startswith(IMAGE_ROOT + "/") or relative.startswith(".."):
        return path_in_image
    return os.path.join(PACKAGE_ROOT, *relative.split("/"))


def check_pipeline_name(name: str) -> str:
    if not _PIPELINE_NAME.fullmatch(name):
        raise UserError(
            f"--pipeline-name {name!r}: Kubeflow needs lower-case letters, digits and '-', "
            "starting with a letter or digit, at most 128 characters"
        )
    return name


def check_remote(uri: str, flag: str) -> str:
    """A URI every pod can reach; a local path would name a directory on no pod."""
    if uri.startswith(UNSUPPORTED_SCHEMES):
        raise UserError(
            f"{flag} {uri!r}: the steps read and write artifacts with TensorFlow's and Beam's "
            "file systems, and the image's TensorFlow 2.16 has no s3:// or minio:// file "
            "system, so the first step to open a file would fail. Use a gs:// bucket (on "
            "open-source Kubeflow Pipelines, give the pipeline's service account access to "
            "it, e.g. with GKE Workload Identity: docs/kubeflow.md, 'Storage')"
        )
    if not uri.startswith(REMOTE_SCHEMES) or len(uri) <= len("gs://"):
        raise UserError(
            f"{flag} {uri!r} is not a remote URI: the steps run in pods, so it must be one of "
            f"{', '.join(s + '...' for s in REMOTE_SCHEMES)}"
        )
    return uri.rstrip("/")


def check_image(image: str) -> str:
    if not _IMAGE.fullmatch(image):
        raise UserError(
            f"--image {image!r} is not a container image reference "
            "(e.g. us-docker.pkg.dev/PROJECT/REPO/alexnet-tfx:TAG)"
        )
    return image


def gpu_request(gpus: int | None, gpu_type: str | None, backend: str) -> tuple[int, str | None]:
    """(count, type) of the Trainer's accelerator; a type alone means one GPU.

    Vertex AI takes its accelerator names; open-source Kubeflow Pipelines uses the type as
    the Kubernetes resource name of the container's limit, verbatim (driver/driver.go
    initPodSpecPatch), so a Vertex AI name there would make the pod unschedulable.
    """
    example = "nvidia.com/gpu" if backend == KFP else "NVIDIA_TESLA_T4"
    if gpus and not gpu_type:
        raise UserError(f"--gpus {gpus} needs --gpu-type (e.g. {example} for --backend {backend})")
    if not gpu_type:
        return 0, None
    if backend == KFP:
        if not _K8S_RESOURCE.fullmatch(gpu_type):
            raise UserError(
                f"--gpu-type {gpu_type!r}: Kubeflow Pipelines requests the type as a "
                "Kubernetes resource, e.g. nvidia.com/gpu (a Vertex AI name is compiled with "
                "--backend vertex)"
            )
        return gpus or 1, gpu_type
    from google.cloud.aiplatform_v1.types import accelerator_type

    vertex_types = {t.name for t in accelerator_type.AcceleratorType} - {
        "ACCELERATOR_TYPE_UNSPECIFIED"
    }
    if gpu_type not in vertex_types:
        raise UserError(
            f"--gpu-type {gpu_type!r} is not a Vertex AI accelerator "
            f"({', '.join(sorted(vertex_types))})"
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
        raise UserError(f"--beam-arg: Beam has no option {', '.join(sorted(unknown))}")
    if known["runner"] not in (None, runner):
        raise UserError(
            f"--beam-arg --runner={known['runner']} contradicts --beam-runner {runner}: "
            "give the runner once, with --beam-runner"
        )

    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}

    def require(*names: str) -> None:
        # Given explicitly: Beam's own defaults would start a local Flink or Spark in the pod.
        missing = [f"--beam-arg=--{name}=..." for name in names if f"--{name}" not in given]
        if missing:
            raise UserError(f"--beam-runner {runner} needs {' and '.join(missing)}")

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
        raise UserError(f"--beam-runner {runner!r}: expected one of {', '.join(BEAM_RUNNERS)}")
    return [
        f"--runner={runner}",
        *(arg for arg in defaults if arg.split("=", 1)[0] not in given),
        *extra,
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
