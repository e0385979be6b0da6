"""The pipeline compiled for Kubeflow Pipelines v2 / Vertex AI Pipelines: a ``PipelineJob`` JSON.

The Kubeflow twin of ``local_runner``: it calls the same ``create_pipeline`` with what a cluster
needs (``pipeline.kubeflow_platform``): the container image on every step, a GPU request on the
Trainer, CPU and memory on the Beam steps, Beam options for a distributed runner, and paths
inside the image. The result (pipeline spec schema 2.1.0) is written with sorted keys so that
it can be reviewed and diffed.

Two backends run such a spec and differ in what they implement (docs/kubeflow.md): ``kfp``,
the open-source Kubeflow Pipelines 2.x backend, gets a spec adapted to it
(``pipeline.kubeflow_oss``); ``vertex``, Vertex AI Pipelines, gets TFX's own. The job's label
``kubeflow_platform.BACKEND_LABEL`` records which, for ``submit`` and ``kubeflow-local``.
"""

from __future__ import annotations

import json

from data import bundled
from pipeline import kubeflow_platform
from pipeline.presets import Settings

# A runtime parameter, so that one reviewed spec can run on the sample or on full ImageNet.
DATA_ROOT_PARAMETER = "data_root"


def compile_job(
    settings: Settings,
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    serving_dir: str,
    image: str,
    beam_pipeline_args: list[str],
    beam_resources,
    trainer_resources,
    backend: str = kubeflow_platform.KFP,
    enable_cache: bool = True,
) -> dict:
    """The ``PipelineJob`` as a JSON dict for ``backend``; ``data_root`` becomes the runtime
    parameter's value.

    ``beam_resources`` and ``trainer_resources`` are KFP ResourceSpecs
    (``kubeflow_platform.resource_spec``).
    """
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from pipeline import configs, kubeflow_oss
    from pipeline.pipeline import create_pipeline

    if backend not in kubeflow_platform.BACKEND_NAMES:
        raise ValueError(f"backend {backend!r}: expected one of {kubeflow_platform.BACKENDS}")
    oss = backend == kubeflow_platform.KFP
    schema = bundled.schema_file(settings.transform.record_format)
    pipeline = create_pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        data_root=tfx.dsl.experimental.RuntimeParameter(name=DATA_ROOT_PARAMETER, ptype=str),
        schema_file=kubeflow_platform.image_path(schema),
        serving_dir=serving_dir,
        transform=settings.transform,
        trainer=settings.trainer,
        gate=settings.gate,
        beam_pipeline_args=beam_pipeline_args,
        beam_platform_config=beam_resources,
        trainer_platform_config=trainer_resources,
        enable_cache=enable_cache,
        baseline=configs.BASELINE_PUSHED if oss else configs.BASELINE_RESOLVER,
    )
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=image,
            default_commands=list(kubeflow_oss.ENTRYPOINT) if oss else None,
            use_pipeline_spec_2_1=True,
        )
    )
    job = runner.run(pipeline, parameter_values={DATA_ROOT_PARAMETER: data_root}, write_out=False)
    job["labels"][kubeflow_platform.BACKEND_LABEL] = backend
    return kubeflow_oss.adapt(job) if oss else job


def write_job(job: dict, path: str) -> None:
    """Indented, sorted JSON: the same inputs give the same bytes, and diffs stay readable."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(job, f, indent=2, sort_keys=True)
        f.write("\n")
