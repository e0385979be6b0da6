"""Submitting a compiled spec, up to the network call: the Vertex AI job built from the
template, the package kfp's SDK loads, and one clear line for every refusal."""

from __future__ import annotations

import json
import re
import sys

import pytest

from data.errors import UserError
from pipeline import cli, kubeflow_submit
from pipeline.kubeflow_runner_test import DAG, ROOT


def test_kfp_sdk_loads_the_package_submit_sends(compiled_kfp, tmp_path):
    from kfp import components

    _, job = compiled_kfp
    loaded = components.load_component_from_file(kubeflow_submit.kfp_package(job, tmp_path))
    assert loaded.name == "alexnet-tfx"
    assert set(loaded.component_spec.inputs) == {"data_root"}
    assert loaded.component_spec.inputs["data_root"].type == "String"


def test_vertex_job_is_built_from_the_template(compiled):
    import tfx
    from google.auth.credentials import AnonymousCredentials

    path, job = compiled
    parameters = kubeflow_submit.run_parameters(job, ["data_root=gs://alexnet-bucket/sample"])
    vertex = kubeflow_submit.vertex_job(
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
        "alexnet-tfx-backend": "vertex",
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
    with pytest.raises(UserError, match=re.escape(message)):
        kubeflow_submit.run_parameters(job, overrides)


def submit_error(capsys, *argv) -> str:
    assert cli.main(["submit", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alexnet-tfx submit: error: "), err
    assert err.count("\n") == 1, err  # one line, no traceback
    return err


def test_unreachable_kubeflow_host_is_one_line(compiled_kfp, capsys):
    path, _ = compiled_kfp
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


def test_a_job_is_refused_by_the_backend_it_was_not_compiled_for(compiled, compiled_kfp, capsys):
    vertex, kfp = str(compiled[0]), str(compiled_kfp[0])
    err = submit_error(capsys, "--pipeline", vertex, "--host", "http://127.0.0.1:9")
    # What the open-source backend's compiler answers (backend/src/v2/compiler/visitor.go).
    assert re.search(
        r'error processing component name="latest_blessed_model_resolver-[\w-]+": '
        r'executor\(label="[\w-]+_executor"\): non-container and non-importer executor not '
        r"implemented",
        err,
    ), err
    argv = ["--pipeline", kfp, "--vertex", "--project=p", "--region=us-central1"]
    err = submit_error(capsys, *argv)
    assert "was compiled for Kubeflow Pipelines 2.x (open source)" in err
    assert "'alexnet-tfx compile-kubeflow --backend vertex'" in err
