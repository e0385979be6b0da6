"""The ML Metadata queries on a real SQLite store, filled by hand the way TFX's launcher fills it
(pipeline, pipeline_run and node contexts; executions; INPUT/OUTPUT events keyed by name).
No pipeline runs here, so every id below is chosen, not observed."""

from __future__ import annotations

import pytest
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from pipeline import configs, metadata

PIPELINE = configs.PIPELINE_NAME


class Store:
    """A pipeline root's store with helpers to record runs as TFX does."""

    def __init__(self, root: str):
        self.store = metadata.open_store(root, must_exist=False)
        self.types = {
            name: self.store.put_context_type(mlmd_pb2.ContextType(name=name))
            for name in ("pipeline", "pipeline_run", "node")
        }
        self.execution_type = self.store.put_execution_type(mlmd_pb2.ExecutionType(name="tfx"))
        self.artifact_type = self.store.put_artifact_type(mlmd_pb2.ArtifactType(name="Model"))
        (self.pipeline,) = self.store.put_contexts([self._context("pipeline", PIPELINE)])
        self.nodes: dict[str, int] = {}

    def _context(self, kind: str, name: str) -> mlmd_pb2.Context:
        return mlmd_pb2.Context(type_id=self.types[kind], name=name)

    def run(self, run_id: str) -> int:
        (context,) = self.store.put_contexts([self._context("pipeline_run", run_id)])
        self.store.put_parent_contexts(
            [mlmd_pb2.ParentContext(child_id=context, parent_id=self.pipeline)]
        )
        return context

    def execute(
        self,
        run: int,
        node_id: str,
        state=mlmd_pb2.Execution.COMPLETE,
        inputs: dict[str, int] | None = None,
        outputs: dict[str, str] | None = None,
        outputs_reused: dict[str, int] | None = None,
    ) -> tuple[int, dict[str, int]]:
        """An execution of ``node_id`` in ``run``: (its id, {output key: new artifact id}).

        ``outputs_reused`` links existing artifacts as outputs, as a cached execution does."""
        if node_id not in self.nodes:
            (self.nodes[node_id],) = self.store.put_contexts(
                [self._context("node", f"{PIPELINE}.{node_id}")]
            )
        execution = mlmd_pb2.Execution(type_id=self.execution_type, last_known_state=state)
        events = []
        for key, artifact_id in (inputs or {}).items():
            event = mlmd_pb2.Event(type=mlmd_pb2.Event.INPUT, artifact_id=artifact_id)
            event.path.steps.add().key = key
            events.append((self.store.get_artifacts_by_id([artifact_id])[0], event))
        for key, artifact_id in (outputs_reused or {}).items():
            event = mlmd_pb2.Event(type=mlmd_pb2.Event.OUTPUT, artifact_id=artifact_id)
            event.path.steps.add().key = key
            events.append((self.store.get_artifacts_by_id([artifact_id])[0], event))
        for key, uri in (outputs or {}).items():
            event = mlmd_pb2.Event(type=mlmd_pb2.Event.OUTPUT)
            event.path.steps.add().key = key
            events.append((mlmd_pb2.Artifact(type_id=self.artifact_type, uri=uri), event))
        contexts = self.store.get_contexts_by_id([run, self.nodes[node_id]])
        execution_id, artifact_ids, _ = self.store.put_execution(execution, events, contexts)
        made = artifact_ids[len(inputs or {}) + len(outputs_reused or {}) :]
        return execution_id, dict(zip(outputs or {}, made, strict=True))


@pytest.fixture()
def store(tmp_path) -> Store:
    return Store(str(tmp_path))


