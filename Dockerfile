# The pipeline image. Every step of the spec that `alexnet-tfx compile-kubeflow` writes runs in
# it (`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...`), and
# Dataflow, Flink and Spark workers run it as their Beam SDK container (its entrypoint).
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/alexnet-tfx:TAG .
#
# pipeline/kubeflow_runner_test.py checks what can be checked without a Docker engine: the
# CUDA/cuDNN and Beam versions below against the locked packages, and every COPY source.

# Beam's SDK harness entrypoint, from the SDK image of the locked Beam and Python versions.
ARG BEAM_VERSION=2.59.0
FROM apache/beam_python3.10_sdk:${BEAM_VERSION} AS beam

# CUDA 12.3 and cuDNN 8.9: what TensorFlow 2.16 is built against (tf.sysconfig.get_build_info).
# Ubuntu 22.04's Python is 3.10, the newest that TFX 1.16 supports.
FROM nvidia/cuda:12.3.2-runtime-ubuntu22.04
ARG CUDNN_VERSION=8.9.7.29
# cuda-nvcc provides ptxas and libdevice, which XLA needs on GPU (--xla).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3.10 python3.10-venv \
        libcudnn8=${CUDNN_VERSION}-1+cuda12.2 \
        cuda-nvcc-12-3 \
    && apt-mark hold libcudnn8 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=beam /opt/apache/beam /opt/apache/beam

# `python` on PATH is the venv's: the compiled spec calls `python -m ...`. The venv is made
# as `make venv` makes it: uv, at the lock's version, syncs the lock (build tools included).
ARG UV_VERSION=0.13.9
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    TF_USE_LEGACY_KERAS=1
RUN python3.10 -m venv /opt/venv && pip install uv==${UV_VERSION}

# The compiled spec names files under this directory (kubeflow_platform.IMAGE_ROOT).
WORKDIR /alexnet-tfx
# The lock first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN uv pip sync --python /opt/venv/bin/python requirements.lock
COPY setup.py README.md ./
COPY pipeline pipeline
COPY components components
COPY models models
COPY data data
COPY bench bench
RUN uv pip install --python /opt/venv/bin/python --no-deps --no-build-isolation -e . \
    && pip check

ENTRYPOINT ["/opt/apache/beam/boot"]
