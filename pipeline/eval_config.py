"""The TFMA gate: which metrics the Evaluator computes and which thresholds bless a model.

The Evaluator feeds raw validation examples to the candidate's ``serving_default`` signature;
``transform_features`` supplies the label (``class_index``) and the per-class slice key
(``synset``), so labels and slices come from the same Transform graph as training.
"""

from __future__ import annotations

import dataclasses
import json

from models.metric_names import CROSS_ENTROPY, TOP1, TOP5

EXAMPLE_COUNT = "example_count"
METRIC_NAMES = {  # as the summary, the report and the notebook show them
    TOP1: "top-1 accuracy",
    TOP5: "top-5 accuracy",
    CROSS_ENTROPY: "cross-entropy",
    EXAMPLE_COUNT: "validation examples",
}


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """The evaluation gate's thresholds on top-1 accuracy, overall slice."""

    min_top1: float = 0.5  # value threshold: the lowest top-1 a model may have
    max_top1_drop: float = 0.0  # change threshold: how far below the last blessed model


# With the ten-crop output each example goes through the network 11 times: smaller batches.
TEN_CROP_INFERENCE_BATCH = 32


def make_eval_config(gate: GateConfig, ten_crop: bool = False):
    """Top-1/top-5/cross-entropy/count overall and per class; bless on top-1.

    Value threshold: top-1 >= ``min_top1``. Change threshold: top-1 may not fall more than
    ``max_top1_drop`` below the last blessed model's (when there is one; without a baseline
    only the value threshold applies). With ``ten_crop`` (the stored 256 region), the model's
    ``evaluation`` signature gives the centre crop's and the paper's ten-crop predictions;
    the ten-crop average is measured overall and not gated.
    """
    import tensorflow_model_analysis as tfma

    from models import preprocessing as pp
    from models import signatures

    top1_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": gate.min_top1}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -gate.max_top1_drop},
        ),
    )
    centre = [
        tfma.MetricConfig(class_name="ExampleCount"),
        tfma.MetricConfig(
            class_name="SparseCategoricalAccuracy",
            config=json.dumps({"name": TOP1}),
            # The gate looks at the overall slice only; per-class values are reported, not
            # gated.
            per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(
                    slicing_specs=[tfma.SlicingSpec()], threshold=top1_threshold
                )
            ],
        ),
        tfma.MetricConfig(
            class_name="SparseTopKCategoricalAccuracy", config=json.dumps({"name": TOP5, "k": 5})
        ),
        tfma.MetricConfig(
            class_name="SparseCategoricalCrossentropy", config=json.dumps({"name": CROSS_ENTROPY})
        ),
        # Which class each validation image was taken for (argmax prediction).
        tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
    ]
    slicing_specs = [tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[pp.SYNSET_KEY])]
    if not ten_crop:
        model_spec = tfma.ModelSpec(
            signature_name="serving_default",
            preprocessing_function_names=["transform_features"],
            label_key=pp.CLASS_INDEX_KEY,
            prediction_key=signatures.PROBABILITIES,
        )
        metrics_specs = [tfma.MetricsSpec(metrics=centre)]
    else:
        outputs = (signatures.PROBABILITIES, signatures.TEN_CROP_PROBABILITIES)
        model_spec = tfma.ModelSpec(
            signature_name=signatures.EVALUATION_SIGNATURE,
            preprocessing_function_names=["transform_features"],
            label_keys=dict.fromkeys(outputs, pp.CLASS_INDEX_KEY),
            inference_batch_size=TEN_CROP_INFERENCE_BATCH,
        )
        ten = [
            tfma.MetricConfig(class_name=class_name, config=json.dumps(config))
            for class_name, config in (
                ("SparseCategoricalAccuracy", {"name": TOP1}),
                ("SparseTopKCategoricalAccuracy", {"name": TOP5, "k": 5}),
            )
        ]
        metrics_specs = [
            tfma.MetricsSpec(metrics=centre, output_names=[signatures.PROBABILITIES]),
            tfma.MetricsSpec(metrics=ten, output_names=[signatures.TEN_CROP_PROBABILITIES]),
        ]
    return tfma.EvalConfig(
        model_specs=[model_spec], slicing_specs=slicing_specs, metrics_specs=metrics_specs
    )
