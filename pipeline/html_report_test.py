"""The report's matrix bookkeeping, figures and HTML on small hand-made evaluations.

The end-to-end test (tests/inspect_e2e_test.py) checks the same report against real runs; here
the inputs are small enough to write every expected number by hand.
"""

from __future__ import annotations

import base64
import html.parser
import io

import numpy as np
from matplotlib import image as mpimg
from ml_metadata.proto import metadata_store_pb2

from data import imagenet_classes
from pipeline import figures, html_report, run_report
from pipeline.evaluation import Evaluation, ThresholdCheck
from pipeline.metadata import ComponentRun
from pipeline.run_report import Anomaly

TABBY, CLOCK, ESPRESSO, TENCH = "n02123045", "n04548280", "n07920052", "n01440764"


def make_evaluation(per_class_top1: dict[str, float], **fields) -> Evaluation:
    per_class = {
        s: {
            "accuracy": a,
            "top5_accuracy": min(1.0, a + 0.3),
            "cross_entropy": 1.5,
            "example_count": 10.0,
        }
        for s, a in per_class_top1.items()
    }
    values = dict(
        uri="/runs/Evaluator/evaluation/9",
        metrics={
            "accuracy": 0.4,
            "top5_accuracy": 0.7,
            "cross_entropy": 1.75,
            "example_count": 30.0,
        },
        baseline_metrics={},
        changes={},
        per_class=per_class,
        has_baseline=False,
        blessed=False,
        failures=[],
    )
    values.update(fields)
    return Evaluation(**values)


def png_pixels(data_uri: str) -> np.ndarray:
    """The pixels of an embedded PNG (tests/inspect_e2e_test.py uses it too)."""
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    return mpimg.imread(io.BytesIO(base64.b64decode(data_uri[len(prefix) :])), format="png")


def _assert_drawn(fig) -> None:
    pixels = png_pixels(html_report.png_data_uri(fig))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_confusion_rows_follow_the_model_outputs_back_to_synsets():
    # Output order is the Transform vocabulary's (by frequency), not sorted; TENCH is a class
    # the model knows but the validation split does not hold.
    classes = [ESPRESSO, TABBY, CLOCK, TENCH]
    confusion = {(0, 0): 3, (0, 1): 1, (1, 1): 4, (1, 3): 1, (2, 0): 2, (2, 2): 2}
    evaluation = make_evaluation({TABBY: 0.8, CLOCK: 0.5, ESPRESSO: 0.75}, confusion=confusion)
    present, matrix = run_report.confusion_rows(evaluation, classes)
    assert present == [TABBY, CLOCK, ESPRESSO]
    #                 TABBY CLOCK ESPRESSO other
    assert matrix == [[4, 0, 0, 1], [0, 2, 2, 0], [1, 0, 3, 0]]


def test_confusion_rows_keep_the_classes_with_the_most_mistakes():
    synsets = list(imagenet_classes.synsets()[:50])
    # Class i is taken for class i + 1 exactly i times.
    confusion = {(i, i): 10.0 for i in range(50)}
    confusion.update({(i, (i + 1) % 50): float(i) for i in range(1, 50)})
    evaluation = make_evaluation(dict.fromkeys(synsets, 0.5), confusion=confusion)
    present, matrix = run_report.confusion_rows(evaluation, synsets)
    assert run_report.MAX_CLASSES_SHOWN == 40
    assert present == synsets[10:]
    # Row of class 10: 10 right, 10 taken for class 11 (shown), nothing else.
    assert matrix[0][:2] == [10.0, 10.0] and sum(matrix[0]) == 20.0
    # Class 49's mistakes go to class 0, which is not shown: "other".
    assert matrix[-1][-2:] == [10.0, 49.0]


def test_every_figure_is_a_drawn_png():
    evaluation = make_evaluation(
        {TABBY: 0.8, CLOCK: 0.5, ESPRESSO: 0.75},
        confusion={(0, 0): 3, (1, 1): 4, (1, 0): 1, (2, 2): 2},
    )
    _assert_drawn(figures.per_class_figure(evaluation))
    _assert_drawn(figures.confusion_figure(evaluation, [ESPRESSO, TABBY, CLOCK]))
    training = {  # validation logged fewer epochs than training, as when its data ran out
        "epoch": [1, 2, 3],
        "loss": [4.0, 3.0, 2.5],
        "cross_entropy": [1.9, 1.6, 1.4],
        "val_cross_entropy": [2.0],
        "accuracy": [0.2, 0.3, 0.4],
        "top5_accuracy": [0.6, 0.7, 0.8],
        "val_loss": [3.5],
        "val_accuracy": [0.25],
        "val_top5_accuracy": [0.65],
    }
    _assert_drawn(figures.training_figure(training))
    history = [("2026-01-01T10:00:00.1", evaluation), ("2026-01-02T10:00:00.2", evaluation)]
    _assert_drawn(figures.history_figure(history, current="2026-01-02T10:00:00.2"))


