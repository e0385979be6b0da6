"""The compiled Kubeflow spec, checked offline through kfp's own protos, against the DAG, the
resources, the Beam options and the runtime values the flags asked for.

References are written here from the pipeline's design (pipeline/pipeline.py's docstring), the
CLI flags given and the installed packages' own metadata, never read back from the runner.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from pipeline import cli  # pipeline first: Keras 2 before TensorFlow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "us-docker.pkg.dev/alexnet-proj/pipelines/alexnet-tfx:1.0"
ROOT = "gs://alexnet-bucket/root"
DATA = "gs://alexnet-bucket/imagenet"
BASE = ["--image", IMAGE, "--pipeline-root", ROOT, "--data-root", DATA]
DEPLOYMENT = [
    *BASE,
    "--record-format=tfds",
    "--serving-dir=gs://alexnet-bucket/serving",
    "--gpus=2",
    "--trainer-cpus=16",
    "--trainer-memory-gb=64",
    "--beam-cpus=4",
    "--beam-memory-gb=16",
    "--beam-runner=DataflowRunner",
    "--beam-arg=--project=alexnet-proj",
    "--beam-arg=--region=us-central1",
    "--beam-arg=--max_num_workers=16",
    "--train-steps=900000",
    "--batch-size=128",
    "--learning-rate=0.02",
    "--mixed-precision=mixed_float16",
    "--min-top1=0.55",
]
# Every deployment flag set, for each backend (the GPU type is each backend's kind of name).
FULL = [*DEPLOYMENT, "--backend=vertex", "--gpu-type=NVIDIA_TESLA_V100"]
FULL_KFP = [*DEPLOYMENT, "--gpu-type=nvidia.com/gpu"]
FULL_BEAM_ARGS = [
    "--runner=DataflowRunner",
    f"--temp_location={ROOT}/beam-tmp",
    f"--sdk_container_image={IMAGE}",
    "--project=alexnet-proj",
    "--region=us-central1",
    "--max_num_workers=16",
]
RESOLVER = "latest_blessed_model_resolver"
# Each step and the steps it waits for, as pipeline/pipeline.py lays the pipeline out.
DAG = {
    "ImportExampleGen": set(),
    "Quarantine": {"ImportExampleGen"},
    "StatisticsGen": {"Quarantine"},
    "ImportSchemaGen": set(),
    "ExampleValidator": {"StatisticsGen", "ImportSchemaGen"},
    "Transform": {"Quarantine", "ImportSchemaGen"},
    "Trainer": {"Transform", "ImportSchemaGen"},
    f"{RESOLVER}-model-blessing-resolver": set(),
    f"{RESOLVER}-model-resolver": {f"{RESOLVER}-model-blessing-resolver"},
    "Evaluator": {"Quarantine", "Trainer", f"{RESOLVER}-model-resolver"},
    "Pusher": {"Trainer", "Evaluator"},
}
BEAM_STEPS = {"ImportExampleGen", "Quarantine", "StatisticsGen", "Transform", "Evaluator"}
# The open-source backend's spec: ExampleGen's driver a step before it, the baseline from the
# serving directory, no resolver; the dependencies are the same otherwise.
DRIVER = "ImportExampleGen-fingerprint"
PUSHED = "LatestPushedModel"
PUSHED_LOOKUP = "LatestPushedModel-fingerprint"
KFP_DAG = {
    **{name: deps for name, deps in DAG.items() if not name.startswith(RESOLVER)},
    DRIVER: set(),
    "ImportExampleGen": {DRIVER},
    PUSHED_LOOKUP: set(),
    PUSHED: {PUSHED_LOOKUP},
    "Evaluator": {"Quarantine", "Trainer", PUSHED},
}
# Argo's name rule (argo-workflows workflowFieldNameFmt), which KFP applies to task names as they
# are, and the driver task KFP adds beside each task X, X-driver (argocompiler/dag.go).
ARGO_NAME = re.compile(r"[a-zA-Z0-9][-a-zA-Z0-9]{0,120}")


def compile_to(path, argv: list[str]) -> dict:
    assert cli.main(["compile-kubeflow", *argv, "--output", str(path)]) == 0
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def tasks(job: dict) -> dict:
    return job["pipelineSpec"]["root"]["dag"]["tasks"]


def container(job: dict, task: str) -> dict:
    spec = job["pipelineSpec"]
    label = spec["components"][tasks(job)[task]["componentRef"]["name"]]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


def constant(job: dict, task: str, name: str):
    return tasks(job)[task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def beam_args_of(args: list[str]) -> list[str]:
    """A container's arguments less the executor invocation TFX adds (flag, value pairs)."""
    invocation = {
        "--executor_class_path",
        "--json_serialized_invocation_args",
        "--json_serialized_inputs_spec_args",
    }
    rest, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in invocation:
            skip = True
        else:
            rest.append(arg)
    return rest


