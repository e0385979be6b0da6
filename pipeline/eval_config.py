"""The TFMA gate: which metrics the Evaluator computes and which thresholds bless a model.

The Evaluator feeds raw validation examples to the candidate's ``serving_default`` signature;
``transform_features`` supplies the label (``class_index``) and the per-class slice key
(``synset``), so labels and slices come from the same Transform graph as training.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from models import preprocessing as pp

TOP1 = "accuracy"
TOP5 = "top5_accuracy"
LOSS = "loss"


def make_eval_config(min_top1: float, max_top1_drop: float) -> tfma.EvalConfig:
    """Top-1/top-5/loss/count overall and per class; bless on top-1.

    Value threshold: top-1 >= ``min_top1``. Change threshold: top-1 may not fall more than
    ``max_top1_drop`` below the last blessed model's (when there is one; without a baseline
    only the value threshold applies).
    """
    top1_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_top1}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_top1_drop},
        ),
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                preprocessing_function_names=["transform_features"],
                label_key=pp.CLASS_INDEX_KEY,
                prediction_key="probabilities",
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[pp.SYNSET_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        config=json.dumps({"name": TOP1}),
                        # The gate looks at the overall slice only; per-class values are
                        # reported, not gated.
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=[tfma.SlicingSpec()], threshold=top1_threshold
                            )
                        ],
                    ),
                    tfma.MetricConfig(
                        class_name="SparseTopKCategoricalAccuracy",
                        config=json.dumps({"name": TOP5, "k": 5}),
                    ),
                    tfma.MetricConfig(
                        class_name="SparseCategoricalCrossentropy",
                        config=json.dumps({"name": LOSS}),
                    ),
                    # Which class each validation image was taken for (argmax prediction).
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            )
        ],
    )
