"""The plots of a run's evaluation, as matplotlib Figures: per-class accuracy, the confusion
matrix, the training curves and the metric history across runs.

The HTML report embeds them as PNG and the notebook displays them, so both show the same
pictures; each function draws from ``pipeline.run_report``'s data and computes nothing else.
"""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from data import imagenet_classes
from models.metric_names import CROSS_ENTROPY, TOP1, TOP5, TRAINING_LOSS, VALIDATION_PREFIX
from pipeline import run_report
from pipeline.eval_config import EXAMPLE_COUNT
from pipeline.evaluation import Evaluation

_BLUE, _LIGHT_BLUE, _ORANGE, _GREEN, _RED = "#1f5fa8", "#a9c8ec", "#d9822b", "#2e8b3e", "#c0392b"


def per_class_figure(evaluation: Evaluation) -> Figure:
    """Top-1 and top-5 accuracy of each class as horizontal bars, best class on top."""
    ranked = sorted(evaluation.per_class, key=lambda s: (evaluation.per_class[s][TOP1], s))
    title = "Accuracy per class"
    if len(ranked) > run_report.MAX_CLASSES_SHOWN:
        half = run_report.MAX_CLASSES_SHOWN // 2
        ranked = ranked[:half] + ranked[-half:]
        title += f" (the {half} worst and {half} best of {len(evaluation.per_class)})"
    top1 = [evaluation.per_class[s][TOP1] for s in ranked]
    top5 = [evaluation.per_class[s].get(TOP5, math.nan) for s in ranked]
    counts = [evaluation.per_class[s].get(EXAMPLE_COUNT, math.nan) for s in ranked]
    fig = Figure(figsize=(9, 1.2 + 0.38 * len(ranked)), layout="constrained")
    ax = fig.add_subplot()
    y = range(len(ranked))
    ax.barh(y, top5, color=_LIGHT_BLUE, label="top-5")
    ax.barh(y, top1, height=0.5, color=_BLUE, label="top-1")
    for i, (value, count) in enumerate(zip(top1, counts, strict=True)):
        ax.text(1.01, i, f"{value:.0%} of {count:.0f}", va="center", fontsize=8)
    overall = evaluation.metrics[TOP1]
    ax.axvline(overall, color=_ORANGE, linestyle="--", label=f"overall top-1 {overall:.1%}")
    ax.set_yticks(list(y), [imagenet_classes.describe(s) for s in ranked], fontsize=9)
    ax.set_xlim(0, 1.16)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("validation images of the class classified correctly")
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8)
    return fig


def confusion_figure(evaluation: Evaluation, classes: list[str]) -> Figure:
    """Which class each validation image was taken for, per true class (rows sum to 100%)."""
    present, matrix = run_report.confusion_rows(evaluation, classes)
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
    labels = [imagenet_classes.describe(s) for s in present]
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
    val = VALIDATION_PREFIX
    curves = [  # top-5 gets its own marker so a single epoch still tells it from top-1
        (loss_ax, TRAINING_LOSS, "training objective (cross-entropy + weight decay)", _BLUE, "--"),
        (loss_ax, CROSS_ENTROPY, "training cross-entropy", _BLUE, "-o"),
        (loss_ax, val + CROSS_ENTROPY, "validation cross-entropy", _ORANGE, "-o"),
        (accuracy_ax, TOP1, "training top-1", _BLUE, "-o"),
        (accuracy_ax, val + TOP1, "validation top-1", _ORANGE, "-o"),
        (accuracy_ax, TOP5, "training top-5", _BLUE, ":s"),
        (accuracy_ax, val + TOP5, "validation top-5", _ORANGE, ":s"),
    ]
    for ax, key, label, color, style in curves:
        values = training.get(key) or []
        if values:  # validation may have logged fewer epochs than training
            ax.plot(epochs[: len(values)], values, style, color=color, label=label)
    loss_ax.set_title("Loss per epoch (the Evaluator's is the cross-entropy)")
    accuracy_ax.set_title("Accuracy per epoch")
    accuracy_ax.set_ylim(0, 1)
    for ax in (loss_ax, accuracy_ax):
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return fig


def history_figure(history: list[tuple[str, Evaluation]], current: str) -> Figure:
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