def strings(value):
    """Every string in a JSON value, descending into strings that are JSON themselves."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value
        try:
            inner = json.loads(value)
        except ValueError:
            return
        if isinstance(inner, dict | list):
            yield from strings(inner)


# ------------------------------------------------------------------------ the compiled spec
# For Vertex AI (``compiled``): TFX's own spec. For the open-source backend (``compiled_kfp``):
# the same pipeline adapted to it, further below.


def test_spec_parses_strictly_into_kfp_protos(compiled):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    _, job = compiled
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert spec.schema_version == "2.1.0"
    assert spec.pipeline_info.name == "alexnet-tfx"
    assert set(spec.root.dag.tasks) == set(DAG)
    whole = json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
    assert whole.display_name == "alexnet-tfx"


def test_dag_has_every_step_with_its_dependencies(compiled):
    _, job = compiled
    found = {}
    for name, task in tasks(job).items():
        producers = {
            spec["taskOutputArtifact"]["producerTask"]
            for spec in task.get("inputs", {}).get("artifacts", {}).values()
        }
        found[name] = set(task.get("dependentTasks", [])) | producers
    assert found == DAG


def test_gpus_are_requested_by_the_trainer_only(compiled):
    _, job = compiled
    assert container(job, "Trainer")["resources"] == {
        "accelerator": {"count": "2", "type": "NVIDIA_TESLA_V100"},
        "cpuLimit": 16.0,
        "memoryLimit": 64.0,
    }
    for name in set(DAG) - {"Trainer"}:
        executor = job["pipelineSpec"]["deploymentSpec"]["executors"][f"{name}_executor"]
        assert "accelerator" not in json.dumps(executor), name


def test_beam_steps_get_cpu_and_memory(compiled):
    _, job = compiled
    # ImportExampleGen is left out: TFX 1.16 drops platform config on FileBasedExampleGen.
    for name in BEAM_STEPS - {"ImportExampleGen"}:
        assert container(job, name)["resources"] == {"cpuLimit": 4.0, "memoryLimit": 16.0}, name
    for name in {"ImportExampleGen", "ImportSchemaGen", "ExampleValidator", "Pusher"}:
        assert "resources" not in container(job, name), name


def test_every_executor_runs_the_image(compiled):
    _, job = compiled
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {label: e["container"] for label, e in executors.items() if "container" in e}
    # Every component runs in a container; only the resolver's two queries do not.
    assert set(containers) == {f"{name}_executor" for name in DAG if not name.startswith(RESOLVER)}
    assert {c["image"] for c in containers.values()} == {IMAGE}


def test_no_local_or_temp_paths_anywhere(compiled):
    _, job = compiled
    # An absolute path: a "/" that follows neither a URI scheme nor a name.
    absolute = re.compile(r"(?<![\w:/.-])/[\w.-]+")
    paths = set()
    for text in strings(job):
        for local in ("file:", REPO, tempfile.gettempdir()):
            assert local not in text, (local, text)
        paths.update(match.group() for match in absolute.finditer(text))
    # The one absolute path is inside the image.
    assert paths == {"/alexnet-tfx"}, paths


def test_paths_inside_the_image_exist_in_the_package(compiled):
    _, job = compiled
    schema = constant(job, "ImportSchemaGen", "schema_file")
    assert schema == "/alexnet-tfx/data/schema/tfds.pbtxt"
    assert os.path.isfile(os.path.join(REPO, os.path.relpath(schema, "/alexnet-tfx")))


def test_beam_options_reach_the_beam_steps_only(compiled):
    from apache_beam.options import pipeline_options as po

    _, job = compiled
    for name in BEAM_STEPS:
        args = beam_args_of(container(job, name)["args"])
        assert args == FULL_BEAM_ARGS, name
        options = po.PipelineOptions(args)
        assert options.view_as(po.StandardOptions).runner == "DataflowRunner"
        assert options.view_as(po.GoogleCloudOptions).project == "alexnet-proj"
        assert options.view_as(po.WorkerOptions).max_num_workers == 16
    driver = container(job, "ImportExampleGen")["lifecycle"]["preCacheCheck"]["args"]
    assert beam_args_of(driver) == FULL_BEAM_ARGS
    for name in {"ImportSchemaGen", "ExampleValidator", "Trainer", "Pusher"}:
        assert beam_args_of(container(job, name)["args"]) == [], name


def test_runtime_values_are_the_ones_the_cli_set(compiled):
    _, job = compiled
    assert job["runtimeConfig"] == {
        "gcsOutputDirectory": ROOT,
        "parameterValues": {"data_root": DATA},
    }
    root_inputs = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    assert root_inputs == {"data_root": {"parameterType": "STRING"}}
    example_gen = tasks(job)["ImportExampleGen"]["inputs"]["parameters"]["input_base"]
    assert example_gen == {"componentInputParameter": "data_root"}

    trainer_config = json.loads(constant(job, "Trainer", "custom_config"))
    trainer = trainer_config["trainer"]
    assert trainer["batch_size"] == 128
    assert trainer["learning_rate"] == 0.02
    assert trainer["mixed_precision"] == "mixed_float16"
    assert trainer["checkpoint_root"] == f"{ROOT}/trainer_checkpoints"
    assert trainer["train_steps"] == 900000
    assert trainer_config["transform"]["record_format"] == "tfds"
    assert json.loads(constant(job, "Trainer", "train_args"))["num_steps"] == 900000
    assert constant(job, "Trainer", "run_fn") == "models.trainer.run_fn"
    transform_config = json.loads(constant(job, "Transform", "custom_config"))
    assert transform_config["transform"]["record_format"] == "tfds"
    assert constant(job, "Quarantine", "record_format") == "tfds"
    push = json.loads(constant(job, "Pusher", "push_destination"))
    assert push == {"filesystem": {"base_directory": "gs://alexnet-bucket/serving"}}
    eval_config = json.dumps(json.loads(constant(job, "Evaluator", "eval_config")))
    assert re.findall(r'"lower_bound": ([\d.]+)', eval_config) == ["0.55"]  # --min-top1
    for name in set(DAG) - {f"{RESOLVER}-model-blessing-resolver", f"{RESOLVER}-model-resolver"}:
        assert tasks(job)[name]["cachingOptions"] == {"enableCache": True}, name


# ------------------------------------------------ the spec for open-source Kubeflow Pipelines


def producers(task: dict) -> set[str]:
    """The steps a task waits for: declared, or whose output parameters it takes."""
    parameters = task.get("inputs", {}).get("parameters", {}).values()
    return set(task.get("dependentTasks", [])) | {
        p["taskOutputParameter"]["producerTask"] for p in parameters if "taskOutputParameter" in p
    }


def test_the_kfp_spec_holds_only_executors_the_open_source_backend_runs(compiled_kfp):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    _, job = compiled_kfp
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert spec.schema_version == "2.1.0"  # the only one KFP's API server takes
    assert job["labels"]["alexnet-tfx-backend"] == "kfp"
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    # backend/src/v2/compiler/visitor.go: container and importer executors only.
    assert {kind for e in executors.values() for kind in e} == {"container"}
    assert {e["container"]["image"] for e in executors.values()} == {IMAGE}
    assert {tuple(e["container"]["command"]) for e in executors.values()} == {
        ("python", "-m", "pipeline.kubeflow_entrypoint")
    }
    # Nothing the backend ignores: ExampleGen's driver is a step of its own.
    assert "lifecycle" not in json.dumps(executors)
    names = set(tasks(job))
    assert all(ARGO_NAME.fullmatch(name) for name in names), names
    assert not {f"{name}-driver" for name in names} & names


def test_the_kfp_dag_has_the_driver_and_the_baseline_step(compiled_kfp):
    _, job = compiled_kfp
    assert {name: producers(task) for name, task in tasks(job).items()} == KFP_DAG


def test_artifacts_travel_by_reference_so_the_launcher_copies_none(compiled_kfp):
    """No task takes an input artifact (the launcher would copy it to the pod); each takes
    ``<key>_artifact`` parameters from outputs its producer declares."""
    _, job = compiled_kfp
    components = job["pipelineSpec"]["components"]
    for name, task in tasks(job).items():
        component = components[task["componentRef"]["name"]]
        assert "artifacts" not in task.get("inputs", {}), name
        assert "artifacts" not in component.get("inputDefinitions", {}), name
        outputs = component.get("outputDefinitions", {})
        for key in outputs.get("artifacts", {}):
            assert outputs["parameters"][f"{key}_artifact"] == {"parameterType": "STRING"}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if not key.endswith("_artifact"):
                continue
            producer = source["taskOutputParameter"]
            produced = components[tasks(job)[producer["producerTask"]]["componentRef"]["name"]]
            assert producer["outputParameterKey"].endswith("_artifact"), name
            artifact = producer["outputParameterKey"][: -len("_artifact")]
            assert artifact in produced["outputDefinitions"]["artifacts"], (name, key)
    # What the Evaluator compares with: the baseline step's model.
    evaluator = tasks(job)["Evaluator"]["inputs"]["parameters"]["baseline_model_artifact"]
    assert evaluator["taskOutputParameter"]["producerTask"] == PUSHED


def test_the_lookups_feed_their_steps_cache_keys_and_only_they_are_uncached(compiled_kfp):
    _, job = compiled_kfp
    parameters = tasks(job)["ImportExampleGen"]["inputs"]["parameters"]
    for key in ("input_fingerprint", "span", "input_config"):
        assert parameters[key] == {
            "taskOutputParameter": {"outputParameterKey": key, "producerTask": DRIVER}
        }
    driver_inputs = tasks(job)[DRIVER]["inputs"]["parameters"]
    assert driver_inputs["input_base"] == {"componentInputParameter": "data_root"}
    # TFX's entrypoint types the parameters from its own copy of the input definitions.
    args = container(job, "ImportExampleGen")["args"]
    inputs_spec = json.loads(args[args.index("--json_serialized_inputs_spec_args") + 1])
    assert inputs_spec["parameters"]["span"] == {"parameterType": "NUMBER_INTEGER"}
    # The baseline step is cached while the newest pushed model is the same model.
    fingerprint = tasks(job)[PUSHED]["inputs"]["parameters"]["pushed_model_fingerprint"]
    assert fingerprint["taskOutputParameter"]["producerTask"] == PUSHED_LOOKUP
    for name in (PUSHED, PUSHED_LOOKUP):
        assert constant(job, name, "serving_dir") == "gs://alexnet-bucket/serving"
    cached = {name for name, task in tasks(job).items() if "cachingOptions" in task}
    assert cached == set(KFP_DAG) - {DRIVER, PUSHED_LOOKUP}


def test_the_kfp_trainer_requests_gpus_as_a_kubernetes_resource(compiled_kfp):
    _, job = compiled_kfp
    # backend/src/v2/driver/driver.go: the type is the container limit's resource name.
    assert container(job, "Trainer")["resources"]["accelerator"] == {
        "count": "2",
        "type": "nvidia.com/gpu",
    }
    for name in BEAM_STEPS:
        assert beam_args_of(container(job, name)["args"]) == FULL_BEAM_ARGS, name


def test_compiling_twice_gives_identical_json(compiled_kfp, tmp_path):
    path, _ = compiled_kfp
    again = tmp_path / "again.json"
    compile_to(again, FULL_KFP)
    assert again.read_bytes() == path.read_bytes()


def compile_in_process(package_dir: str, output) -> dict:
    """``compile-kubeflow FULL`` in a fresh interpreter whose code is ``package_dir``'s."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "compile-kubeflow", *FULL, "--output", str(output)],
        cwd=output.parent,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([package_dir, os.environ.get("PYTHONPATH", "")]),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(output.read_text())


