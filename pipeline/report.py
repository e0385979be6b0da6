"""``alexnet-tfx report``: one self-contained HTML page that says how a run's model did and why
it was or was not pushed, with its plots embedded as PNG so the file can be mailed or archived.

Everything comes from ML Metadata through ``pipeline.runs`` (the Evaluator's artifact, the
Trainer behind the evaluated model, every earlier evaluation), never from guessed paths. The
figure functions return matplotlib Figures so the notebook shows the same plots.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
import os
import time

from matplotlib.figure import Figure

from data import imagenet_classes
from pipeline import runs
from pipeline.cli import CliError
from pipeline.eval_config import LOSS, TOP1, TOP5

# Beyond this many classes, bar labels and matrix cells stop being readable: the plots then
# show the classes that matter most (the best and worst, the most confused).
MAX_CLASSES_SHOWN = 40
METRIC_NAMES = {
    TOP1: "top-1 accuracy",
    TOP5: "top-5 accuracy",
    LOSS: "loss (cross-entropy)",
    "example_count": "validation examples",
}
_BLUE, _LIGHT_BLUE, _ORANGE, _GREEN, _RED = "#1f5fa8", "#a9c8ec", "#d9822b", "#2e8b3e", "#c0392b"


@dataclasses.dataclass
class RunReport:
    """Everything the report shows about one pipeline run."""

    pipeline_root: str
    run_id: str
    run_ids: list[str]
    components: dict[str, runs.ComponentRun]
    evaluation: runs.Evaluation | None  # None when the run stopped before the Evaluator
    classes: list[str]  # synset of each model output, in output order
    training: dict[str, list[float]]  # the Trainer's per-epoch log
    pushed_to: str | None
    history: list[tuple[str, runs.Evaluation]]  # (run id, evaluation), every run, oldest first


def collect(pipeline_root: str, run_id: str | None = None) -> RunReport:
    """Reads one run (default: the latest) and every evaluation before and after it."""
    store = runs.open_store(pipeline_root)
    ids = runs.run_ids(store)
    if not ids:
        raise ValueError(f"no pipeline run is recorded in {runs.metadata_path(pipeline_root)}")
    run_id = run_id or ids[-1]
    if run_id not in ids:
        raise ValueError(f"no run {run_id!r} in {pipeline_root}; its runs: {', '.join(ids)}")
    components = runs.component_runs(store, run_id)
    history = [(rid, runs.load_evaluation(e)) for rid, e in runs.evaluations(store)]
    evaluator = components.get("Evaluator")
    evaluation, classes, training = None, [], {}
    if evaluator is not None and evaluator.state in ("complete", "cached"):
        uri = evaluator.uri("evaluation")
        evaluation = next(e for _, e in history if e.uri == uri)
        trainer = runs.trainer_of(store, evaluator)
        classes, training = runs.class_synsets(trainer), runs.training_history(trainer)
    return RunReport(
        pipeline_root=pipeline_root,
        run_id=run_id,
        run_ids=ids,
        components=components,
        evaluation=evaluation,
        classes=classes,
        training=training,
        pushed_to=runs.pushed_destination(components.get("Pusher")),
        history=history,
    )


def class_label(synset: str) -> str:
    """E.g. "tabby (n02123045)"."""
    return f"{imagenet_classes.name_of(imagenet_classes.index_of(synset))} ({synset})"


def _ordered_metrics(metrics: dict[str, float]) -> list[str]:
    return [m for m in METRIC_NAMES if m in metrics] + sorted(set(metrics) - set(METRIC_NAMES))


# Figures ---------------------------------------------------------------------------------------


def per_class_figure(evaluation: runs.Evaluation) -> Figure:
    """Top-1 and top-5 accuracy of each class as horizontal bars, best class on top."""
    ranked = sorted(evaluation.per_class, key=lambda s: (evaluation.per_class[s][TOP1], s))
    title = "Accuracy per class"
    if len(ranked) > MAX_CLASSES_SHOWN:
        half = MAX_CLASSES_SHOWN // 2
        ranked = ranked[:half] + ranked[-half:]
        title += f" (the {half} worst and {half} best of {len(evaluation.per_class)})"
    top1 = [evaluation.per_class[s][TOP1] for s in ranked]
    top5 = [evaluation.per_class[s].get(TOP5, math.nan) for s in ranked]
    counts = [evaluation.per_class[s].get("example_count", math.nan) for s in ranked]
    fig = Figure(figsize=(9, 1.2 + 0.38 * len(ranked)), layout="constrained")
    ax = fig.add_subplot()
    y = range(len(ranked))
    ax.barh(y, top5, color=_LIGHT_BLUE, label="top-5")
    ax.barh(y, top1, height=0.5, color=_BLUE, label="top-1")
    for i, (value, count) in enumerate(zip(top1, counts, strict=True)):
        ax.text(1.01, i, f"{value:.0%} of {count:.0f}", va="center", fontsize=8)
    overall = evaluation.metrics[TOP1]
    ax.axvline(overall, color=_ORANGE, linestyle="--", label=f"overall top-1 {overall:.1%}")
    ax.set_yticks(list(y), [class_label(s) for s in ranked], fontsize=9)
    ax.set_xlim(0, 1.16)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("validation images of the class classified correctly")
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8)
    return fig


def confusion_rows(
    evaluation: runs.Evaluation, classes: list[str]
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


def confusion_figure(evaluation: runs.Evaluation, classes: list[str]) -> Figure:
    """Which class each validation image was taken for, per true class (rows sum to 100%)."""
    present, matrix = confusion_rows(evaluation, classes)
    show_other = any(row[-1] for row in matrix)
    if not show_other:
        matrix = [row[:-1] for row in matrix]
    fractions = [[c / (sum(row) or 1) for c in row] for row in matrix]
    n = len(present)
    size = 3 + (0.45 if n <= 20 else 0.3) * n
    fig = Figure(figsize=(size + 2, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.7, label="share of the true class's images")
    if n <= 20:
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                if count:
                    color = "white" if fractions[i][j] > 0.6 else "black"
                    ax.text(j, i, f"{count:.0f}", ha="center", va="center", color=color)
    labels = [class_label(s) for s in present]
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xticks(range(len(matrix[0])), labels + ["other"] * show_other, fontsize=8)
    ax.tick_params(axis="x", labelrotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_ylabel("true class")
    ax.set_xlabel("predicted class (top-1)")
    total = len(evaluation.per_class)
    subset = "" if n == total else f", the {n} of {total} classes with the most mistakes"
    ax.set_title(f"Confusion matrix (counts of validation images{subset})")
    return fig


def training_figure(training: dict[str, list[float]]) -> Figure | None:
    """Loss and accuracy per epoch, training and validation; None if it trained 0 epochs."""
    epochs = training.get("epoch") or []
    if not epochs:
        return None
    fig = Figure(figsize=(11, 4), layout="constrained")
    loss_ax, accuracy_ax = fig.subplots(1, 2)
    curves = [  # top-5 gets its own marker so a single epoch still tells it from top-1
        (loss_ax, "loss", "training loss", _BLUE, "-o"),
        (loss_ax, "val_loss", "validation loss", _ORANGE, "-o"),
        (accuracy_ax, "accuracy", "training top-1", _BLUE, "-o"),
        (accuracy_ax, "val_accuracy", "validation top-1", _ORANGE, "-o"),
        (accuracy_ax, "top5_accuracy", "training top-5", _BLUE, ":s"),
        (accuracy_ax, "val_top5_accuracy", "validation top-5", _ORANGE, ":s"),
    ]
    for ax, key, label, color, style in curves:
        values = training.get(key) or []
        if values:  # validation may have logged fewer epochs than training
            ax.plot(epochs[: len(values)], values, style, color=color, label=label)
    loss_ax.set_title("Loss per epoch")
    accuracy_ax.set_title("Accuracy per epoch")
    accuracy_ax.set_ylim(0, 1)
    for ax in (loss_ax, accuracy_ax):
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def history_figure(history: list[tuple[str, runs.Evaluation]], current: str) -> Figure:
    """Top-1 and top-5 of every evaluated model in the pipeline root, blessed or not."""
    fig = Figure(figsize=(max(6, 1.2 * len(history) + 3), 4), layout="constrained")
    ax = fig.add_subplot()
    x = list(range(len(history)))
    top1 = [e.metrics.get(TOP1, math.nan) for _, e in history]
    top5 = [e.metrics.get(TOP5, math.nan) for _, e in history]
    ax.plot(x, top5, ":", marker="s", color=_LIGHT_BLUE, label="top-5")
    ax.plot(x, top1, "-", color=_BLUE, label="top-1")
    for blessed, style in ((True, dict(color=_GREEN)), (False, dict(marker="X", color=_RED))):
        points = [i for i, (_, e) in enumerate(history) if e.blessed == blessed]
        if points:
            label = "blessed" if blessed else "not blessed"
            ax.scatter(points, [top1[i] for i in points], s=70, zorder=3, label=label, **style)
    for i, (run_id, _) in enumerate(history):
        if run_id == current:
            ax.annotate(
                "this report", (i, top1[i]), xytext=(0, -22), textcoords="offset points",
                ha="center", fontsize=8, arrowprops=dict(arrowstyle="->", color="grey"),
            )  # fmt: skip
    ax.set_xlim(-0.5, len(history) - 0.5)
    ax.set_xticks(x, [run_id.replace("T", "\n")[:16] for run_id, _ in history], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("validation accuracy")
    ax.set_xlabel("pipeline run")
    ax.set_title("Metric history across runs")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=4, fontsize=8)
    return fig


def png_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# HTML ------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-size: 0.9em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { padding: 0.8em 1.2em; border-radius: 6px; font-size: 1.1em; }
.blessed { background: #e3f4e5; border: 1px solid #2e8b3e; }
.not-blessed { background: #fbe5e3; border: 1px solid #c0392b; }
.pass { color: #2e8b3e; font-weight: bold; } .fail { color: #c0392b; font-weight: bold; }
img { max-width: 100%; } code { font-size: 0.85em; word-break: break-all; }
"""


