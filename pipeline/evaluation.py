"""What an Evaluator execution decided, decoded from its TFMA artifact: metrics overall and per
class, the baseline and the change, every threshold with the value it was compared against, the
confusion matrix, and the verdict.
"""

from __future__ import annotations

import dataclasses

from models.signatures import TEN_CROP_PROBABILITIES
from pipeline.metadata import ComponentRun


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
    # Overall, the softmax averaged over the paper's ten crops (a model that stored the 256
    # region); empty otherwise. The other fields are the central crop's.
    ten_crop_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    # The central crop's output in TFMA's results: "" for a single-output model, the output's
    # name beside the ten-crop one (``EvalResult.get_metrics_for_slice(output_name=...)``).
    output_name: str = ""


def load_evaluation(evaluator: ComponentRun) -> Evaluation:
    """Reads the evaluation artifact of an Evaluator execution with TFMA."""
    import tensorflow_model_analysis as tfma

    uri = evaluator.uri("evaluation")
    blessing = (evaluator.outputs.get("blessing") or [None])[0]
    metrics: dict[str, float] = {}
    baseline: dict[str, float] = {}
    per_class: dict[str, dict[str, float]] = {}
    changes: dict[str, float] = {}
    ten_crop: dict[str, float] = {}
    model_name = output_name = ""
    for slice_metrics in tfma.load_metrics(uri):
        keys = slice_metrics.slice_key.single_slice_keys
        for kv in slice_metrics.metric_keys_and_values:
            key = kv.key
            value = _metric_value(kv.value)
            if value is None or key.HasField("sub_key"):
                continue
            if key.output_name == TEN_CROP_PROBABILITIES:
                if not keys and not key.is_diff and key.model_name != "baseline":
                    ten_crop[key.name] = value
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
                output_name = key.output_name
            elif len(keys) == 1:
                synset = _slice_value(keys[0])
                per_class.setdefault(synset, {})[key.name] = value
    validation = tfma.load_validation_result(uri)
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(_describe_failure(failure, per_slice.slice_key))
    # Whether a baseline was evaluated, as TFMA's results say: a baseline input may hold no
    # model (components.pushed_baseline, before anything was pushed).
    has_baseline = bool(baseline)
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
        ten_crop,
        output_name,
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
