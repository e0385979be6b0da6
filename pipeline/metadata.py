"""What ML Metadata knows about the pipeline's runs: which components ran, with what inputs and
outputs, in which state, and which execution made an artifact.

The run summary, ``alexnet-tfx report``, the notebook and the tests all find runs and
artifacts through here, never by guessing artifact paths.
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
    # The execution's properties as TFX records them (its exec properties, e.g. custom_config).
    properties: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """Executed, or reused from the cache: its outputs are there to read."""
        return self.state in ("complete", "cached")

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
            properties={
                name: value.string_value
                for name, value in execution.custom_properties.items()
                if value.HasField("string_value")
            },
        )
    return result


def _node_id(store: mlmd.MetadataStore, execution_id: int) -> str:
    """TFX associates each execution with a ``node`` context named ``<pipeline>.<node id>``."""
    node_type_id = store.get_context_type("node").id
    for context in store.get_contexts_by_execution(execution_id):
        if context.type_id == node_type_id:
            return context.name.split(".", 1)[1]
    return str(execution_id)


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
        evaluator = component_runs(store, run_id).get(configs.EVALUATOR)
        uri = evaluator and evaluator.uri("evaluation")
        if uri and evaluator.succeeded and uri not in seen:
            seen.add(uri)
            result.append((run_id, evaluator))
    return result


def trainer_of(store: mlmd.MetadataStore, evaluator: ComponentRun) -> ComponentRun:
    """The Trainer execution that made the model ``evaluator`` judged (found by lineage)."""
    return producer(store, evaluator.inputs["model"][0])


def trainer_logs(store: mlmd.MetadataStore, run_id: str | None = None) -> tuple[str, str]:
    """(run id, the Trainer's TensorBoard log directory) of ``run_id``, by default of the latest
    run whose Trainer finished; a cached Trainer's are the logs of the run that trained."""
    ids = run_ids(store)
    if run_id is not None and run_id not in ids:
        raise ValueError(f"no run {run_id!r} in the metadata store; its runs: {', '.join(ids)}")
    for candidate in reversed([run_id] if run_id else ids):
        trainer = component_runs(store, candidate).get(configs.TRAINER)
        if trainer is not None and trainer.succeeded and trainer.uri("model_run"):
            return candidate, trainer.uri("model_run")
    which = f"run {run_id}" if run_id else "no run"
    raise ValueError(f"{which} has a Trainer that finished, so there are no training logs")
