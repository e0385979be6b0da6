"""The executors of ``LatestPushedModel`` and of its ``Evaluator``."""

from __future__ import annotations

import os

from absl import logging
from tfx.components.evaluator import executor as tfx_evaluator_executor
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import path_utils

from components.atomic_pusher.executor import SAVED_MODEL_FILE, copy_saved_model, versions

SERVING_DIR_KEY = "serving_dir"
# Optional: the SavedModel fingerprint of the newest pushed model as a step before found it
# ("" for none), so that the cache key follows the model, not the run (pipeline.kubeflow_oss).
FINGERPRINT_KEY = "pushed_model_fingerprint"
MODEL_KEY = "model"
# Custom properties of the output: the pushed version it copies, or -1 when there is none.
PUSHED_VERSION_KEY = "pushed_version"
PUSHED_DESTINATION_KEY = "pushed_destination"
NONE_PUSHED = -1


def latest_pushed(serving_dir: str) -> str | None:
    """The newest complete version in ``serving_dir``, or None. On an object store a renamed
    version appears object by object, ``saved_model.pb`` last (the AtomicPusher's order)."""
    if not fileio.isdir(serving_dir):
        return None
    for version in reversed(versions(serving_dir)):
        path = os.path.join(serving_dir, str(version))
        if fileio.exists(os.path.join(path, SAVED_MODEL_FILE)):
            return path
    return None


def fingerprint(saved_model: str | None) -> str:
    """TensorFlow's fingerprint of a SavedModel's graph and weights ("" for None): the same
    model pushed twice has one."""
    if saved_model is None:
        return ""
    import tensorflow as tf

    return tf.saved_model.experimental.read_fingerprint(saved_model).singleprint()


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        serving_dir = exec_properties[SERVING_DIR_KEY]
        pushed = latest_pushed(serving_dir)
        expected = exec_properties.get(FINGERPRINT_KEY)
        if expected is not None and fingerprint(pushed) != expected:
            raise RuntimeError(
                f"the newest model in {serving_dir} changed while the run looked at it "
                f"(fingerprint {fingerprint(pushed)!r}, expected {expected!r}): re-run"
            )
        if pushed is None:
            logging.info("No model pushed to %s yet: the Evaluator has no baseline", serving_dir)
            model.set_int_custom_property(PUSHED_VERSION_KEY, NONE_PUSHED)
            return
        # The Evaluator loads a Model from <uri>/Format-Serving; a pushed version is a bare
        # SavedModel directory.
        copy_saved_model(pushed, path_utils.serving_model_dir(model.uri))
        model.set_int_custom_property(PUSHED_VERSION_KEY, int(os.path.basename(pushed)))
        model.set_string_custom_property(PUSHED_DESTINATION_KEY, pushed)
        logging.info("Baseline: %s", pushed)


def has_model(model) -> bool:
    return fileio.exists(os.path.join(path_utils.serving_model_path(model.uri), SAVED_MODEL_FILE))


class EvaluatorExecutor(tfx_evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        key = standard_component_specs.BASELINE_MODEL_KEY
        baselines = input_dict.get(key) or []
        if baselines and not all(has_model(model) for model in baselines):
            logging.info("The baseline holds no model (none pushed yet): no change threshold")
            input_dict = {**input_dict, key: []}
        super().Do(input_dict, output_dict, exec_properties)
