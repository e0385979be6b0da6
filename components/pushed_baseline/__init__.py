"""The pushed baseline: the model last pushed to the serving directory, as the Evaluator's
baseline, on orchestrators that run no TFX Resolver (open-source Kubeflow Pipelines)."""
