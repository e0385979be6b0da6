"""``alexnet-tfx compile-kubeflow``: the pipeline as a KFP v2 PipelineJob JSON (offline)."""

from __future__ import annotations

import os

from data import records
from data.errors import UserError
from pipeline import configs, kubeflow_platform
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compile-kubeflow",
        help="compile the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines",
        description="Compile the pipeline to a KFP v2 PipelineJob JSON (offline, deterministic): "
        "every step in --image, the Trainer on --gpus, Beam steps on --beam-runner. Submit it "
        "with 'alexnet-tfx submit'.",
    )
    p.add_argument("--output", default="pipeline.json", help="the JSON to write (pipeline.json)")
    p.add_argument(
        "--backend",
        choices=kubeflow_platform.BACKENDS,
        default=kubeflow_platform.KFP,
        help="what runs the spec: kfp, open-source Kubeflow Pipelines 2.x (default; the "
        "baseline from the serving directory, ExampleGen's driver as a step), or vertex, "
        "Vertex AI Pipelines (TFX's own spec, with its Resolver); docs/kubeflow.md",
    )
    p.add_argument("--image", required=True, help="the pipeline image built from the Dockerfile")
    p.add_argument("--pipeline-root", required=True, help="gs://... for artifacts (and metadata)")
    p.add_argument(
        "--data-root",
        required=True,
        help="gs://... directory of train-*/validation-* TFRecord shards; a runtime parameter "
        "(submit --param data_root=... runs the same spec on other data)",
    )
    p.add_argument(
        "--record-format",
        choices=sorted(records.FORMATS),
        default=records.BUILD_IMAGENET.name,
        help="record format of --data-root (compilation is offline: it cannot look)",
    )
    p.add_argument(
        "--serving-dir", default=None, help="gs://... (default: PIPELINE_ROOT/serving_model)"
    )
    p.add_argument("--pipeline-name", default=configs.PIPELINE_NAME)
    p.add_argument("--gpus", type=flags.positive_int, default=None, help="GPUs for the Trainer")
    p.add_argument(
        "--gpu-type",
        default=None,
        help="accelerator: the Kubernetes resource, e.g. nvidia.com/gpu (--backend kfp), or "
        "NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100, ... (--backend vertex); alone, it "
        "means one GPU",
    )
    p.add_argument("--trainer-cpus", type=float, default=8.0)
    p.add_argument("--trainer-memory-gb", type=float, default=32.0)
    p.add_argument(
        "--beam-runner",
        choices=kubeflow_platform.BEAM_RUNNERS,
        default="DirectRunner",
        help="Beam runner of ImportExampleGen, Quarantine, StatisticsGen, Transform, Evaluator "
        "(DirectRunner: multi-processing inside each step's pod)",
    )
    p.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline option, e.g. --beam-arg=--project=P (repeatable)",
    )
    p.add_argument("--beam-cpus", type=float, default=8.0, help="CPUs of each Beam step's pod")
    p.add_argument("--beam-memory-gb", type=float, default=32.0)
    flags.add_settings_flags(p)
    p.add_argument("--no-cache", action="store_true", help="re-execute every component")
    flags.add_verbose_flag(p)
    p.set_defaults(handler=main)


def main(args) -> int:
    resolved = flags.resolve_settings(
        args, {"transform.record_format": (args.record_format, "--record-format")}
    )
    if args.print_config:
        return flags.print_config(resolved)
    if not args.output.endswith(".json"):
        raise UserError(f"--output {args.output!r}: the compiled pipeline is JSON, name it *.json")
    directory = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(directory):
        raise UserError(f"--output {args.output!r}: directory {directory} does not exist")
    for flag, value in (
        ("--trainer-cpus", args.trainer_cpus),
        ("--trainer-memory-gb", args.trainer_memory_gb),
        ("--beam-cpus", args.beam_cpus),
        ("--beam-memory-gb", args.beam_memory_gb),
    ):
        if not value > 0:
            raise UserError(f"{flag} must be > 0, got {value}")
    pipeline_name = kubeflow_platform.check_pipeline_name(args.pipeline_name)
    image = kubeflow_platform.check_image(args.image)
    pipeline_root = kubeflow_platform.check_remote(args.pipeline_root, "--pipeline-root")
    data_root = kubeflow_platform.check_remote(args.data_root, "--data-root")
    serving_dir = kubeflow_platform.check_remote(
        args.serving_dir or f"{pipeline_root}/{configs.SERVING_DIR_NAME}", "--serving-dir"
    )
    gpus, gpu_type = kubeflow_platform.gpu_request(args.gpus, args.gpu_type, args.backend)
    beam_args = kubeflow_platform.beam_pipeline_args(
        args.beam_runner,
        args.beam_arg,
        image=image,
        pipeline_root=pipeline_root,
        workers=max(1, int(args.beam_cpus)),
    )
    from pipeline import kubeflow_runner

    job = kubeflow_runner.compile_job(
        resolved.settings,
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        data_root=data_root,
        serving_dir=serving_dir,
        image=image,
        beam_pipeline_args=beam_args,
        beam_resources=kubeflow_platform.resource_spec(args.beam_cpus, args.beam_memory_gb),
        trainer_resources=kubeflow_platform.resource_spec(
            args.trainer_cpus, args.trainer_memory_gb, gpus, gpu_type
        ),
        backend=args.backend,
        enable_cache=not args.no_cache,
    )
    kubeflow_runner.write_job(job, args.output)
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    backend = kubeflow_platform.BACKEND_NAMES[args.backend]
    print(
        f"Wrote {args.output} for {backend}: {len(tasks)} steps, image {args.image}, "
        f"Beam {args.beam_runner}"
    )
    return 0
