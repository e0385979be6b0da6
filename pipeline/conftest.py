"""Shared fixtures of the pipeline package's tests."""

from __future__ import annotations

import pytest

from pipeline.kubeflow_runner_test import FULL, FULL_KFP, compile_to


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """(path, job) of the pipeline compiled for Vertex AI with every deployment flag set."""
    path = tmp_path_factory.mktemp("vertex") / "pipeline.json"
    return path, compile_to(path, FULL)


@pytest.fixture(scope="session")
def compiled_kfp(tmp_path_factory):
    """(path, job) of the pipeline compiled for open-source Kubeflow Pipelines (the default),
    every deployment flag set."""
    path = tmp_path_factory.mktemp("kfp") / "pipeline.json"
    return path, compile_to(path, FULL_KFP)
