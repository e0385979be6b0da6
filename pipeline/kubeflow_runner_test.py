"""The Kubeflow deployment, checked offline: the compiled spec through kfp's own protos and
loader, the submit path up to the network call, and the image's Dockerfile against the lock.

References are written here from the pipeline's design (pipeline/pipeline.py's docstring), the
CLI flags given and the installed packages' own metadata, never read back from the runner.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile

import pytest
from packaging.requirements import Requirement

from pipeline import cli, kubeflow_runner  # pipeline first: Keras 2 before TensorFlow
from pipeline.cli import CliError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "us-docker.pkg.dev/alexnet-proj/pipelines/alexnet-tfx:1.0"
ROOT = "gs://alexnet-bucket/root"
DATA = "gs://alexnet-bucket/imagenet"
BASE = ["--image", IMAGE, "--pipeline-root", ROOT, "--data-root", DATA]
FULL = [
    *BASE,
    "--record-format=tfds",
    "--serving-dir=gs://alexnet-bucket/serving",
    "--gpus=2",
    "--gpu-type=NVIDIA_TESLA_V100",
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


def compile_to(path, argv: list[str]) -> dict:
    assert cli.main(["compile-kubeflow", *argv, "--output", str(path)]) == 0
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(path, job) of the pipeline compiled with every deployment flag set."""
    path = tmp_path_factory.mktemp("kfp") / "pipeline.json"
    return path, compile_to(path, FULL)


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


def test_kfp_sdk_loads_the_package_submit_sends(compiled, tmp_path):
    from kfp import components

    _, job = compiled
    loaded = components.load_component_from_file(kubeflow_runner.kfp_package(job, tmp_path))
    assert loaded.name == "alexnet-tfx"
    assert set(loaded.component_spec.inputs) == {"data_root"}
    assert loaded.component_spec.inputs["data_root"].type == "String"


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

    trainer = json.loads(constant(job, "Trainer", "custom_config"))
    assert trainer["batch_size"] == 128
    assert trainer["learning_rate"] == 0.02
    assert trainer["mixed_precision"] == "mixed_float16"
    assert trainer["record_format"] == "tfds"
    assert trainer["checkpoint_root"] == f"{ROOT}/trainer_checkpoints"
    assert json.loads(constant(job, "Trainer", "train_args"))["num_steps"] == 900000
    assert constant(job, "Trainer", "run_fn") == "models.trainer.run_fn"
    assert json.loads(constant(job, "Transform", "custom_config"))["record_format"] == "tfds"
    assert constant(job, "Quarantine", "record_format") == "tfds"
    push = json.loads(constant(job, "Pusher", "push_destination"))
    assert push == {"filesystem": {"base_directory": "gs://alexnet-bucket/serving"}}
    eval_config = json.dumps(json.loads(constant(job, "Evaluator", "eval_config")))
    assert re.findall(r'"lower_bound": ([\d.]+)', eval_config) == ["0.55"]  # --min-top1
    for name in set(DAG) - {f"{RESOLVER}-model-blessing-resolver", f"{RESOLVER}-model-resolver"}:
        assert tasks(job)[name]["cachingOptions"] == {"enableCache": True}, name


def test_compiling_twice_gives_identical_json(compiled, tmp_path):
    path, _ = compiled
    again = tmp_path / "again.json"
    compile_to(again, FULL)
    assert again.read_bytes() == path.read_bytes()


def test_the_cli_in_another_process_and_directory_writes_the_same_json(compiled, tmp_path):
    path, _ = compiled
    out = tmp_path / "cli.json"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "compile-kubeflow", *FULL, "--output", str(out)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes() == path.read_bytes()


def test_everything_the_spec_runs_is_importable(compiled):
    _, job = compiled
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
        (["--gpu-type=TESLA"], "--gpu-type 'TESLA' is neither a Vertex AI accelerator"),
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


