"""Everything the summary, the HTML report and the notebook show about one run, collected once.

A ``RunReport`` is read from ML Metadata (``pipeline.metadata``): the run's component
executions, its evaluation (``pipeline.evaluation``), the Trainer behind the evaluated model
(its per-epoch log and its classes), where the model was pushed, and, for the report, every
earlier evaluation in the pipeline root. The renderers only format what is here.
"""

from __future__ import annotations

import dataclasses
import json
import os

from models.config import TrainerConfig
from pipeline import configs, metadata
from pipeline.eval_config import EXAMPLE_COUNT, METRIC_NAMES
from pipeline.evaluation import Evaluation, load_evaluation
from pipeline.metadata import ComponentRun

# Beyond this many classes, bar labels and matrix cells stop being readable: the plots then
# show the classes that matter most (the best and worst, the most confused).
MAX_CLASSES_SHOWN = 40


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One anomaly ExampleValidator found: the data did not match the schema there."""

    split: str
    feature: str  # "" for one of the whole dataset
    short_description: str
    description: str


@dataclasses.dataclass
class RunReport:
    """Everything the report shows about one pipeline run."""

    pipeline_root: str
    run_id: str
    run_ids: list[str]
    components: dict[str, ComponentRun]
    evaluation: Evaluation | None  # None when the run stopped before the Evaluator
    classes: list[str]  # synset of each model output, in output order
    training: dict[str, list[float]]  # the Trainer's per-epoch log
    pushed_to: str | None
    history: list[tuple[str, Evaluation]]  # (run id, evaluation), oldest first; may be empty
    anomalies: list[Anomaly] | None = None  # None: ExampleValidator did not finish
    trainer: TrainerConfig | None = None  # what trained the evaluated model (seed, ...)

    @property
    def baseline_uri(self) -> str | None:
        """The model the evaluation compared against (the last blessed one), if any."""
        evaluator = self.components.get(configs.EVALUATOR)
        baseline = evaluator and evaluator.inputs.get("baseline_model")
        return baseline[0].uri if baseline else None


def collect(pipeline_root: str, run_id: str | None = None, history: bool = True) -> RunReport:
    """Reads one run (default: the latest), and with ``history`` every evaluation in the root.

    ValueError names the runs there are when ``run_id`` is not one of them.
    """
    store = metadata.open_store(pipeline_root)
    ids = metadata.run_ids(store)
    if not ids:
        raise ValueError(f"no pipeline run is recorded in {metadata.metadata_path(pipeline_root)}")
    run_id = run_id or ids[-1]
    if run_id not in ids:
        raise ValueError(f"no run {run_id!r} in {pipeline_root}; its runs: {', '.join(ids)}")
    components = metadata.component_runs(store, run_id)
    evaluated = (
        [(rid, load_evaluation(e)) for rid, e in metadata.evaluations(store)] if history else []
    )
    evaluator = components.get(configs.EVALUATOR)
    evaluation, classes, training, trainer_config = None, [], {}, None
    if evaluator is not None and evaluator.succeeded:
        uri = evaluator.uri("evaluation")
        evaluation = next((e for _, e in evaluated if e.uri == uri), None) or load_evaluation(
            evaluator
        )
        trainer = metadata.trainer_of(store, evaluator)
        classes, training = class_synsets(trainer), training_history(trainer)
        trainer_config = training_settings(trainer)
    return RunReport(
        pipeline_root=pipeline_root,
        run_id=run_id,
        run_ids=ids,
        components=components,
        evaluation=evaluation,
        classes=classes,
        training=training,
        pushed_to=metadata.pushed_destination(components.get(configs.PUSHER)),
        history=evaluated,
        anomalies=load_anomalies(components.get(configs.EXAMPLE_VALIDATOR)),
        trainer=trainer_config,
    )


def training_settings(trainer: ComponentRun) -> TrainerConfig | None:
    """The Trainer's settings as its execution recorded them in ML Metadata; None for a
    custom_config this version cannot read, or one from before training was deterministic
    (its defaults would claim what that run did not do)."""
    from models.config import parse_trainer_custom_config

    try:
        recorded = json.loads(trainer.properties["custom_config"])
        if "deterministic" not in recorded["trainer"]:
            return None
        return parse_trainer_custom_config(recorded)[1]
    except (KeyError, ValueError, TypeError):
        return None


def seed_line(config: TrainerConfig) -> str:
    """How the model was trained, as far as reproducing it goes."""
    how = (
        "deterministic: the same data, code and settings give the same weights"
        if config.deterministic
        else "nondeterministic (--nondeterministic): another run differs"
    )
    return f"Trained with seed {config.seed}, {how}."


def load_anomalies(validator: ComponentRun | None) -> list[Anomaly] | None:
    """What ExampleValidator's ``anomalies`` artifact holds, split by split."""
    if validator is None or not validator.succeeded or not validator.uri("anomalies"):
        return None
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = []
    for split_dir in sorted(tf.io.gfile.glob(os.path.join(validator.uri("anomalies"), "Split-*"))):
        split = os.path.basename(split_dir).removeprefix("Split-")
        for path in tf.io.gfile.glob(os.path.join(split_dir, "*.pb")):
            with tf.io.gfile.GFile(path, "rb") as f:
                anomalies = anomalies_pb2.Anomalies.FromString(f.read())
            infos = sorted(anomalies.anomaly_info.items())
            if anomalies.HasField("dataset_anomaly_info"):
                infos.append(("", anomalies.dataset_anomaly_info))
            found += [
                Anomaly(split, feature, info.short_description, info.description)
                for feature, info in infos
            ]
    return found


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


def format_metric(name: str, value: float) -> str:
    """A metric as the summary, the report and the notebook show it: counts as integers."""
    return f"{value:.0f}" if name == EXAMPLE_COUNT else f"{value:.4f}"


def ordered_metrics(metrics: dict[str, float]) -> list[str]:
    """Metric names, the ones with display names first, in their order."""
    return [m for m in METRIC_NAMES if m in metrics] + sorted(set(metrics) - set(METRIC_NAMES))


def confusion_rows(
    evaluation: Evaluation, classes: list[str]
) -> tuple[list[str], list[list[float]]]:
    """The confusion matrix over the validation classes present (rows: true, columns:
    predicted, in the same order, then "other" for predictions of any class not present)."""
    present = sorted(evaluation.per_class)
    if len(present) > MAX_CLASSES_SHOWN:  # the classes with the most mistakes
        errors = {s: 0.0 for s in present}
        for (true, predicted), count in evaluation.confusion.items():
            if true != predicted and 0 <= true < len(classes):
                errors[classes[true]] += count
        present = sorted(sorted(present, key=lambda s: -errors[s])[:MAX_CLASSES_SHOWN])
    column = {synset: i for i, synset in enumerate(present)}
    matrix = [[0.0] * (len(present) + 1) for _ in present]
    for (true, predicted), count in evaluation.confusion.items():
        row = column.get(classes[true]) if 0 <= true < len(classes) else None
        if row is None:
            continue
        in_range = 0 <= predicted < len(classes)
        matrix[row][column.get(classes[predicted], -1) if in_range else -1] += count
    return present, matrix
