"""A run's report as one self-contained HTML page: how the model did and why it was or was not
pushed, with its plots embedded as PNG so the file can be mailed or archived.

No scripts, fonts or external files; every number cell carries its exact value in
``data-value`` so tests (and scripts) can read the page back.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time

from matplotlib.figure import Figure

from data import imagenet_classes
from models.metric_names import CROSS_ENTROPY, TOP1, TOP5
from pipeline import figures, run_report
from pipeline.eval_config import EXAMPLE_COUNT, METRIC_NAMES
from pipeline.evaluation import Evaluation
from pipeline.run_report import RunReport, seed_line

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
    shown = run_report.format_metric(kind, value)
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
            f"{node_id} {c.state}" for node_id, c in report.components.items() if not c.succeeded
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


def _metrics_table(evaluation: Evaluation) -> str:
    header = "<tr><th>metric</th><th>this model</th>"
    if evaluation.has_baseline:
        header += "<th>baseline (last blessed model)</th><th>change</th>"
    rows = [header + "</tr>"]
    for metric in run_report.ordered_metrics(evaluation.metrics):
        cells = _num(evaluation.metrics[metric], metric, model="candidate")
        if evaluation.has_baseline:
            cells += _num(evaluation.baseline_metrics.get(metric), metric, model="baseline")
            cells += _num(evaluation.changes.get(metric), metric, model="change")
        rows.append(
            f"<tr data-metric='{_e(metric)}'><th>{_e(METRIC_NAMES.get(metric, metric))}</th>"
            f"{cells}</tr>"
        )
    return "<table id='metrics'>" + "".join(rows) + "</table>"


def _ten_crop_table(evaluation: Evaluation) -> str:
    if not evaluation.ten_crop_metrics:
        return ""
    rows = ["<tr><th>metric</th><th>central crop</th><th>ten crops</th></tr>"]
    for metric in (TOP1, TOP5):
        rows.append(
            f"<tr data-metric='{_e(metric)}'><th>{_e(METRIC_NAMES[metric])}</th>"
            + _num(evaluation.metrics.get(metric), metric, model="centre")
            + _num(evaluation.ten_crop_metrics.get(metric), metric, model="ten-crop")
            + "</tr>"
        )
    return (
        "<p>The paper's test (§4.1): the softmax averaged over the four corner crops, the centre "
        "crop and their mirror images. The gate judges the central crop.</p>"
        "<table id='ten-crop'>" + "".join(rows) + "</table>"
    )


def _thresholds_table(evaluation: Evaluation) -> str:
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


def _per_class_table(evaluation: Evaluation) -> str:
    metrics = run_report.ordered_metrics(next(iter(evaluation.per_class.values()), {}))
    header = "".join(f"<th>{_e(METRIC_NAMES.get(m, m))}</th>" for m in metrics)
    rows = [f"<tr><th>class</th>{header}</tr>"]
    for synset in sorted(evaluation.per_class, key=lambda s: -evaluation.per_class[s][TOP1]):
        values = evaluation.per_class[synset]
        cells = "".join(_num(values.get(m), m, metric=m) for m in metrics)
        label = _e(imagenet_classes.describe(synset))
        rows.append(f"<tr data-synset='{_e(synset)}'><td>{label}</td>{cells}</tr>")
    return "<table id='per-class'>" + "".join(rows) + "</table>"


def _confusion_section(report: RunReport) -> str:
    evaluation = report.evaluation
    if not evaluation.confusion:
        return (
            "<p>This evaluation has no confusion matrix: its Evaluator was not configured with "
            "a <code>MultiClassConfusionMatrixPlot</code>.</p>"
        )
    present, matrix = run_report.confusion_rows(evaluation, report.classes)
    header = "".join(f"<th>{_e(s)}</th>" for s in present)
    rows = [f"<tr><th>true \\ predicted</th>{header}<th>other</th></tr>"]
    columns = [*present, "other"]
    for synset, row in zip(present, matrix, strict=True):
        counts = zip(row, columns, strict=True)
        cells = "".join(_num(c, EXAMPLE_COUNT, predicted=p) for c, p in counts)
        rows.append(f"<tr data-synset='{_e(synset)}'><th>{_e(synset)}</th>{cells}</tr>")
    return (
        _image(figures.confusion_figure(evaluation, report.classes), "confusion matrix")
        + "<details><summary>counts</summary><table id='confusion'>"
        + "".join(rows)
        + "</table></details>"
    )


def _training_section(report: RunReport) -> str:
    settings = f"<p class='settings'>{_e(seed_line(report.trainer))}</p>" if report.trainer else ""
    fig = figures.training_figure(report.training)
    if fig is None:
        return settings + "<p>The model was trained 0 steps: there are no training curves.</p>"
    return settings + _image(fig, "training curves")


def _history_section(report: RunReport) -> str:
    if not report.history:
        return "<p>No run of this pipeline root has been evaluated yet.</p>"
    rows = [
        "<tr><th>run</th><th>top-1</th><th>top-5</th><th>cross-entropy</th><th>blessed</th></tr>"
    ]
    for run_id, evaluation in report.history:
        m = evaluation.metrics
        mark = " (this report)" if run_id == report.run_id else ""
        rows.append(
            f"<tr data-run='{_e(run_id)}'><td>{_e(run_id)}{mark}</td>"
            + "".join(_num(m.get(k), k, metric=k) for k in (TOP1, TOP5, CROSS_ENTROPY))
            + f"<td>{'yes' if evaluation.blessed else 'no'}</td></tr>"
        )
    return (
        _image(figures.history_figure(report.history, report.run_id), "metric history")
        + "<table id='history'>"
        + "".join(rows)
        + "</table>"
    )


def _anomalies_section(report: RunReport) -> str:
    if report.anomalies is None:
        return "<p>ExampleValidator did not finish in this run.</p>"
    if not report.anomalies:
        return "<p id='anomalies'>No anomalies: the data matched the schema.</p>"
    rows = ["<tr><th>split</th><th>feature</th><th>anomaly</th><th>description</th></tr>"]
    for anomaly in report.anomalies:
        rows.append(
            f"<tr><td>{_e(anomaly.split)}</td><td>{_e(anomaly.feature or '(dataset)')}</td>"
            f"<td>{_e(anomaly.short_description)}</td><td>{_e(anomaly.description)}</td></tr>"
        )
    return (
        f"<p>{len(report.anomalies)} found by ExampleValidator against the schema; it reports "
        "them and the run goes on (bad records are Quarantine's to stop).</p>"
        "<table id='anomalies'>" + "".join(rows) + "</table>"
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
        count = evaluation.metrics.get(EXAMPLE_COUNT, 0)
        baseline = report.baseline_uri if evaluation.has_baseline else None
        against = f" The baseline is <code>{_e(baseline)}</code>." if baseline else ""
        parts += [
            f"<h2>Metrics</h2><p>On {count:.0f} validation images, computed by TFMA from "
            f"<code>{_e(evaluation.uri)}</code>.{against}</p>",
            _metrics_table(evaluation),
            _ten_crop_table(evaluation),
            "<h2>Threshold decision</h2>",
            _thresholds_table(evaluation),
            "<h2>Accuracy per class</h2>",
            _image(figures.per_class_figure(evaluation), "accuracy per class"),
            "<details><summary>table</summary>",
            _per_class_table(evaluation),
            "</details>",
            "<h2>Confusion matrix</h2>",
            _confusion_section(report),
            "<h2>Training curves</h2>",
            _training_section(report),
        ]
    parts += [
        "<h2>Data validation</h2>",
        _anomalies_section(report),
        "<h2>Metric history across runs</h2>",
        _history_section(report),
        "<h2>Run summary (ML Metadata)</h2>",
        _components_table(report),
        "</body></html>",
    ]
    return "\n".join(parts)


def png_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
