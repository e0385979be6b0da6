"""``alexnet-tfx kubeflow-local``: a compiled PipelineJob run on this machine, step by step."""

from __future__ import annotations

import os

from pipeline import kubeflow_platform, pipeline_root
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "kubeflow-local",
        help="dry-run a compiled Kubeflow pipeline here, every step's own container command",
        description="Run the PipelineJob JSON that compile-kubeflow wrote on this machine, as "
        "the backend's launcher runs it: each step's command from the spec with its "
        "ExecutorInput, gs://BUCKET/... mapped to GCS_DIR/BUCKET/..., steps cached as the "
        "backend caches them. Under the open-source backend's rules (kfp) what it refuses is "
        "refused, inputs arrive untyped and input artifacts are copied to the step's pod; "
        "under Vertex AI's, resolvers are answered from earlier runs in GCS_DIR.",
    )
    p.add_argument("--pipeline", default="pipeline.json", help="the compiled JSON")
    p.add_argument(
        "--gcs-dir",
        required=True,
        help="local directory standing in for Cloud Storage: gs://BUCKET/path is "
        "GCS_DIR/BUCKET/path (put the data_root's shards there)",
    )
    p.add_argument(
        "--backend",
        choices=kubeflow_platform.BACKENDS,
        default=None,
        help="whose rules to apply: kfp (open-source Kubeflow Pipelines 2.x) or vertex "
        "(default: the backend the spec was compiled for)",
    )
    p.add_argument(
        "--parallel",
        type=flags.positive_int,
        default=2,
        help="steps run at once, each as soon as its upstream steps completed (default: 2)",
    )
    flags.add_param_flag(p)
    p.add_argument("--no-cache", action="store_true", help="re-execute every step")
    flags.add_verbose_flag(p)
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
        return kubeflow_launcher.run(
            job,
            gcs_dir,
            parameters,
            backend=args.backend or kubeflow_platform.backend_of(job),
            enable_cache=not args.no_cache,
            parallel=args.parallel,
        )
