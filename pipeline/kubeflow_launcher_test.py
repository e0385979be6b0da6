"""Tests for pipeline/kubeflow_launcher.py's pieces that need no run: the path map, the
resolver filters (the strings TFX's Kubeflow compiler writes) and the DAG order. The launcher
itself runs in tests/kubeflow_local_e2e_test.py."""

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