def test_the_cli_in_another_process_and_directory_writes_the_same_json(compiled, tmp_path):
    path, _ = compiled
    compile_in_process(REPO, tmp_path / "cli.json")
    assert (tmp_path / "cli.json").read_bytes() == path.read_bytes()


def test_the_spec_carries_the_fingerprint_of_the_code_each_step_runs(compiled, tmp_path):
    """A copy of the package with an edited network compiles a Trainer that no cache answers
    for the original, and the same Transform."""
    copy = tmp_path / "package"
    for package in ("data", "models", "components", "pipeline", "bench"):
        ignore = shutil.ignore_patterns("__pycache__", "sample")
        shutil.copytree(os.path.join(REPO, package), copy / package, ignore=ignore)
    with open(copy / "models" / "alexnet.py", "a", encoding="utf-8") as f:
        f.write("\nEDITED = True  # the network changed\n")
    edited = compile_in_process(str(copy), tmp_path / "edited.json")
    _, job = compiled
    for step, changed in (("Transform", False), ("Trainer", True)):
        original = json.loads(constant(job, step, "custom_config"))["code_fingerprint"]
        now = json.loads(constant(edited, step, "custom_config"))["code_fingerprint"]
        assert (original != now) == changed, step


@pytest.mark.parametrize("backend", ["vertex", "kfp"])
def test_everything_the_spec_runs_is_importable(backend, request):
    _, job = request.getfixturevalue("compiled" if backend == "vertex" else "compiled_kfp")
    modules, classes = set(), set()
    for executor in job["pipelineSpec"]["deploymentSpec"]["executors"].values():
        if "container" not in executor:
            continue
        run = executor["container"]
        hooks = [run, run.get("lifecycle", {}).get("preCacheCheck", {})]
        for hook in hooks:
            if hook:
                assert hook["command"][:2] == ["python", "-m"], hook["command"]
                modules.add(hook["command"][2])
        args = run["args"]
        if "--executor_class_path" in args:  # not ExampleGen's driver step
            classes.add(args[args.index("--executor_class_path") + 1])
    classes |= {constant(job, "Trainer", "run_fn"), constant(job, "Transform", "preprocessing_fn")}
    assert "components.quarantine.executor.Executor" in classes
    for module in modules:
        importlib.import_module(module)
    for dotted in classes:
        module, name = dotted.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), name)), dotted