def test_runs_are_listed_oldest_first_with_their_components_in_execution_order(store):
    first, second = store.run("2026-01-01T10"), store.run("2026-01-02T10")
    _, made = store.execute(first, configs.TRANSFORM, outputs={"transform_graph": "/t/1"})
    store.execute(first, configs.TRAINER, inputs={"transform_graph": made["transform_graph"]})
    store.execute(second, configs.TRANSFORM, state=mlmd_pb2.Execution.CACHED)
    store.execute(second, configs.TRAINER, state=mlmd_pb2.Execution.FAILED)

    assert metadata.run_ids(store.store) == ["2026-01-01T10", "2026-01-02T10"]
    runs = metadata.component_runs(store.store, "2026-01-02T10")
    assert list(runs) == [configs.TRANSFORM, configs.TRAINER]
    assert runs[configs.TRANSFORM].state == "cached" and runs[configs.TRANSFORM].succeeded
    assert runs[configs.TRAINER].state == "failed" and not runs[configs.TRAINER].succeeded
    trainer = metadata.component_runs(store.store, "2026-01-01T10")[configs.TRAINER]
    assert [a.uri for a in trainer.inputs["transform_graph"]] == ["/t/1"]
    with pytest.raises(KeyError, match="no pipeline run 'nope'"):
        metadata.component_runs(store.store, "nope")


def test_an_artifact_is_traced_to_the_execution_that_made_it(store):
    first, second = store.run("r1"), store.run("r2")
    trainer_id, model = store.execute(first, configs.TRAINER, outputs={"model": "/m/1"})
    _, evaluation = store.execute(
        first,
        configs.EVALUATOR,
        inputs={"model": model["model"]},
        outputs={"evaluation": "/e/1"},
    )
    # A cached Evaluator in the next run re-links the same evaluation: listed once, first run.
    store.execute(
        second,
        configs.EVALUATOR,
        state=mlmd_pb2.Execution.CACHED,
        inputs={"model": model["model"]},
    )
    evaluator = metadata.component_runs(store.store, "r1")[configs.EVALUATOR]
    assert metadata.trainer_of(store.store, evaluator).execution_id == trainer_id
    assert [(run_id, e.uri("evaluation")) for run_id, e in metadata.evaluations(store.store)] == [
        ("r1", "/e/1")
    ]


def test_where_a_model_was_pushed_or_that_it_was_not(store):
    run = store.run("r1")
    _, pushed = store.execute(run, configs.PUSHER, outputs={"pushed_model": "/p/1"})
    [artifact] = store.store.get_artifacts_by_id([pushed["pushed_model"]])
    artifact.custom_properties["pushed"].int_value = 1
    artifact.custom_properties["pushed_destination"].string_value = "/serving/17"
    store.store.put_artifacts([artifact])

    def destination():
        return metadata.pushed_destination(
            metadata.component_runs(store.store, "r1")[configs.PUSHER]
        )

    assert destination() == "/serving/17"
    artifact.custom_properties["pushed"].int_value = 0  # the Pusher ran, the model was not blessed
    store.store.put_artifacts([artifact])
    assert destination() is None
    assert metadata.pushed_destination(None) is None  # no Pusher ran at all


def test_a_root_that_never_ran_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="has the pipeline run there"):
        metadata.open_store(str(tmp_path / "empty"))


def test_the_trainer_logs_of_a_run_are_those_of_the_trainer_that_trained(store):
    first, cached, failed = store.run("r1"), store.run("r2"), store.run("r3")
    _, made = store.execute(first, configs.TRAINER, outputs={"model_run": "/logs/1"})
    store.execute(
        cached,
        configs.TRAINER,
        state=mlmd_pb2.Execution.CACHED,
        outputs_reused={"model_run": made["model_run"]},
    )
    store.execute(failed, configs.TRAINER, state=mlmd_pb2.Execution.FAILED)
    assert metadata.trainer_logs(store.store) == ("r2", "/logs/1")  # the latest that finished
    assert metadata.trainer_logs(store.store, "r1") == ("r1", "/logs/1")
    with pytest.raises(ValueError, match="run r3 has a Trainer that finished"):
        metadata.trainer_logs(store.store, "r3")
    with pytest.raises(ValueError, match="no run 'r9'"):
        metadata.trainer_logs(store.store, "r9")
