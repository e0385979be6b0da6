"""What ML Metadata knows about the pipeline's runs: components, evaluations, blessings, pushes.

The run summary, ``alexnet-tfx report`` and the notebook all read runs through here, from the
metadata store, never by guessing artifact paths.
"""

from __future__ import annotations

import dataclasses
import json
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
    return _component_runs(store, store.get_executions_by_context(context.id))


def producer(store: mlmd.MetadataStore, artifact: metadata_store_pb2.Artifact) -> ComponentRun:
    """The execution that wrote ``artifact``: its lineage, e.g. the Trainer run behind a model.

    A cached re-run re-links the same artifact, so the first writer is the one that made it.
    """
    writers = [
        e.execution_id
        for e in store.get_events_by_artifact_ids([artifact.id])
        if e.type == metadata_store_pb2.Event.OUTPUT
    ]
    if not writers:
        raise KeyError(f"no execution in the metadata store wrote {artifact.uri}")
    (run,) = _component_runs(store, store.get_executions_by_id([min(writers)])).values()
    return run


def _component_runs(store: mlmd.MetadataStore, executions) -> dict[str, ComponentRun]:
    executions = sorted(executions, key=lambda e: e.id)
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
            # One event carries every key the artifact was passed under: the same model can
            # be both ``model`` and ``baseline_model`` when the Trainer was cached.
            for step in event.path.steps:
                if step.HasField("key"):
                    side.setdefault(step.key, []).append(artifacts[event.artifact_id])
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
class ThresholdCheck:
    """One threshold of the gate on the overall slice, the value TFMA compared and its verdict."""

    metric: str
    rule: str  # e.g. "accuracy >= 0.5", "accuracy - baseline >= -0.01"
    value: float  # the metric, or candidate - baseline for a change threshold
    passed: bool


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
    # Every threshold the gate applied (TFX drops change thresholds while there is no baseline).
    checks: list[ThresholdCheck] = dataclasses.field(default_factory=list)
    # (true, predicted) class index -> examples, overall slice; empty when the Evaluator was
    # not configured with a MultiClassConfusionMatrixPlot.
    confusion: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)
    # The candidate's name in TFMA's results: "" alone, "candidate" beside a baseline.
    model_name: str = ""


def load_evaluation(evaluator: ComponentRun) -> Evaluation:
    """Reads the evaluation artifact of an Evaluator execution with TFMA."""
    import tensorflow_model_analysis as tfma

    uri = evaluator.uri("evaluation")
    blessing = (evaluator.outputs.get("blessing") or [None])[0]
    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    per_class: dict[str, dict[str, float]] = {}
    changes: dict[str, float] = {}
    model_name = ""
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
                model_name = model_name or key.model_name  # model-independent keys have ""
            elif len(keys) == 1:
                synset = _slice_value(keys[0])
                per_class.setdefault(synset, {})[key.name] = value
    validation = tfma.load_validation_result(uri)
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(_describe_failure(failure, per_slice.slice_key))
    has_baseline = bool(evaluator.inputs.get("baseline_model"))
    blessed = bool(blessing and blessing.custom_properties["blessed"].int_value == 1)
    eval_config = tfma.load_eval_result(uri, model_name=model_name).config
    checks = _overall_checks(eval_config, validation, metrics, changes)
    return Evaluation(
        uri,
        metrics,
        baseline,
        changes,
        per_class,
        has_baseline,
        blessed,
        failures,
        checks,
        _confusion(tfma.load_plots(uri)),
        model_name,
    )


def _overall_checks(eval_config, validation, metrics, changes) -> list[ThresholdCheck]:
    """The thresholds on the overall slice, each with TFMA's own verdict (from its failures)."""
    import tensorflow_model_analysis as tfma

    failed = [
        (f.metric_key.name, f.metric_key.is_diff, f.metric_threshold)
        for per_slice in validation.metric_validations_per_slice
        if not per_slice.slice_key.single_slice_keys
        for f in per_slice.failures
    ]
    checks = []
    thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config
    )
    for key, slices_and_thresholds in thresholds.items():
        if key.model_name == "baseline" or key.sub_key:
            continue
        for slicing_spec, threshold in slices_and_thresholds:
            if slicing_spec is not None and slicing_spec != tfma.SlicingSpec():
                continue  # a per-class threshold: its failures are in Evaluation.failures
            value = (changes if key.is_diff else metrics).get(key.name)
            if value is None:
                continue  # not computed, e.g. a change threshold of a run without a baseline
            passed = not any(
                name == key.name and is_diff == key.is_diff and _same(proto, threshold)
                for name, is_diff, proto in failed
            )
            checks.append(ThresholdCheck(key.name, _rule(key, threshold), value, passed))
    return checks


