"""Tests for pipeline/kubeflow_launcher.py's pieces that need no run: the path map, the
resolver filters (the strings TFX's Kubeflow compiler writes) and the DAG order. The launcher
itself runs in tests/kubeflow_local_e2e_test.py."""

import json
import os

import pytest

from data import bundled
from data.errors import UserError
from pipeline import kubeflow_launcher, kubeflow_platform
from pipeline.kubeflow_launcher import PathMap, Step

BLESSING = "title: tfx.ModelBlessing\ntype: object\n"
STEP = Step("resolver", {}, {}, {})


def _artifact(name, schema, **metadata):
    return {"name": name, "type": {"instanceSchema": schema}, "uri": "/u", "metadata": metadata}


def test_gcs_uris_map_under_the_directory_anywhere_in_a_string(tmp_path):
    paths = PathMap(str(tmp_path))
    assert paths("gs://bucket/root/x") == f"{tmp_path}/bucket/root/x"
    assert (
        paths('{"base_directory": "gs://b/serving"}')
        == f'{{"base_directory": "{tmp_path}/b/serving"}}'
    )
    assert paths(6.0) == 6.0


def test_paths_in_the_image_map_to_this_package():
    schema = bundled.schema_file("build_imagenet")
    in_image = kubeflow_platform.image_path(schema)
    assert in_image.startswith(kubeflow_platform.IMAGE_ROOT + "/")
    assert PathMap("/unused")(in_image) == schema and os.path.exists(schema)
    assert PathMap("/unused")("/alexnet-tfx-other/x") == "/alexnet-tfx-other/x"


def test_the_blessing_filter_selects_blessed_blessings_only():
    query = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
    assert kubeflow_launcher._selects(query, _artifact("a", BLESSING, blessed=1.0), STEP)
    assert not kubeflow_launcher._selects(query, _artifact("a", BLESSING, blessed=0.0), STEP)
    model = _artifact("m", "title: tfx.Model\ntype: object\n", blessed=1.0)
    assert not kubeflow_launcher._selects(query, model, STEP)


def test_a_filter_it_cannot_evaluate_is_an_error_not_a_miss():
    with pytest.raises(UserError, match="cannot evaluate 'create_time>5'"):
        kubeflow_launcher._selects("create_time>5", _artifact("a", BLESSING), STEP)


def test_tasks_run_after_their_upstream_and_a_cycle_is_refused():
    def job(tasks):
        components = {n: {"executorLabel": n} for n in tasks}
        executors = dict.fromkeys(tasks, {})
        return {
            "pipelineSpec": {
                "root": {"dag": {"tasks": tasks}},
                "components": components,
                "deploymentSpec": {"executors": executors},
            }
        }

    def task(name, *after):
        return {"componentRef": {"name": name}, "dependentTasks": list(after)}

    tasks = {"c": task("c", "b"), "b": task("b", "a"), "a": task("a")}
    assert [s.name for s in kubeflow_launcher.dag_order(job(tasks))] == ["a", "b", "c"]
    tasks["a"] = task("a", "c")
    with pytest.raises(UserError, match="cycle"):
        kubeflow_launcher.dag_order(job(tasks))


# ------------------------------------------------ each backend's rules, on a two-step spec

EXAMPLES = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}
# The producer writes 1,000 bytes into its output artifact and, before the cache check, its
# preCacheCheck hook says it ran; neither imports anything heavy.
MAKE = (
    "import json, os, sys; e = json.loads(sys.argv[1]); "
    "uri = e['outputs']['artifacts']['data']['artifacts'][0]['uri']; os.makedirs(uri); "
    "open(os.path.join(uri, 'part'), 'wb').write(bytes(1000))"
)
CHECK = (
    "import json, os, sys; e = json.loads(sys.argv[1]); f = e['outputs']['outputFile']; "
    "os.makedirs(os.path.dirname(f), exist_ok=True); "
    "json.dump({'parameterValues': {'checked': 'yes'}}, open(f, 'w'))"
)


def _two_steps() -> dict:
    def container(script, **extra):
        return {"container": {"image": "i", "command": ["python", "-c", script, "{{$}}"], **extra}}

    lifecycle = {"preCacheCheck": {"command": ["python", "-c", CHECK, "{{$}}"]}}
    return {
        "labels": {},
        "runtimeConfig": {"gcsOutputDirectory": "gs://bucket/root", "parameterValues": {}},
        "pipelineSpec": {
            "schemaVersion": "2.1.0",
            "pipelineInfo": {"name": "two-steps"},
            "root": {
                "dag": {
                    "tasks": {
                        "make": {"componentRef": {"name": "make"}, "taskInfo": {"name": "make"}},
                        "use": {
                            "componentRef": {"name": "use"},
                            "taskInfo": {"name": "use"},
                            "dependentTasks": ["make"],
                            "inputs": {
                                "artifacts": {
                                    "data": {
                                        "taskOutputArtifact": {
                                            "producerTask": "make",
                                            "outputArtifactKey": "data",
                                        }
                                    }
                                }
                            },
                        },
                    }
                }
            },
            "components": {
                "make": {
                    "executorLabel": "make_executor",
                    "outputDefinitions": {"artifacts": {"data": {"artifactType": EXAMPLES}}},
                },
                "use": {
                    "executorLabel": "use_executor",
                    "inputDefinitions": {"artifacts": {"data": {"artifactType": EXAMPLES}}},
                },
            },
            "deploymentSpec": {
                "executors": {
                    "make_executor": container(MAKE, lifecycle=lifecycle),
                    "use_executor": container("pass"),
                }
            },
        },
    }


