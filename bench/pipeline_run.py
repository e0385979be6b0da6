"""Runs part of the real pipeline in a fresh process, measuring each component.

The pipeline is ``pipeline.pipeline.create_pipeline`` itself, run partially (TFX's
``RunOptions(to_nodes=...)``), so a benchmark times exactly what the pipeline runs, configured
as the pipeline configures it. Upstream components already run in the same pipeline root are
cached by TFX, so running up to ``Transform`` after ``TRANSFORM_INPUTS`` executes only the
Transform, and the process's peak RSS is the Transform's (plus the interpreter and imports,
reported apart).
Beam runs in memory with one worker (``--direct_num_workers=1``), as ``alexnet-tfx run`` does
by default.

Child entry point: ``python -m bench.pipeline_run SPEC_JSON``; it prints one JSON line.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import importlib.util
import json
import os
import resource
import sys

from bench import process
from pipeline import configs

TRANSFORM_INPUTS = (configs.QUARANTINE, configs.SCHEMA_GEN)  # and the example gen, upstream
BEAM_ARGS = ("--direct_num_workers=1", "--direct_running_mode=in_memory")


@dataclasses.dataclass
class PipelineFigures:
    seconds: dict[str, float]  # per executed (not cached) component, from ML Metadata
    cpu_seconds: float  # of the run, after imports (user + system, all threads)
    peak_rss_bytes: int
    start_rss_bytes: int  # after importing TensorFlow, TFT and TFX, before the run


def run(
    pipeline_root: str,
    data_root: str,
    up_to: tuple[str, ...],
    train_steps: int = 0,
    batch_size: int | None = None,
) -> PipelineFigures:
    """Runs the components ``up_to`` needs (and they) on build_imagenet records."""
    spec = {
        "pipeline_root": pipeline_root,
        "data_root": data_root,
        "up_to": list(up_to),
        "train_steps": train_steps,
        "batch_size": batch_size,
    }
    finished = process.run(process.python_module("bench.pipeline_run", json.dumps(spec)))
    if finished.returncode != 0:
        raise RuntimeError(
            f"the pipeline up to {', '.join(up_to)} failed on {data_root}:\n"
            + finished.output[-5000:]
        )
    return PipelineFigures(**json.loads(finished.last_line))


def outputs(work_dir: str, data_root: str, node_id: str, train_steps: int = 0):
    """The ``runs.ComponentRun`` of ``node_id`` on ``data_root``, run unless already run.

    The pipeline root is keyed by a digest of the ``models`` code too: TFX caches a Transform
    or a Trainer by the import path of its function, not by the code behind it.
    """
    from pipeline import metadata

    models_dir = os.path.dirname(importlib.util.find_spec("models").origin)
    digest = hashlib.sha256()
    for name in sorted(glob.glob(os.path.join(models_dir, "*.py"))):
        with open(name, "rb") as f:
            digest.update(f.read())
    name = f"pipeline-{os.path.basename(data_root)}-{digest.hexdigest()[:10]}"
    root = os.path.join(work_dir, name)
    run(root, data_root, (node_id,), train_steps=train_steps)
    store = metadata.open_store(root)
    return metadata.component_runs(store, metadata.run_ids(store)[-1])[node_id]


def _usage() -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def _main(spec: dict) -> dict:
    import tensorflow_transform.beam  # noqa: F401  (imported before the CPU clock starts)
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    from data import bundled, records
    from models.config import TransformConfig
    from pipeline import metadata, presets
    from pipeline.pipeline import create_pipeline

    root = spec["pipeline_root"]
    os.makedirs(root, exist_ok=True)
    given = {
        "transform.record_format": (records.BUILD_IMAGENET.name, "bench"),
        # The sampling that full ImageNet runs with, not the sample preset's every image.
        "transform.analyzer_sample_one_in": (TransformConfig.analyzer_sample_one_in, "bench"),
        "trainer.train_steps": (spec["train_steps"], "bench"),
    }
    if spec["batch_size"]:
        given["trainer.batch_size"] = (spec["batch_size"], "bench")
    settings = presets.resolve(presets.DEFAULT_PRESET, given).settings
    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=root,
        data_root=spec["data_root"],
        schema_file=bundled.schema_file(records.BUILD_IMAGENET.name),
        serving_dir=os.path.join(root, configs.SERVING_DIR_NAME),
        transform=settings.transform,
        trainer=settings.trainer,
        gate=settings.gate,
        beam_pipeline_args=list(BEAM_ARGS),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata.metadata_path(root)
        ),
    )
    start_cpu, start_rss = _usage()
    tfx.orchestration.LocalDagRunner().run(
        pipeline, run_options=tfx_pipeline.RunOptions(to_nodes=spec["up_to"])
    )
    end_cpu, peak_rss = _usage()

    store = metadata.open_store(root)
    executed = metadata.component_runs(store, metadata.run_ids(store)[-1])
    return {
        "seconds": {k: c.seconds for k, c in executed.items() if c.state == "complete"},
        "cpu_seconds": end_cpu - start_cpu,
        "peak_rss_bytes": peak_rss,
        "start_rss_bytes": start_rss,
    }


if __name__ == "__main__":
    print(json.dumps(_main(json.loads(sys.argv[1]))), flush=True)