def _same(metric_threshold, threshold) -> bool:
    """Whether a failure's MetricThreshold holds ``threshold`` (a value or change threshold)."""
    return threshold in (metric_threshold.value_threshold, metric_threshold.change_threshold)


def _rule(key, threshold) -> str:
    """A threshold as the inequality TFMA checks, e.g. "accuracy - baseline >= -0.01"."""
    import tensorflow_model_analysis as tfma

    if not key.is_diff:
        lower = threshold.lower_bound.value if threshold.HasField("lower_bound") else None
        upper = threshold.upper_bound.value if threshold.HasField("upper_bound") else None
        if lower is not None and upper is not None:
            return f"{lower:g} <= {key.name} <= {upper:g}"
        return f"{key.name} >= {lower:g}" if lower is not None else f"{key.name} <= {upper:g}"
    op = ">=" if threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER else "<="
    rules = []
    if threshold.HasField("absolute"):  # + 0.0: an allowed drop of 0 is stored as -0.0
        rules.append(f"{key.name} - baseline {op} {threshold.absolute.value + 0.0:+g}")
    if threshold.HasField("relative"):
        rules.append(f"({key.name} - baseline) / baseline {op} {threshold.relative.value:+g}")
    return " and ".join(rules)


def _confusion(plots) -> dict[tuple[int, int], float]:
    """The candidate's confusion matrix on the overall slice, at TFMA's default threshold 0."""
    for plots_for_slice in plots:
        if plots_for_slice.slice_key.single_slice_keys:
            continue
        for kv in plots_for_slice.plot_keys_and_values:
            at_thresholds = kv.value.multi_class_confusion_matrix_at_thresholds
            if kv.key.model_name == "baseline" or not at_thresholds.matrices:
                continue
            return {
                (e.actual_class_id, e.predicted_class_id): e.num_weighted_examples
                for e in at_thresholds.matrices[0].entries
            }
    return {}


def _describe_failure(failure, slice_key=None) -> str:
    """E.g. "accuracy 0.143 is below the value threshold 0.5" (plus the slice, if not overall)."""
    key, threshold = failure.metric_key, failure.metric_threshold
    value = _metric_value(failure.metric_value)
    shown = f"{value:.3f}" if value is not None else "?"
    where = f" on {_slice_name(slice_key)}" if slice_key and slice_key.single_slice_keys else ""
    if key.is_diff:
        bound = threshold.change_threshold.absolute.value + 0.0  # not "-0"
        return (
            f"{key.name} changed by {shown} against the baseline{where}; "
            f"the change threshold is {bound:+g}"
        )
    bound = threshold.value_threshold.lower_bound.value
    return f"{key.name} {shown} is below the value threshold {bound:g}{where}"


def _slice_name(slice_key) -> str:
    """E.g. "synset n02123045"."""
    return ", ".join(f"{k.column} {_slice_value(k)}" for k in slice_key.single_slice_keys)


def _slice_value(single_slice_key) -> str:
    value = getattr(single_slice_key, single_slice_key.WhichOneof("kind"))
    return value.decode() if isinstance(value, bytes) else str(value)


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


def evaluations(store: mlmd.MetadataStore) -> list[tuple[str, ComponentRun]]:
    """(run id, Evaluator) for each evaluation in the store, oldest first.

    A cached Evaluator re-links an earlier run's evaluation; it is listed once, under the run
    that computed it.
    """
    result, seen = [], set()
    for run_id in run_ids(store):
        evaluator = component_runs(store, run_id).get("Evaluator")
        uri = evaluator and evaluator.uri("evaluation")
        if uri and evaluator.state in ("complete", "cached") and uri not in seen:
            seen.add(uri)
            result.append((run_id, evaluator))
    return result


def trainer_of(store: mlmd.MetadataStore, evaluator: ComponentRun) -> ComponentRun:
    """The Trainer execution that made the model ``evaluator`` judged (found by lineage)."""
    return producer(store, evaluator.inputs["model"][0])


def training_history(trainer: ComponentRun) -> dict[str, list[float]]:
    """What the Trainer logged per epoch: epoch, loss, accuracy, val_*, lr; no epochs if it
    trained 0 steps, {} if it logged nothing. Validation may have logged fewer epochs."""
    import tensorflow as tf

    from models.trainer import HISTORY_FILE

    path = os.path.join(trainer.uri("model_run"), HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def class_synsets(trainer: ComponentRun) -> list[str]:
    """The synset of each model output: the Transform vocabulary the Trainer was built on."""
    import tensorflow_transform as tft

    from models import preprocessing

    transform_output = tft.TFTransformOutput(trainer.inputs["transform_graph"][0].uri)
    vocabulary = transform_output.vocabulary_by_name(preprocessing.CLASSES_VOCABULARY)
    return [synset.decode() for synset in vocabulary]
