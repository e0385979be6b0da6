"""The pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

Builds the paths, calls ``create_pipeline``, runs it with a progress line per component and
ends with the run's summary. Inputs and flags are checked before (``data.preflight``,
``pipeline.presets``), the pipeline root here, before anything runs.
"""

from __future__ import annotations

import os
import sys

from data import bundled
from data.preflight import DataInput
from pipeline import configs, metadata, pipeline_root, progress, run_report, summary
from pipeline.presets import Settings


def run(
    data: DataInput,
    settings: Settings,
    *,
    root: str = configs.PIPELINE_ROOT,
    serving_dir: str | None = None,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = True,
) -> int:
    """Runs the whole pipeline; 0 when it ran to the end (blessed or not), 1 when it failed."""
    root = pipeline_root.writable_dir(root, "--pipeline-root")
    serving_dir = pipeline_root.writable_dir(
        serving_dir or os.path.join(root, configs.SERVING_DIR_NAME), "--serving-dir"
    )
    with pipeline_root.exclusive_run(root):
        from tfx import v1 as tfx

        from pipeline.pipeline import create_pipeline

        pipeline = create_pipeline(
            pipeline_name=configs.PIPELINE_NAME,
            pipeline_root=root,
            data_root=data.root,
            schema_file=bundled.schema_file(data.record_format),
            serving_dir=serving_dir,
            transform=settings.transform,
            trainer=settings.trainer,
            gate=settings.gate,
            raw_tree=data.raw_tree,
            validation_labels=data.validation_labels,
            beam_pipeline_args=beam_pipeline_args,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                metadata.metadata_path(root)
            ),
            enable_cache=enable_cache,
        )
        print(f"Running {configs.PIPELINE_NAME} on {data.root} ({data.describe()})", flush=True)
        try:
            with progress.progress_lines():
                tfx.orchestration.LocalDagRunner().run(pipeline)
        except Exception as error:  # the summary says how far it got; the error says why
            print(summary.render(run_report.collect(root, history=False)), flush=True)
            print(f"alexnet-tfx run: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        print(summary.render(run_report.collect(root, history=False)), flush=True)
        return 0