def test_defaults_direct_runner_no_gpu_build_imagenet(tmp_path):
    job = compile_to(tmp_path / "p.json", [*BASE, "--no-cache"])
    for name in BEAM_STEPS:
        assert beam_args_of(container(job, name)["args"]) == [
            "--runner=DirectRunner",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=8",  # the pod's CPUs (--beam-cpus), not the node's
        ], name
    assert "accelerator" not in json.dumps(job)
    assert container(job, "Trainer")["resources"] == {"cpuLimit": 8.0, "memoryLimit": 32.0}
    assert constant(job, "ImportSchemaGen", "schema_file").endswith("/build_imagenet.pbtxt")
    push = json.loads(constant(job, "Pusher", "push_destination"))
    assert push == {"filesystem": {"base_directory": f"{ROOT}/serving_model"}}
    assert all("cachingOptions" not in task for task in tasks(job).values())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pipeline-name=AlexNet_TFX"], "--pipeline-name 'AlexNet_TFX': Kubeflow needs lower"),
        (["--gpus=2"], "--gpus 2 needs --gpu-type"),
        (["--gpu-type=TESLA"], "--gpu-type 'TESLA': Kubeflow Pipelines requests the type as"),
        (
            ["--gpu-type=NVIDIA_TESLA_V100"],
            "--gpu-type 'NVIDIA_TESLA_V100': Kubeflow Pipelines requests the type as a "
            "Kubernetes resource, e.g. nvidia.com/gpu",
        ),
        (
            ["--backend=vertex", "--gpu-type=nvidia.com/gpu"],
            "--gpu-type 'nvidia.com/gpu' is not a Vertex AI accelerator",
        ),
        (
            ["--pipeline-root=minio://mlpipeline/v2/artifacts"],
            "--pipeline-root 'minio://mlpipeline/v2/artifacts': the steps read and write "
            "artifacts with TensorFlow's and Beam's file systems, and the image's TensorFlow "
            "2.16 has no s3:// or minio:// file system",
        ),
        (["--data-root=s3://imagenet/records"], "TensorFlow 2.16 has no s3:// or minio://"),
        (["--pipeline-root=/tmp/root"], "--pipeline-root '/tmp/root' is not a remote URI"),
        (["--data-root=data/sample"], "--data-root 'data/sample' is not a remote URI"),
        (["--serving-dir=serving"], "--serving-dir 'serving' is not a remote URI"),
        (["--image=Not An Image"], "--image 'Not An Image' is not a container image"),
        (["--output=pipeline.yaml"], "--output 'pipeline.yaml': the compiled pipeline is JSON"),
        (["--beam-cpus=0"], "--beam-cpus must be > 0, got 0.0"),
        (
            ["--beam-runner=DataflowRunner"],
            "--beam-runner DataflowRunner needs --beam-arg=--project=... and "
            "--beam-arg=--region=...",
        ),
        (["--beam-runner=FlinkRunner"], "needs --beam-arg=--flink_master=..."),
        (["--beam-runner=SparkRunner"], "needs --beam-arg=--spark_rest_url=..."),
        (["--beam-arg=--projet=p"], "--beam-arg: Beam has no option projet"),
        (["--beam-arg=--runner=FlinkRunner"], "--runner=FlinkRunner contradicts"),
        (
            ["--beam-runner=DataflowRunner", "--beam-arg=--project=p", "--beam-arg=--region=r"]
            + ["--beam-arg=--temp_location=/tmp/beam"],
            "--beam-arg --temp_location '/tmp/beam' is not a remote URI",
        ),
    ],
)
def test_bad_flags_get_one_clear_line_and_no_output(flags, message, tmp_path, capsys):
    output = tmp_path / "pipeline.json"
    argv = ["compile-kubeflow", *BASE, "--output", str(output), *flags]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("alexnet-tfx compile-kubeflow: error: "), err
    assert message in err
    assert err.count("\n") == 1, err
    assert not output.exists()


def test_an_unknown_runner_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compile-kubeflow", *BASE, "--beam-runner=SamzaRunner"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'SamzaRunner'" in capsys.readouterr().err
