"""What the pipeline needs of a cluster, offline: Beam options per runner, image references,
GPU requests, and the image's Dockerfile against the lock and the build context."""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys

import pytest
from packaging.requirements import Requirement

from data.errors import UserError
from pipeline import kubeflow_platform
from pipeline.kubeflow_runner_test import IMAGE, REPO, ROOT


def test_portable_runners_run_the_image_as_their_sdk_worker():
    flink = kubeflow_platform.beam_pipeline_args(
        "FlinkRunner", ["--flink_master=flink:8081"], image=IMAGE, pipeline_root=ROOT, workers=2
    )
    assert flink == [
        "--runner=FlinkRunner",
        "--flink_submit_uber_jar",
        "--environment_type=DOCKER",
        f"--environment_config={IMAGE}",
        "--flink_master=flink:8081",
    ]
    # A Beam worker-pool sidecar instead of Docker-in-Docker: the user's choice replaces ours.
    sidecar = [
        "--spark_rest_url=http://spark:6066",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000",
    ]
    spark = kubeflow_platform.beam_pipeline_args(
        "SparkRunner", sidecar, image=IMAGE, pipeline_root=ROOT, workers=2
    )
    assert spark == ["--runner=SparkRunner", "--spark_submit_uber_jar", *sidecar]


@pytest.mark.parametrize(
    "image",
    [
        "alexnet-tfx:dev",
        "localhost:5000/alexnet-tfx",
        "us-docker.pkg.dev/p/r/alexnet-tfx:1.0",
        "gcr.io/p/alexnet-tfx@sha256:" + "0" * 64,
    ],
)
def test_image_references_are_accepted(image):
    assert kubeflow_platform.check_image(image) == image


@pytest.mark.parametrize(
    "image", ["Alexnet/TFX", "alexnet-tfx:", "alexnet tfx", "gcr.io/p/x@md5:0"]
)
def test_malformed_image_references_are_refused(image):
    with pytest.raises(UserError, match="is not a container image reference"):
        kubeflow_platform.check_image(image)


def test_a_gpu_type_alone_means_one_gpu():
    assert kubeflow_platform.gpu_request(None, "nvidia.com/gpu", "kfp") == (1, "nvidia.com/gpu")
    assert kubeflow_platform.gpu_request(4, "NVIDIA_L4", "vertex") == (4, "NVIDIA_L4")
    assert kubeflow_platform.gpu_request(None, None, "kfp") == (0, None)


def test_each_backend_takes_its_own_kind_of_gpu_name():
    """The open-source backend requests the type as a Kubernetes resource, verbatim
    (backend/src/v2/driver/driver.go); Vertex AI takes its accelerator names."""
    with pytest.raises(UserError, match="requests the type as a Kubernetes resource"):
        kubeflow_platform.gpu_request(1, "NVIDIA_L4", "kfp")
    with pytest.raises(UserError, match="is not a Vertex AI accelerator"):
        kubeflow_platform.gpu_request(1, "nvidia.com/gpu", "vertex")


@pytest.mark.parametrize("uri", ["minio://mlpipeline/v2/artifacts", "s3://bucket/root"])
def test_object_stores_tensorflow_cannot_open_are_refused_with_the_fix(uri):
    with pytest.raises(UserError) as error:
        kubeflow_platform.check_remote(uri, "--pipeline-root")
    assert "no s3:// or minio:// file system" in str(error.value)
    assert "Use a gs:// bucket" in str(error.value)


def dockerfile() -> str:
    with open(os.path.join(REPO, "Dockerfile"), encoding="utf-8") as f:
        return f.read()


