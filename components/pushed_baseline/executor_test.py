"""The pushed baseline on real SavedModels: the newest complete version is copied where the
Evaluator loads a Model from, and a serving directory with nothing in it gives no baseline.
The Evaluator with and without such a baseline runs in tests/kubeflow_local_e2e_test.py."""

from __future__ import annotations

import os

import pytest
import tf_keras
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.atomic_pusher.executor_test import file_digests
from components.pushed_baseline import executor


def _save_model(directory, units: int = 1) -> str:
    inputs = tf_keras.Input([4], name="x")
    tf_keras.Model(inputs, tf_keras.layers.Dense(units)(inputs)).save(str(directory))
    return str(directory)


def _latest(serving_dir, tmp_path):
    """LatestPushedModel's executor as TFX calls it; its Model artifact."""
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "baseline")
    executor.Executor().Do(
        {}, {executor.MODEL_KEY: [model]}, {executor.SERVING_DIR_KEY: serving_dir}
    )
    return model


def test_the_newest_complete_version_is_the_baseline(tmp_path):
    serving = tmp_path / "serving"
    _save_model(serving / "1700000000", units=1)
    newest = _save_model(serving / "1700000100", units=2)
    # A push in progress (hidden name) and a renamed copy still missing saved_model.pb (an
    # object store renames object by object) are not versions yet.
    _save_model(serving / ".incomplete-1700000200-host-1", units=3)
    os.remove(_save_model(serving / "1700000300", units=4) + "/saved_model.pb")

    model = _latest(str(serving), tmp_path)
    loaded_from = path_utils.serving_model_path(model.uri)
    assert file_digests(loaded_from) == file_digests(newest)
    assert model.get_int_custom_property(executor.PUSHED_VERSION_KEY) == 1700000100
    assert model.get_string_custom_property(executor.PUSHED_DESTINATION_KEY) == newest
    assert executor.has_model(model)


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_nothing_pushed_yet_gives_a_model_artifact_without_a_model(state, tmp_path):
    serving = tmp_path / "serving"
    if state == "empty":
        serving.mkdir()
    model = _latest(str(serving), tmp_path)
    assert model.get_int_custom_property(executor.PUSHED_VERSION_KEY) == executor.NONE_PUSHED
    assert not executor.has_model(model)