def _run(backend: str, gcs) -> tuple[dict, dict]:
    """Runs the two steps; (the consumer's ExecutorInput, the run's record)."""
    assert kubeflow_launcher.run(_two_steps(), str(gcs), {}, backend=backend) == 0
    directory = gcs / kubeflow_launcher.LAUNCHER_DIR
    (run,) = kubeflow_launcher.Record(str(directory / kubeflow_launcher.RECORD_FILE)).runs
    with open(directory / run["run_id"] / "use.executor_input.json") as f:
        return json.load(f), run


def test_the_open_source_backend_hands_inputs_untyped_and_copies_them_to_the_pod(tmp_path):
    consumer, run = _run("kfp", tmp_path)
    (data,) = consumer["inputs"]["artifacts"]["data"]["artifacts"]
    assert data["type"] == {"instanceSchema": ""}  # metadata/client.go: Schema: ""
    assert data["name"].isdigit()  # its ML Metadata id
    copies = run["tasks"]["use"]["copies"]
    assert copies["downloaded_bytes"] == 1000
    assert copies["downloaded"] == [kubeflow_launcher.PathMap(str(tmp_path)).remote(data["uri"])]
    pod_copy = os.path.join(
        tmp_path,
        kubeflow_launcher.LAUNCHER_DIR,
        run["run_id"],
        "pods",
        "use",
        "gcs",
        os.path.relpath(data["uri"], tmp_path),
        "part",
    )
    assert os.path.getsize(pod_copy) == 1000
    # preCacheCheck is never run: the hook's parameter is not among the producer's.
    assert "checked" not in run["tasks"]["make"]["parameters"]
    producer_input = os.path.join(
        tmp_path, kubeflow_launcher.LAUNCHER_DIR, run["run_id"], "make.executor_input.json"
    )
    with open(producer_input) as f:
        assert "checked" not in json.load(f)["inputs"]["parameterValues"]


def test_vertex_ai_hands_inputs_typed_runs_the_hook_and_copies_nothing(tmp_path):
    consumer, run = _run("vertex", tmp_path)
    (data,) = consumer["inputs"]["artifacts"]["data"]["artifacts"]
    assert data["type"] == EXAMPLES
    assert "copies" not in run["tasks"]["use"]
    producer_input = os.path.join(
        tmp_path, kubeflow_launcher.LAUNCHER_DIR, run["run_id"], "make.executor_input.json"
    )
    with open(producer_input) as f:
        assert json.load(f)["inputs"]["parameterValues"]["checked"] == "yes"


def test_the_open_source_cache_key_ignores_what_the_backend_leaves_out():
    """backend/src/v2/cacheutils/cache.go: image, command and arguments, not resources or
    lifecycle; input artifacts by name, not URI."""
    from pipeline.kubeflow_backends import BACKENDS

    kfp = BACKENDS["kfp"]
    container = {"image": "i", "command": ["python"], "args": ["-c", "pass"]}
    inputs = {"x": [{"name": "7", "uri": "gs://b/1"}]}
    key = kfp.cache_key(container, inputs, {"p": "1"}, {})
    resized = {**container, "resources": {"cpuLimit": 8.0}, "lifecycle": {}}
    assert kfp.cache_key(resized, inputs, {"p": "1"}, {}) == key
    moved = {"x": [{"name": "7", "uri": "gs://b/2"}]}
    assert kfp.cache_key(container, moved, {"p": "1"}, {}) == key
    assert kfp.cache_key(container, inputs, {"p": "2"}, {}) != key
    assert kfp.cache_key({**container, "args": ["-c", "1"]}, inputs, {"p": "1"}, {}) != key


@pytest.mark.parametrize(
    ("rename", "message"),
    [
        ({"make": "make_data"}, "refuses task 'make_data': name must consist of alpha-numeric"),
        ({"use": "make-driver"}, "refuses task 'make-driver': the compiler names task 'make'"),
    ],
)
def test_the_open_source_backend_refuses_names_argo_would(rename, message, tmp_path):
    """Task names become Argo task names as they are, beside each task's own X-driver."""
    job = _two_steps()
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    for old, new in rename.items():
        tasks[new] = tasks.pop(old)
    with pytest.raises(UserError, match=message):
        kubeflow_launcher.run(job, str(tmp_path), {}, backend="kfp")
