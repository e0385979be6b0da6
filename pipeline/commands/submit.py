"""``alexnet-tfx submit``: start a compiled pipeline on Kubeflow Pipelines or Vertex AI."""

from __future__ import annotations

from data.errors import UserError
from pipeline import kubeflow_platform
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "submit",
        help="run a compiled pipeline on Kubeflow Pipelines or Vertex AI Pipelines",
        description="Start a run of the PipelineJob JSON that compile-kubeflow wrote.",
    )
    p.add_argument("--pipeline", default="pipeline.json", help="the compiled JSON")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="Kubeflow Pipelines API endpoint, e.g. http://localhost:8080")
    where.add_argument("--vertex", action="store_true", help="Vertex AI Pipelines")
    p.add_argument("--project", help="Google Cloud project (--vertex)")
    p.add_argument("--region", help="Google Cloud region, e.g. us-central1 (--vertex)")
    p.add_argument("--run-name", default=None, help="default: PIPELINE_NAME-YYYYmmdd-HHMMSS")
    p.add_argument("--experiment", default=None)
    p.add_argument("--namespace", default=None, help="Kubeflow profile namespace (--host)")
    p.add_argument("--service-account", default=None)
    flags.add_param_flag(p)
    p.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a Vertex AI label"
    )
    p.add_argument("--no-cache", action="store_true", help="re-execute every step of this run")
    flags.add_verbose_flag(p)
    p.set_defaults(handler=main)


def main(args) -> int:
    from pipeline import kubeflow_submit

    job = kubeflow_submit.load_job(args.pipeline)
    kubeflow_submit.check_backend(
        job, kubeflow_platform.KFP if args.host else kubeflow_platform.VERTEX
    )
    parameters = kubeflow_submit.run_parameters(job, args.param)
    labels = kubeflow_submit.parse_labels(args.label)
    run_name = kubeflow_submit.run_name(job, args.run_name)
    enable_caching = False if args.no_cache else None  # None: as compiled
    if args.host:
        if labels:
            raise UserError("--label applies to Vertex AI runs only (--vertex)")
        run_id = kubeflow_submit.submit_kfp(
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
        raise UserError("--vertex needs --project and --region")
    pipeline_job = kubeflow_submit.vertex_job(
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
        raise UserError(f"Vertex AI refused the run: {error.message}") from None
    print(f"Started {pipeline_job.resource_name} in {args.project}/{args.region}")
    return 0
