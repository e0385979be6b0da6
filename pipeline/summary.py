"""The text summary a run ends with, rendered from the same ``RunReport`` as the HTML report:
each component's state and duration, what Quarantine set aside, the metrics, the baseline, and
whether the model was blessed and where it went (or which threshold failed, with its value).
"""

from __future__ import annotations

import math

from components.quarantine.executor import REJECTED_COUNT_PROPERTY
from models.metric_names import CROSS_ENTROPY, TOP1, TOP5
from pipeline import configs
from pipeline.eval_config import EXAMPLE_COUNT
from pipeline.run_report import RunReport, seed_line


def render(report: RunReport) -> str:
    lines = [f"Run {report.run_id} ({len(report.run_ids)} run(s) in {report.pipeline_root})"]
    for node_id, component in report.components.items():
        lines.append(f"  {node_id:<32} {component.state:<9} {component.seconds:7.1f} s")
    quarantine = report.components.get(configs.QUARANTINE)
    if quarantine and quarantine.outputs.get("report"):
        quarantine_report = quarantine.outputs["report"][0]
        rejected = quarantine_report.custom_properties[REJECTED_COUNT_PROPERTY].int_value
        lines.append(f"Quarantine: {rejected} record(s) rejected (report: {quarantine_report.uri})")
    if report.anomalies is not None:
        lines += _anomaly_lines(report)
    evaluation = report.evaluation
    if evaluation is None:
        lines.append("No evaluation: the run stopped before the Evaluator.")
        return "\n".join(lines)
    m = evaluation.metrics
    crop = "central crop, " if evaluation.ten_crop_metrics else ""
    lines.append(
        f"Evaluation ({crop}{m.get(EXAMPLE_COUNT, 0):.0f} validation examples): "
        f"top-1 {m.get(TOP1, math.nan):.3f}, top-5 {m.get(TOP5, math.nan):.3f}, "
        f"cross-entropy {m.get(CROSS_ENTROPY, math.nan):.3f}"
    )
    if report.trainer is not None:
        lines.append(seed_line(report.trainer))
    if evaluation.ten_crop_metrics:
        t = evaluation.ten_crop_metrics
        lines.append(
            f"Ten crops (the paper's test, not gated): top-1 {t.get(TOP1, math.nan):.3f}, "
            f"top-5 {t.get(TOP5, math.nan):.3f}"
        )
    if evaluation.has_baseline:
        b = evaluation.baseline_metrics
        lines.append(f"Baseline (last blessed model): top-1 {b.get(TOP1, math.nan):.3f}")
    else:
        lines.append("Baseline: none yet, so only the value threshold applies.")
    if evaluation.blessed:
        lines.append(f"Blessed: yes. Pushed to {report.pushed_to}.")
    else:
        lines.append("Blessed: NO, nothing pushed. Failed thresholds:")
        lines += [f"  {failure}" for failure in evaluation.failures]
    return "\n".join(lines)


def _anomaly_lines(report: RunReport) -> list[str]:
    """ExampleValidator's verdict: it reports, it does not stop the run."""
    if not report.anomalies:
        return ["Data validation: no anomalies against the schema."]
    count = len(report.anomalies)
    lines = [
        f"Data validation: {count} {'anomaly' if count == 1 else 'anomalies'} against the "
        "schema (ExampleValidator reports them; the run went on):"
    ]
    for anomaly in report.anomalies:
        where = f"{anomaly.split} {anomaly.feature or '(dataset)'}"
        lines.append(f"  {where}: {anomaly.short_description}. {anomaly.description}")
    return lines