def test_portable_runners_run_the_image_as_their_sdk_worker():
    flink = kubeflow_runner.beam_pipeline_args(
        "FlinkRunner", ["--flink_master=flink:8081"], image=IMAGE, pipeline_root=ROOT, workers=2
    )
    assert flink == [
        "--runner=FlinkRunner",
        "--flink_submit_uber_jar",
        "--environment_type=DOCKER",
        f"--environment_config={IMAGE}",
        "--flink_master=flink:8081",
    ]
    # A Beam worker-pool sidecar instead of Docker-in-Docker: the user's choice replaces ours.
    sidecar = [
        "--spark_rest_url=http://spark:6066",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000",
    ]
    spark = kubeflow_runner.beam_pipeline_args(
        "SparkRunner", sidecar, image=IMAGE, pipeline_root=ROOT, workers=2
    )
    assert spark == ["--runner=SparkRunner", "--spark_submit_uber_jar", *sidecar]


@pytest.mark.parametrize(
    "image",
    [
        "alexnet-tfx:dev",
        "localhost:5000/alexnet-tfx",
        "us-docker.pkg.dev/p/r/alexnet-tfx:1.0",
        "gcr.io/p/alexnet-tfx@sha256:" + "0" * 64,
    ],
)
def test_image_references_are_accepted(image):
    assert kubeflow_runner.check_image(image) == image


@pytest.mark.parametrize(
    "image", ["Alexnet/TFX", "alexnet-tfx:", "alexnet tfx", "gcr.io/p/x@md5:0"]
)
def test_malformed_image_references_are_refused(image):
    with pytest.raises(CliError, match="is not a container image reference"):
        kubeflow_runner.check_image(image)


def test_a_gpu_type_alone_means_one_gpu():
    assert kubeflow_runner.gpu_request(None, "nvidia.com/gpu") == (1, "nvidia.com/gpu")
    assert kubeflow_runner.gpu_request(4, "NVIDIA_L4") == (4, "NVIDIA_L4")
    assert kubeflow_runner.gpu_request(None, None) == (0, None)


# ------------------------------------------------------------------------------- submit


def test_vertex_job_is_built_from_the_template(compiled):
    import tfx
    from google.auth.credentials import AnonymousCredentials

    path, job = compiled
    parameters = kubeflow_runner.run_parameters(job, ["data_root=gs://alexnet-bucket/sample"])
    vertex = kubeflow_runner.vertex_job(
        str(path),
        job,
        project="alexnet-proj",
        region="us-central1",
        run_name="alexnet-tfx-run-1",
        parameters=parameters,
        labels={"team": "vision"},
        enable_caching=False,
        credentials=AnonymousCredentials(),  # real credentials are only needed to submit
    )
    assert (vertex.project, vertex.location, vertex.job_id) == (
        "alexnet-proj",
        "us-central1",
        "alexnet-tfx-run-1",
    )
    request = vertex.to_dict()  # what submit() would send
    assert request["displayName"] == "alexnet-tfx"
    assert request["labels"] == {
        "tfx_version": tfx.__version__.replace(".", "-"),
        "tfx_py_version": f"{sys.version_info.major}-{sys.version_info.minor}",
        "tfx_runner": "kubeflow_v2",
        "team": "vision",
    }
    assert request["runtimeConfig"] == {
        "gcsOutputDirectory": ROOT,
        "parameterValues": {"data_root": "gs://alexnet-bucket/sample"},
    }
    spec = request["pipelineSpec"]
    assert spec["deploymentSpec"] == job["pipelineSpec"]["deploymentSpec"]
    # enable_caching=False: every step runs again.
    assert {
        name: task.get("cachingOptions") for name, task in spec["root"]["dag"]["tasks"].items()
    } == {name: {"enableCache": False} for name in DAG}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data_root"], "--param 'data_root': expected NAME=VALUE"),
        (["train_steps=10"], "--param train_steps: the pipeline's parameters are ['data_root']"),
        (["data_root=/data/imagenet"], "--param data_root '/data/imagenet' is not a remote URI"),
    ],
)
def test_bad_runtime_parameters_are_refused(compiled, overrides, message):
    _, job = compiled
    with pytest.raises(CliError, match=re.escape(message)):
        kubeflow_runner.run_parameters(job, overrides)