def test_the_loss_curves_say_what_they_hold():
    training = {"epoch": [1, 2], "loss": [4.0, 3.0], "cross_entropy": [1.9, 1.5]}
    training["val_cross_entropy"] = [2.0, 1.7]
    loss_ax, _ = figures.training_figure(training).axes
    assert [line.get_label() for line in loss_ax.get_lines()] == [
        "training objective (cross-entropy + weight decay)",
        "training cross-entropy",
        "validation cross-entropy",
    ]


def test_the_per_class_plot_shows_the_worst_and_best_when_there_are_too_many_classes():
    synsets = imagenet_classes.synsets()[:100]
    evaluation = make_evaluation({s: i / 100 for i, s in enumerate(synsets)})
    (ax,) = figures.per_class_figure(evaluation).axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 40
    assert labels[0] == imagenet_classes.describe(synsets[0])  # the worst at the bottom
    assert labels[-1] == imagenet_classes.describe(synsets[-1])  # the best on top
    assert imagenet_classes.describe(synsets[50]) not in labels


def test_a_model_trained_zero_steps_has_no_training_curves():
    assert figures.training_figure({"epoch": []}) is None


class ReportPage(html.parser.HTMLParser):
    """A report's text under each element with an id (and the verdict), its images and number
    cells. tests/inspect_e2e_test.py reads real reports with it too."""

    _VOID = ("br", "img", "meta")

    def __init__(self, text: str):
        super().__init__()
        self.text: dict[str, str] = {}
        self.images: list[str] = []
        self.cells: list[tuple[str, dict, dict, str]] = []  # table id, row attrs, attrs, text
        self._open: list[str] = []
        self._table = ""
        self._row: dict = {}
        self._cell: list | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table":
            self._table = attrs.get("id", "")
        elif tag == "tr":
            self._row = attrs
        elif tag == "td" and "data-value" in attrs:
            self._cell = [self._table, self._row, attrs, ""]
        if tag in self._VOID:
            return
        key = attrs.get("id") or ("verdict" if "verdict" in attrs.get("class", "") else "")
        self._open.append(key)
        if key:
            self.text[key] = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(tuple(self._cell))
            self._cell = None
        if tag not in self._VOID and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[3] += data
        for key in filter(None, self._open):
            self.text[key] += data

    def numbers(self, table: str, row: str, column: str, value: str) -> dict:
        """{the row's data-<row>: (exact value, shown text)} of the cells whose data-<column>
        is ``value``."""
        return {
            attrs[f"data-{row}"]: (float(cell["data-value"]), shown)
            for table_id, attrs, cell, shown in self.cells
            if table_id == table and cell.get(f"data-{column}") == value
        }


def make_run_report(evaluation, components, **fields) -> run_report.RunReport:
    values = dict(
        pipeline_root="/runs/<root>",
        run_id="2026-01-02T10:00:00.2",
        run_ids=["2026-01-01T10:00:00.1", "2026-01-02T10:00:00.2"],
        components=components,
        evaluation=evaluation,
        classes=[ESPRESSO, TABBY, CLOCK],
        training={"epoch": [1], "loss": [2.0], "accuracy": [0.3]},
        pushed_to=None,
        anomalies=[],
        history=[("2026-01-02T10:00:00.2", evaluation)] if evaluation else [],
    )
    values.update(fields)
    return run_report.RunReport(**values)


def make_component(node_id: str, state: str, **outputs: str) -> ComponentRun:
    return ComponentRun(
        node_id=node_id,
        state=state,
        seconds=1.5,
        execution_id=1,
        inputs={},
        outputs={k: [metadata_store_pb2.Artifact(uri=uri)] for k, uri in outputs.items()},
    )


