"""``alexnet-tfx kubeflow-local``: a compiled PipelineJob run on this machine, step by step."""

from __future__ import annotations

import os

from pipeline import pipeline_root
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "kubeflow-local",
        help="dry-run a compiled Kubeflow pipeline here, every step's own container command",
        description="Run the PipelineJob JSON that compile-kubeflow wrote on this machine, as "
        "the KFP v2 launcher runs it: each step's command from the spec with its "
        "ExecutorInput, gs://BUCKET/... mapped to GCS_DIR/BUCKET/..., resolvers answered from "
        "earlier runs in GCS_DIR, steps cached as KFP caches them.",
    )
    p.add_argument("--pipeline", default="pipeline.json", help="the compiled JSON")
    p.add_argument(
        "--gcs-dir",
        required=True,
        help="local directory standing in for Cloud Storage: gs://BUCKET/path is "
        "GCS_DIR/BUCKET/path (put the data_root's shards there)",
    )
    flags.add_param_flag(p)
    p.add_argument("--no-cache", action="store_true", help="re-execute every step")
    p.set_defaults(handler=main)


def main(args) -> int:
    from pipeline import kubeflow_launcher, kubeflow_submit, run_log

    job = kubeflow_submit.load_job(args.pipeline)
    parameters = kubeflow_submit.run_parameters(job, args.param)
    gcs_dir = pipeline_root.writable_dir(args.gcs_dir, "--gcs-dir")
    # The steps' output goes to their own files; this is the launcher's (TensorFlow's start-up
    # lines when the summary reads the evaluation), kept out of the terminal as run keeps it.
    log = run_log.log_path(os.path.join(gcs_dir, kubeflow_launcher.LAUNCHER_DIR))
    with run_log.logged_run(log):
        return kubeflow_launcher.run(job, gcs_dir, parameters, enable_cache=not args.no_cache)
