"""What ML Metadata knows about the pipeline's runs: components, evaluations, blessings, pushes.

The run summary, ``alexnet-tfx report`` and the notebook all read runs through here, from the
metadata store, never by guessing artifact paths.
"""

from __future__ import annotations

import dataclasses
import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from pipeline import configs

_STATE_NAMES = {
    v: k.lower() for k, v in metadata_store_pb2.Execution.State.items()
}  # e.g. 3 -> "complete", 5 -> "cached"


def metadata_path(pipeline_root: str) -> str:
    return os.path.join(pipeline_root, configs.METADATA_FILE)


def open_store(pipeline_root: str, must_exist: bool = True) -> mlmd.MetadataStore:
    """The SQLite store of a pipeline root; FileNotFoundError if it has never run."""
    path = metadata_path(pipeline_root)
    if must_exist and not os.path.exists(path):
        raise FileNotFoundError(f"no ML Metadata store at {path}: has the pipeline run there?")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return mlmd.MetadataStore(config)


@dataclasses.dataclass
class ComponentRun:
    node_id: str
    state: str  # complete, cached, failed, running, ...
    seconds: float
    execution_id: int
    inputs: dict[str, list[metadata_store_pb2.Artifact]]
    outputs: dict[str, list[metadata_store_pb2.Artifact]]

    def uri(self, key: str) -> str | None:
        artifacts = self.outputs.get(key) or []
        return artifacts[0].uri if artifacts else None


def run_ids(store: mlmd.MetadataStore, pipeline_name: str = configs.PIPELINE_NAME) -> list[str]:
    """The pipeline's run ids, oldest first."""
    runs = store.get_contexts_by_type("pipeline_run")
    pipeline_contexts = store.get_contexts_by_type("pipeline")
    pipeline = [c for c in pipeline_contexts if c.name == pipeline_name]
    if pipeline:
        children = {c.id for c in store.get_children_contexts_by_context(pipeline[0].id)}
        runs = [c for c in runs if c.id in children] or runs
    return [c.name for c in sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))]


def component_runs(store: mlmd.MetadataStore, run_id: str) -> dict[str, ComponentRun]:
    """Every component execution of one pipeline run, keyed by node id, in execution order."""
    context = store.get_context_by_type_and_name("pipeline_run", run_id)
    if context is None:
        raise KeyError(f"no pipeline run {run_id!r} in the metadata store")
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifacts = {a.id: a for a in store.get_artifacts_by_id({e.artifact_id for e in events})}
    result = {}
    for execution in executions:
        inputs: dict[str, list] = {}
        outputs: dict[str, list] = {}
        for event in events:
            if event.execution_id != execution.id or not event.path.steps:
                continue
            side = outputs if event.type == metadata_store_pb2.Event.OUTPUT else inputs
            side.setdefault(event.path.steps[0].key, []).append(artifacts[event.artifact_id])
        node_id = _node_id(store, execution.id)
        seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3
        result[node_id] = ComponentRun(
            node_id=node_id,
            state=_STATE_NAMES.get(execution.last_known_state, "unknown"),
            seconds=seconds,
            execution_id=execution.id,
            inputs=inputs,
            outputs=outputs,
        )
    return result


def _node_id(store: mlmd.MetadataStore, execution_id: int) -> str:
    """TFX associates each execution with a ``node`` context named ``<pipeline>.<node id>``."""
    node_type_id = store.get_context_type("node").id
    for context in store.get_contexts_by_execution(execution_id):
        if context.type_id == node_type_id:
            return context.name.split(".", 1)[1]
    return str(execution_id)


@dataclasses.dataclass
class Evaluation:
    """The Evaluator's result for one run: metrics, per-class metrics and the gate's verdict."""

    uri: str
    metrics: dict[str, float]  # overall, candidate
    baseline_metrics: dict[str, float]  # overall, baseline model (empty without a baseline)
    changes: dict[str, float]  # overall, candidate - baseline
    per_class: dict[str, dict[str, float]]  # synset -> metrics
    has_baseline: bool
    blessed: bool
    failures: list[str]  # human-readable failed thresholds, with the values


def load_evaluation(evaluator: ComponentRun) -> Evaluation:
    """Reads the evaluation artifact of an Evaluator execution with TFMA."""
    import tensorflow_model_analysis as tfma

    uri = evaluator.uri("evaluation")
    blessing = (evaluator.outputs.get("blessing") or [None])[0]
    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    per_class: dict[str, dict[str, float]] = {}
    changes: dict[str, float] = {}
    for slice_metrics in tfma.load_metrics(uri):
        keys = slice_metrics.slice_key.single_slice_keys
        for kv in slice_metrics.metric_keys_and_values:
            key = kv.key
            value = _metric_value(kv.value)
            if value is None or key.HasField("sub_key"):
                continue
            if key.is_diff:
                if not keys:
                    changes[key.name] = value
                continue
            if key.model_name == "baseline":
                if not keys:
                    baseline[key.name] = value
                continue
            if not keys:
                metrics[key.name] = value
            elif len(keys) == 1:
                synset = keys[0].bytes_value.decode() or str(keys[0])
                per_class.setdefault(synset, {})[key.name] = value
    validation = tfma.load_validation_result(uri)
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(_describe_failure(failure))
    has_baseline = bool(evaluator.inputs.get("baseline_model"))
    blessed = bool(blessing and blessing.custom_properties["blessed"].int_value == 1)
    return Evaluation(uri, metrics, baseline, changes, per_class, has_baseline, blessed, failures)


def _describe_failure(failure) -> str:
    """E.g. "accuracy 0.143 is below the value threshold 0.5"."""
    key, threshold = failure.metric_key, failure.metric_threshold
    value = _metric_value(failure.metric_value)
    shown = f"{value:.3f}" if value is not None else "?"
    if key.is_diff:
        bound = threshold.change_threshold.absolute.value
        return (
            f"{key.name} changed by {shown} against the baseline; "
            f"the change threshold is {bound:+g}"
        )
    bound = threshold.value_threshold.lower_bound.value
    return f"{key.name} {shown} is below the value threshold {bound:g}"


def _metric_value(value) -> float | None:
    if value.HasField("double_value"):
        return value.double_value.value
    return None


def pushed_destination(pusher: ComponentRun | None) -> str | None:
    """Where the Pusher put the model, or None if it did not push."""
    if pusher is None:
        return None
    pushed = (pusher.outputs.get("pushed_model") or [None])[0]
    if pushed is None or pushed.custom_properties["pushed"].int_value != 1:
        return None
    return pushed.custom_properties["pushed_destination"].string_value