def test_the_report_says_why_a_model_was_not_blessed_with_exact_numbers():
    failure = "accuracy 0.400 is below the value threshold 0.5"
    per_class = {TABBY: 0.8, CLOCK: 0.1, ESPRESSO: 0.3}
    evaluation = make_evaluation(
        per_class,
        confusion={(0, 0): 3, (1, 1): 8, (2, 2): 1},
        failures=[failure],
        checks=[ThresholdCheck("accuracy", "accuracy >= 0.5", 0.4, passed=False)],
    )
    components = {
        "Evaluator": make_component("Evaluator", "complete", evaluation=evaluation.uri),
        "Pusher": make_component("Pusher", "complete", pushed_model="/runs/Pusher/pushed_model/10"),
    }
    text = html_report.render(make_run_report(evaluation, components))
    page = ReportPage(text)
    assert "NOT blessed, nothing pushed" in page.text["verdict"]
    assert failure in page.text["verdict"]
    assert "accuracy >= 0.5" in page.text["thresholds"] and "FAILED" in page.text["thresholds"]
    assert "there was no baseline and only the value threshold applied" in text
    overall = page.numbers("metrics", "metric", "model", "candidate")
    assert overall["accuracy"] == (0.4, "0.4000")
    assert overall["cross_entropy"] == (1.75, "1.7500")
    assert overall["example_count"] == (30.0, "30")
    assert page.numbers("per-class", "synset", "metric", "accuracy") == {
        TABBY: (0.8, "0.8000"),
        CLOCK: (0.1, "0.1000"),
        ESPRESSO: (0.3, "0.3000"),
    }
    assert "tabby (n02123045)" in page.text["per-class"]
    # Model outputs are [ESPRESSO, TABBY, CLOCK], so (0, 0) is ESPRESSO taken for ESPRESSO.
    diagonal = {s: page.numbers("confusion", "synset", "predicted", s)[s] for s in per_class}
    assert diagonal == {ESPRESSO: (3.0, "3"), TABBY: (8.0, "8"), CLOCK: (1.0, "1")}
    assert "/runs/Pusher/pushed_model/10" in page.text["components"]
    assert "the data matched the schema" in page.text["anomalies"]
    assert len(page.images) == 4  # per class, confusion, training, history
    for src in page.images:
        assert png_pixels(src).size > 0


def test_the_report_of_a_run_that_stopped_before_the_evaluator():
    components = {
        "Transform": make_component("Transform", "cached"),
        "Trainer": make_component("Trainer", "failed"),
    }
    text = html_report.render(make_run_report(None, components, run_ids=["2026-01-02T10:00:00.2"]))
    page = ReportPage(text)
    assert "No evaluation" in page.text["verdict"] and "Trainer failed" in page.text["verdict"]
    assert "No run of this pipeline root has been evaluated yet." in text
    assert "/runs/&lt;root&gt;" in text  # paths are escaped, never markup


def test_a_blessed_report_names_where_the_model_went():
    evaluation = make_evaluation({TABBY: 0.9}, blessed=True)
    components = {"Evaluator": make_component("Evaluator", "complete", evaluation=evaluation.uri)}
    run = make_run_report(
        evaluation, components, pushed_to="/serving/1700000000", classes=[TABBY], training={}
    )
    page = ReportPage(html_report.render(run))
    assert "Blessed" in page.text["verdict"] and "/serving/1700000000" in page.text["verdict"]
    assert len(page.images) == 2  # per class and history: no confusion matrix, no epochs


def test_the_report_lists_each_anomaly_example_validator_found():
    anomaly = Anomaly(
        "validation", "image/class/label", "Out-of-range values", "Unexpectedly large value: 1001."
    )
    evaluation = make_evaluation({TABBY: 0.9}, blessed=True)
    run = make_run_report(evaluation, {}, anomalies=[anomaly], classes=[TABBY], training={})
    shown = ReportPage(html_report.render(run)).text["anomalies"]
    for part in ("validation", "image/class/label", "Out-of-range values", "value: 1001."):
        assert part in shown, shown


def test_the_ten_crop_test_stands_beside_the_central_crop():
    evaluation = make_evaluation(
        {TABBY: 0.9}, ten_crop_metrics={"accuracy": 0.45, "top5_accuracy": 0.8}
    )
    page = ReportPage(html_report.render(make_run_report(evaluation, {}, classes=[TABBY])))
    assert page.numbers("ten-crop", "metric", "model", "ten-crop") == {
        "accuracy": (0.45, "0.4500"),
        "top5_accuracy": (0.8, "0.8000"),
    }
    assert page.numbers("ten-crop", "metric", "model", "centre")["accuracy"] == (0.4, "0.4000")
