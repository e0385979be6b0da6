"""The run summary, rendered from hand-made run reports: every number written out by hand."""

from __future__ import annotations

from pipeline import summary
from pipeline.html_report_test import (
    CLOCK,
    TABBY,
    make_component,
    make_evaluation,
    make_run_report,
)
from pipeline.run_report import Anomaly


def test_a_blessed_run_names_its_components_metrics_and_destination():
    evaluation = make_evaluation({TABBY: 0.9, CLOCK: 0.7}, blessed=True)
    quarantine = make_component("Quarantine", "cached", report="/runs/Quarantine/report/3")
    quarantine.outputs["report"][0].custom_properties["rejected_count"].int_value = 7
    components = {
        "Quarantine": quarantine,
        "Evaluator": make_component("Evaluator", "complete", evaluation=evaluation.uri),
    }
    text = summary.render(make_run_report(evaluation, components, pushed_to="/serving/17"))
    assert text.splitlines() == [
        "Run 2026-01-02T10:00:00.2 (2 run(s) in /runs/<root>)",
        "  Quarantine                       cached        1.5 s",
        "  Evaluator                        complete      1.5 s",
        "Quarantine: 7 record(s) rejected (report: /runs/Quarantine/report/3)",
        "Data validation: no anomalies against the schema.",
        "Evaluation (30 validation examples): top-1 0.400, top-5 0.700, cross-entropy 1.750",
        "Baseline: none yet, so only the value threshold applies.",
        "Blessed: yes. Pushed to /serving/17.",
    ]


def test_a_model_that_failed_the_gate_says_which_threshold_with_its_value():
    failures = [
        "accuracy 0.400 is below the value threshold 0.5",
        "accuracy changed by -0.500 against the baseline; the change threshold is +0",
    ]
    evaluation = make_evaluation(
        {TABBY: 0.4},
        has_baseline=True,
        baseline_metrics={"accuracy": 0.9},
        failures=failures,
    )
    text = summary.render(make_run_report(evaluation, {}))
    assert "Baseline (last blessed model): top-1 0.900" in text
    assert text.splitlines()[-3:] == [
        "Blessed: NO, nothing pushed. Failed thresholds:",
        "  accuracy 0.400 is below the value threshold 0.5",
        "  accuracy changed by -0.500 against the baseline; the change threshold is +0",
    ]


def test_data_validation_says_what_example_validator_found_or_that_it_found_nothing():
    evaluation = make_evaluation({TABBY: 0.9}, blessed=True)
    anomaly = Anomaly(
        "train", "image/class/label", "Out-of-range values", "Unexpectedly large value: 1001."
    )
    text = summary.render(make_run_report(evaluation, {}, anomalies=[anomaly]))
    assert (
        "Data validation: 1 anomaly against the schema (ExampleValidator reports them; the run "
        "went on):\n  train image/class/label: Out-of-range values. Unexpectedly large value: "
        "1001.\n"
    ) in text
    clean = summary.render(make_run_report(evaluation, {}, anomalies=[]))
    assert "Data validation: no anomalies against the schema." in clean


def test_a_run_that_stopped_before_the_evaluator():
    components = {"Trainer": make_component("Trainer", "failed")}
    text = summary.render(make_run_report(None, components, anomalies=None))
    assert text.splitlines()[1:] == [
        "  Trainer                          failed        1.5 s",
        "No evaluation: the run stopped before the Evaluator.",
    ]


def test_a_model_of_the_stored_region_shows_the_ten_crop_test_beside_the_central_crop():
    evaluation = make_evaluation(
        {TABBY: 0.9}, blessed=True, ten_crop_metrics={"accuracy": 0.45, "top5_accuracy": 0.8}
    )
    text = summary.render(make_run_report(evaluation, {}, pushed_to="/serving/3"))
    assert (
        "Evaluation (central crop, 30 validation examples): top-1 0.400, top-5 0.700, "
        "cross-entropy 1.750\nTen crops (the paper's test, not gated): top-1 0.450, top-5 0.800"
    ) in text