def _e(text) -> str:
    return html.escape(str(text))


def _num(value: float | None, kind: str = "", **data: str) -> str:
    """A table cell with the value rounded for reading and exact in ``data-value``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "<td class='num'>-</td>"
    shown = f"{value:.0f}" if kind == "example_count" else f"{value:.4f}"
    attributes = "".join(f" data-{k}='{_e(v)}'" for k, v in data.items())
    return f"<td class='num'{attributes} data-value='{value!r}'>{shown}</td>"


def _image(fig: Figure | None, alt: str) -> str:
    if fig is None:
        return ""
    return f"<img alt='{_e(alt)}' src='{png_data_uri(fig)}'>"


def _verdict(report: RunReport) -> str:
    evaluation = report.evaluation
    if evaluation is None:
        stopped = ", ".join(
            f"{node_id} {c.state}"
            for node_id, c in report.components.items()
            if c.state not in ("complete", "cached")
        )
        return (
            "<div class='verdict not-blessed'><b>No evaluation</b>: this run stopped before "
            f"the Evaluator ({_e(stopped or 'no Evaluator ran')}), so no model was judged or "
            "pushed.</div>"
        )
    if evaluation.blessed:
        where = f" Pushed to <code>{_e(report.pushed_to)}</code>." if report.pushed_to else ""
        return (
            "<div class='verdict blessed'><b>Blessed</b>: the model passed every threshold of "
            f"the gate.{where}</div>"
        )
    reasons = "".join(f"<li>{_e(f)}</li>" for f in evaluation.failures) or (
        "<li>the Evaluator wrote no blessing</li>"
    )
    return (
        "<div class='verdict not-blessed'><b>NOT blessed, nothing pushed</b>, because:"
        f"<ul>{reasons}</ul></div>"
    )


def _metrics_table(evaluation: runs.Evaluation) -> str:
    header = "<tr><th>metric</th><th>this model</th>"
    if evaluation.has_baseline:
        header += "<th>baseline (last blessed model)</th><th>change</th>"
    rows = [header + "</tr>"]
    for metric in _ordered_metrics(evaluation.metrics):
        cells = _num(evaluation.metrics[metric], metric, model="candidate")
        if evaluation.has_baseline:
            cells += _num(evaluation.baseline_metrics.get(metric), metric, model="baseline")
            cells += _num(evaluation.changes.get(metric), metric, model="change")
        rows.append(
            f"<tr data-metric='{_e(metric)}'><th>{_e(METRIC_NAMES.get(metric, metric))}</th>"
            f"{cells}</tr>"
        )
    return "<table id='metrics'>" + "".join(rows) + "</table>"


def _thresholds_table(evaluation: runs.Evaluation) -> str:
    rows = ["<tr><th>threshold (overall slice)</th><th>value</th><th>result</th></tr>"]
    for check in evaluation.checks:
        verdict = "<td class='pass'>passed</td>" if check.passed else "<td class='fail'>FAILED</td>"
        rows.append(f"<tr><td>{_e(check.rule)}</td>{_num(check.value)}{verdict}</tr>")
    note = (
        ""
        if evaluation.has_baseline
        else "<p>No model had been blessed before, so there was no baseline and only the value "
        "threshold applied.</p>"
    )
    return "<table id='thresholds'>" + "".join(rows) + "</table>" + note


def _per_class_table(evaluation: runs.Evaluation) -> str:
    metrics = _ordered_metrics(next(iter(evaluation.per_class.values()), {}))
    header = "".join(f"<th>{_e(METRIC_NAMES.get(m, m))}</th>" for m in metrics)
    rows = [f"<tr><th>class</th>{header}</tr>"]
    for synset in sorted(evaluation.per_class, key=lambda s: -evaluation.per_class[s][TOP1]):
        values = evaluation.per_class[synset]
        cells = "".join(_num(values.get(m), m, metric=m) for m in metrics)
        label = _e(class_label(synset))
        rows.append(f"<tr data-synset='{_e(synset)}'><td>{label}</td>{cells}</tr>")
    return "<table id='per-class'>" + "".join(rows) + "</table>"


def _confusion_section(report: RunReport) -> str:
    evaluation = report.evaluation
    if not evaluation.confusion:
        return (
            "<p>This evaluation has no confusion matrix: its Evaluator was not configured with "
            "a <code>MultiClassConfusionMatrixPlot</code>.</p>"
        )
    present, matrix = confusion_rows(evaluation, report.classes)
    header = "".join(f"<th>{_e(s)}</th>" for s in present)
    rows = [f"<tr><th>true \\ predicted</th>{header}<th>other</th></tr>"]
    columns = [*present, "other"]
    for synset, row in zip(present, matrix, strict=True):
        counts = zip(row, columns, strict=True)
        cells = "".join(_num(c, "example_count", predicted=p) for c, p in counts)
        rows.append(f"<tr data-synset='{_e(synset)}'><th>{_e(synset)}</th>{cells}</tr>")
    return (
        _image(confusion_figure(evaluation, report.classes), "confusion matrix")
        + "<details><summary>counts</summary><table id='confusion'>"
        + "".join(rows)
        + "</table></details>"
    )


def _training_section(report: RunReport) -> str:
    fig = training_figure(report.training)
    if fig is None:
        return "<p>The model was trained 0 steps: there are no training curves.</p>"
    return _image(fig, "training curves")


def _history_section(report: RunReport) -> str:
    if not report.history:
        return "<p>No run of this pipeline root has been evaluated yet.</p>"
    rows = ["<tr><th>run</th><th>top-1</th><th>top-5</th><th>loss</th><th>blessed</th></tr>"]
    for run_id, evaluation in report.history:
        m = evaluation.metrics
        mark = " (this report)" if run_id == report.run_id else ""
        rows.append(
            f"<tr data-run='{_e(run_id)}'><td>{_e(run_id)}{mark}</td>"
            + "".join(_num(m.get(k), k, metric=k) for k in (TOP1, TOP5, LOSS))
            + f"<td>{'yes' if evaluation.blessed else 'no'}</td></tr>"
        )
    return (
        _image(history_figure(report.history, report.run_id), "metric history")
        + "<table id='history'>"
        + "".join(rows)
        + "</table>"
    )


def _components_table(report: RunReport) -> str:
    rows = ["<tr><th>component</th><th>state</th><th>seconds</th><th>outputs</th></tr>"]
    for node_id, component in report.components.items():
        outputs = "<br>".join(
            f"{_e(key)}: <code>{_e(a.uri)}</code>"
            for key, artifacts in component.outputs.items()
            for a in artifacts
        )
        rows.append(
            f"<tr data-component='{_e(node_id)}'><td>{_e(node_id)}</td><td>{_e(component.state)}"
            f"</td><td class='num'>{component.seconds:.1f}</td><td>{outputs}</td></tr>"
        )
    return "<table id='components'>" + "".join(rows) + "</table>"


def render(report: RunReport) -> str:
    """The report as one HTML document (no external files, scripts or fonts)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>alexnet-tfx report: run {_e(report.run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>alexnet-tfx: run {_e(report.run_id)}</h1>",
        f"<p>Pipeline root <code>{_e(report.pipeline_root)}</code>, run "
        f"{report.run_ids.index(report.run_id) + 1} of {len(report.run_ids)}. "
        f"Report written {_e(time.strftime('%Y-%m-%d %H:%M'))}.</p>",
        "<h2>Verdict</h2>",
        _verdict(report),
    ]
    evaluation = report.evaluation
    if evaluation is not None:
        count = evaluation.metrics.get("example_count", 0)
        baseline = report.components["Evaluator"].inputs.get("baseline_model")
        against = f" The baseline is <code>{_e(baseline[0].uri)}</code>." if baseline else ""
        parts += [
            f"<h2>Metrics</h2><p>On {count:.0f} validation images, computed by TFMA from "
            f"<code>{_e(evaluation.uri)}</code>.{against}</p>",
            _metrics_table(evaluation),
            "<h2>Threshold decision</h2>",
            _thresholds_table(evaluation),
            "<h2>Accuracy per class</h2>",
            _image(per_class_figure(evaluation), "accuracy per class"),
            "<details><summary>table</summary>",
            _per_class_table(evaluation),
            "</details>",
            "<h2>Confusion matrix</h2>",
            _confusion_section(report),
            "<h2>Training curves</h2>",
            _training_section(report),
        ]
    parts += [
        "<h2>Metric history across runs</h2>",
        _history_section(report),
        "<h2>Run summary (ML Metadata)</h2>",
        _components_table(report),
        "</body></html>",
    ]
    return "\n".join(parts)


def main(args) -> int:
    """The ``report`` subcommand."""
    output = os.path.abspath(args.output)
    if not os.path.isdir(os.path.dirname(output)):
        raise CliError(f"--output {output}: its directory does not exist")
    pipeline_root = os.path.abspath(args.pipeline_root)
    try:
        report = collect(pipeline_root, args.run_id)
    except (FileNotFoundError, ValueError) as error:
        raise CliError(str(error)) from None
    document = render(report)
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(document)
    except OSError as error:
        raise CliError(f"--output {output}: cannot write it ({error.strerror})") from None
    evaluation = report.evaluation
    if evaluation is None:
        verdict = "not evaluated"
    else:
        verdict = "blessed" if evaluation.blessed else "NOT blessed"
        verdict += f", top-1 {evaluation.metrics.get(TOP1, math.nan):.3f}"
    print(f"Wrote {output} (run {report.run_id}: {verdict})")
    return 0