def lock() -> dict[str, str]:
    pins = {}
    with open(os.path.join(REPO, "requirements.lock"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def arg(name: str) -> str:
    (value,) = re.findall(rf"^ARG {name}=(\S+)$", dockerfile(), re.MULTILINE)
    return value


def docker_ignored(path: str, patterns: list[tuple[bool, str, re.Pattern]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for exclude, _, pattern in patterns:
        if exclude != ignored and any(pattern.fullmatch(c) for c in candidates):
            ignored = exclude
    return ignored


def dockerignore_patterns() -> list[tuple[bool, str, re.Pattern]]:
    """(excludes, glob, regex) per .dockerignore line, the glob translated as Docker does."""
    patterns = []
    with open(os.path.join(REPO, ".dockerignore"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            glob = os.path.normpath(line.lstrip("!"))
            regex = ""
            for token in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
                regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                    token, re.escape(token)
                )
            patterns.append((exclude, glob, re.compile(regex)))
    return patterns


def build_context() -> dict[str, int]:
    """{path: size} of the files `docker build .` would send."""
    patterns = dockerignore_patterns()
    context = {}
    for directory, subdirectories, files in os.walk(REPO):
        relative = os.path.relpath(directory, REPO)
        # Like Docker, skip an ignored directory unless a pattern re-includes something in it.
        subdirectories[:] = [
            d
            for d in subdirectories
            if not docker_ignored(os.path.normpath(os.path.join(relative, d)), patterns)
            or any(
                not exclude and glob.startswith(os.path.normpath(os.path.join(relative, d)) + "/")
                for exclude, glob, _ in patterns
            )
        ]
        for name in files:
            path = os.path.normpath(os.path.join(relative, name))
            if not docker_ignored(path, patterns):
                context[path] = os.path.getsize(os.path.join(REPO, path))
    return context


def test_every_copy_source_exists_and_is_in_the_build_context():
    context = build_context()
    copies = re.findall(r"^COPY (?!--from)(.+)$", dockerfile(), re.MULTILINE)
    assert copies
    for copy in copies:
        *sources, _ = copy.split()
        for source in sources:
            path = os.path.join(REPO, source)
            assert os.path.exists(path), source
            sent = [p for p in context if p == source or p.startswith(source + "/")]
            assert sent, f"{source} is excluded by .dockerignore"
    # What the image runs: the schema files, the code behind every step, and every module the
    # CLI imports to build its parser (a subcommand missing from the image breaks them all).
    from pipeline import cli

    needed = ["data/records.py", "models/trainer.py", "components/quarantine/executor.py"]
    needed += [module.replace(".", "/") + ".py" for module in cli.COMMANDS]
    for path in needed:
        assert path in context, path
    assert any(p.startswith("data/schema/") for p in context)


def test_build_context_is_small_and_holds_no_local_state():
    context = build_context()
    for local in (".venv/", ".git/", "tfx_pipeline_output/", "data/sample/", "__pycache__/"):
        assert not any(p.startswith(local) or f"/{local}" in p for p in context), local
    assert sum(context.values()) < 5 * 2**20, sorted(context, key=context.get)[-5:]


def test_image_versions_are_the_locked_ones():
    import tensorflow as tf

    text = dockerfile()
    pins = lock()
    # Beam's SDK harness from the locked Beam, for the Python the venv and the image run.
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert arg("BEAM_VERSION") == pins["apache-beam"]
    assert f"FROM apache/beam_python{python}_sdk:${{BEAM_VERSION}} AS beam" in text
    assert f"python{python} -m venv /opt/venv" in text
    # CUDA and cuDNN that TensorFlow was built against and pins for its [and-cuda] extra.
    build = tf.sysconfig.get_build_info()
    cuda_image = re.search(r"^FROM nvidia/cuda:(\d+\.\d+)\.\d+-runtime-ubuntu22\.04$", text, re.M)
    assert cuda_image and cuda_image.group(1) == build["cuda_version"]
    tf_cuda = {
        r.name: str(r.specifier)
        for r in map(Requirement, importlib.metadata.requires("tensorflow"))
        if r.marker and r.marker.evaluate({"extra": "and-cuda"})
    }
    assert f"=={arg('CUDNN_VERSION')}" == tf_cuda["nvidia-cudnn-cu12"]
    assert arg("CUDNN_VERSION").split(".")[0] == build["cudnn_version"]
    assert f"libcudnn{build['cudnn_version']}=${{CUDNN_VERSION}}-1+cuda12" in text
    # The venv is made as `make venv` makes it: uv at the lock's version syncs the lock.
    assert arg("UV_VERSION") == pins["uv"]
    assert "RUN uv pip sync --python /opt/venv/bin/python requirements.lock\n" in text
    assert "--no-deps --no-build-isolation -e ." in text and "&& pip check" in text
    # What the compiled spec relies on.
    assert re.search(rf"^WORKDIR {kubeflow_platform.IMAGE_ROOT}$", text, re.M)
    assert "PATH=/opt/venv/bin:$PATH" in text  # `python -m ...` is the venv's python
    assert "TF_USE_LEGACY_KERAS=1" in text  # TFX imports TensorFlow before this package


def test_the_tested_environment_is_the_lock():
    """The image installs requirements.lock; this venv was built from it: same packages."""
    installed = {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
        for d in importlib.metadata.distributions()
    }
    pins = lock()
    assert pins["tfx"] == "1.16.0" and pins["tensorflow"] == "2.16.2"
    assert {name: installed.get(name) for name in pins} == pins
    # Every package, build tools included (TensorFlow and Jupyter need setuptools at run time).
    assert {"pip", "setuptools", "wheel", "uv"} <= set(pins)
    assert set(installed) - {"alexnet-tfx"} == set(pins)