def submit_error(capsys, *argv) -> str:
    assert cli.main(["submit", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alexnet-tfx submit: error: "), err
    assert err.count("\n") == 1, err  # one line, no traceback
    return err


def test_unreachable_kubeflow_host_is_one_line(compiled, capsys):
    path, _ = compiled
    err = submit_error(capsys, "--pipeline", str(path), "--host", "http://127.0.0.1:9")
    assert "cannot reach Kubeflow Pipelines at http://127.0.0.1:9 (" in err
    assert "Connection refused" in err


def test_vertex_without_credentials_is_one_line(compiled, capsys, monkeypatch, tmp_path):
    path, _ = compiled
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    argv = ["--pipeline", str(path), "--vertex", "--project=p", "--region=us-central1"]
    assert "no Google Cloud credentials" in submit_error(capsys, *argv)


def test_submit_refuses_what_is_not_a_compiled_job(compiled, tmp_path, capsys):
    not_json = tmp_path / "notes.json"
    not_json.write_text("pipeline: yes\n")
    assert "is not JSON" in submit_error(capsys, "--pipeline", str(not_json), "--host", "h")
    spec_only = tmp_path / "spec.json"
    spec_only.write_text(json.dumps(compiled[1]["pipelineSpec"]))
    err = submit_error(capsys, "--pipeline", str(spec_only), "--host", "h")
    assert "is not a compiled pipeline job" in err
    missing = tmp_path / "missing.json"
    assert "No such file" in submit_error(capsys, "--pipeline", str(missing), "--host", "h")
    path = str(compiled[0])
    assert "--vertex needs --project and --region" in submit_error(
        capsys, "--pipeline", path, "--vertex"
    )


# -------------------------------------------------------------------------------- image


def dockerfile() -> str:
    with open(os.path.join(REPO, "Dockerfile"), encoding="utf-8") as f:
        return f.read()


def lock() -> dict[str, str]:
    pins = {}
    with open(os.path.join(REPO, "requirements.lock"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def arg(name: str) -> str:
    (value,) = re.findall(rf"^ARG {name}=(\S+)$", dockerfile(), re.MULTILINE)
    return value


def docker_ignored(path: str, patterns: list[tuple[bool, str, re.Pattern]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for exclude, _, pattern in patterns:
        if exclude != ignored and any(pattern.fullmatch(c) for c in candidates):
            ignored = exclude
    return ignored


def dockerignore_patterns() -> list[tuple[bool, str, re.Pattern]]:
    """(excludes, glob, regex) per .dockerignore line, the glob translated as Docker does."""
    patterns = []
    with open(os.path.join(REPO, ".dockerignore"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            glob = os.path.normpath(line.lstrip("!"))
            regex = ""
            for token in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
                regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                    token, re.escape(token)
                )
            patterns.append((exclude, glob, re.compile(regex)))
    return patterns


def build_context() -> dict[str, int]:
    """{path: size} of the files `docker build .` would send."""
    patterns = dockerignore_patterns()
    context = {}
    for directory, subdirectories, files in os.walk(REPO):
        relative = os.path.relpath(directory, REPO)
        # Like Docker, skip an ignored directory unless a pattern re-includes something in it.
        subdirectories[:] = [
            d
            for d in subdirectories
            if not docker_ignored(os.path.normpath(os.path.join(relative, d)), patterns)
            or any(
                not exclude and glob.startswith(os.path.normpath(os.path.join(relative, d)) + "/")
                for exclude, glob, _ in patterns
            )
        ]
        for name in files:
            path = os.path.normpath(os.path.join(relative, name))
            if not docker_ignored(path, patterns):
                context[path] = os.path.getsize(os.path.join(REPO, path))
    return context


def test_every_copy_source_exists_and_is_in_the_build_context():
    context = build_context()
    copies = re.findall(r"^COPY (?!--from)(.+)$", dockerfile(), re.MULTILINE)
    assert copies
    for copy in copies:
        *sources, _ = copy.split()
        for source in sources:
            path = os.path.join(REPO, source)
            assert os.path.exists(path), source
            sent = [p for p in context if p == source or p.startswith(source + "/")]
            assert sent, f"{source} is excluded by .dockerignore"
    # What the image runs: the schema files and the code behind every step.
    for needed in ("data/records.py", "models/trainer.py", "components/quarantine/executor.py"):
        assert needed in context, needed
    assert any(p.startswith("data/schema/") for p in context)


def test_build_context_is_small_and_holds_no_local_state():
    context = build_context()
    for local in (".venv/", ".git/", "tfx_pipeline_output/", "data/sample/", "__pycache__/"):
        assert not any(p.startswith(local) or f"/{local}" in p for p in context), local
    assert sum(context.values()) < 5 * 2**20, sorted(context, key=context.get)[-5:]


def test_image_versions_are_the_locked_ones():
    import tensorflow as tf

    text = dockerfile()
    pins = lock()
    # Beam's SDK harness from the locked Beam, for the Python the venv and the image run.
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert arg("BEAM_VERSION") == pins["apache-beam"]
    assert f"FROM apache/beam_python{python}_sdk:${{BEAM_VERSION}} AS beam" in text
    assert f"python{python} -m venv /opt/venv" in text
    # CUDA and cuDNN that TensorFlow was built against and pins for its [and-cuda] extra.
    build = tf.sysconfig.get_build_info()
    cuda_image = re.search(r"^FROM nvidia/cuda:(\d+\.\d+)\.\d+-runtime-ubuntu22\.04$", text, re.M)
    assert cuda_image and cuda_image.group(1) == build["cuda_version"]
    tf_cuda = {
        r.name: str(r.specifier)
        for r in map(Requirement, importlib.metadata.requires("tensorflow"))
        if r.marker and r.marker.evaluate({"extra": "and-cuda"})
    }
    assert f"=={arg('CUDNN_VERSION')}" == tf_cuda["nvidia-cudnn-cu12"]
    assert arg("CUDNN_VERSION").split(".")[0] == build["cudnn_version"]
    assert f"libcudnn{build['cudnn_version']}=${{CUDNN_VERSION}}-1+cuda12" in text
    # The build tools of the venv the tests run in; the package set is the lock.
    for tool in ("pip", "setuptools", "wheel"):
        assert f"{tool}=={importlib.metadata.version(tool)}" in text, tool
    assert "RUN pip install -r requirements.lock\n" in text
    assert "pip install --no-deps --no-build-isolation -e . && pip check" in text
    # What the compiled spec relies on.
    assert re.search(rf"^WORKDIR {kubeflow_runner.IMAGE_ROOT}$", text, re.M)
    assert "PATH=/opt/venv/bin:$PATH" in text  # `python -m ...` is the venv's python
    assert "TF_USE_LEGACY_KERAS=1" in text  # TFX imports TensorFlow before this package


def test_the_tested_environment_is_the_lock():
    """The image installs requirements.lock; this venv was built from it: same packages."""
    installed = {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
        for d in importlib.metadata.distributions()
    }
    pins = lock()
    assert pins["tfx"] == "1.16.0" and pins["tensorflow"] == "2.16.2"
    assert {name: installed.get(name) for name in pins} == pins
    tools = {"pip", "setuptools", "wheel", "alexnet-tfx"}
    assert set(installed) - tools == set(pins)
