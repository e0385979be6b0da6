"""The pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

Calls ``create_pipeline`` with the local paths, runs it under the pipeline root's lock and
ends with the run's summary. The command checks flags, data and paths before
(``pipeline.commands.run``), and sets up what the run prints (``pipeline.run_log``).
"""

from __future__ import annotations

import sys

from data import bundled
from data.preflight import DataInput
from pipeline import configs, metadata, pipeline_root, run_report, summary
from pipeline.presets import Settings


def run(
    data: DataInput,
    settings: Settings,
    *,
    root: str,
    serving_dir: str,
    log: str,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = True,
) -> int:
    """Runs the whole pipeline; 0 when it ran to the end (blessed or not), 1 when it failed."""
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
            tfx.orchestration.LocalDagRunner().run(pipeline)
        except Exception as error:  # the summary says how far it got; the error says why
            _print_summary(root, log)
            print(f"alexnet-tfx run: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
        _print_summary(root, log)
        return 0


def _print_summary(root: str, log: str) -> None:
    try:
        print(summary.render(run_report.collect(root, history=False)))
    except ValueError as error:  # the run failed before ML Metadata recorded it
        print(error)
    print(f"Log (every message, TensorFlow's and TFX's too): {log}", flush=True)
