"""``LatestPushedModel`` and the ``Evaluator`` that takes its output as an optional baseline.

On open-source Kubeflow Pipelines a TFX Resolver cannot run: the backend implements container
and importer steps only (docs/kubeflow.md). The gate still needs the last blessed model, and
every blessed model is pushed (``components.atomic_pusher``), so the newest version in the
serving directory is that model, found by a container step at run time. With nothing pushed
yet the step's ``Model`` artifact holds no model, and this ``Evaluator`` then evaluates without
a baseline, as TFX's does when its Resolver finds nothing.
"""

from __future__ import annotations

from tfx import types
from tfx.components.evaluator import component as tfx_evaluator_component
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.pushed_baseline import executor


class LatestPushedModelSpec(ComponentSpec):
    PARAMETERS = {
        executor.SERVING_DIR_KEY: ExecutionParameter(type=str),
        executor.FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class LatestPushedModel(base_component.BaseComponent):
    """``outputs["model"]``: a copy of the newest model in ``serving_dir`` (the layout TFX's
    Trainer writes, so the Evaluator loads it as it loads any Model), or no model at all.
    ``pushed_model_fingerprint``, where given, is that model's SavedModel fingerprint, found
    by a step before: the step then fails if the newest model is another."""

    SPEC_CLASS = LatestPushedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, serving_dir: str):
        super().__init__(
            LatestPushedModelSpec(
                **{
                    executor.SERVING_DIR_KEY: serving_dir,
                    executor.MODEL_KEY: types.Channel(type=standard_artifacts.Model),
                }
            )
        )


class Evaluator(tfx_evaluator_component.Evaluator):
    """TFX's Evaluator, same arguments; a ``baseline_model`` that holds no model (nothing was
    pushed yet) counts as no baseline."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.EvaluatorExecutor)
