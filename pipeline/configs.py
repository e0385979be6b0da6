"""Pipeline names, paths and node ids: constants only.

Values a user chooses (batch size, thresholds, ...) are not here: each step's typed config
states its defaults once (``models.config``, ``pipeline.eval_config``), and the presets
(``pipeline.presets``) are named sets of values on top of them.
"""

import os

PIPELINE_NAME = "alexnet-tfx"

# Local runs write under the working directory; metadata lives inside the pipeline root so
# that one path finds everything a run produced.
PIPELINE_ROOT = os.path.join("tfx_pipeline_output", PIPELINE_NAME)
METADATA_FILE = "metadata.sqlite"
SERVING_DIR_NAME = "serving_model"
CHECKPOINT_DIR_NAME = "trainer_checkpoints"  # the training state that outlives a crash

# Module code is referenced by import path, so the same pipeline compiles for any
# orchestrator and the container image needs only this package installed.
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"

# Where the gate's baseline comes from: TFX's Resolver over ML Metadata (local runs, Vertex AI),
# or the newest pushed model, found by a container step (open-source Kubeflow Pipelines, which
# runs no resolver: docs/kubeflow.md).
BASELINE_RESOLVER = "resolver"
BASELINE_PUSHED = "pushed"
BASELINES = (BASELINE_RESOLVER, BASELINE_PUSHED)

# Node ids: create_pipeline gives each component its id; the summary, the report, the Kubeflow
# compiler and the tests find components by these. An id names a component's history in ML
# Metadata, so renaming one starts that history afresh.
EXAMPLE_GEN = "ImportExampleGen"
RAW_EXAMPLE_GEN = "RawImageNetExampleGen"  # the example gen of a raw ILSVRC-2012 tree
QUARANTINE = "Quarantine"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
TRANSFORM = "Transform"
TRAINER = "Trainer"
MODEL_RESOLVER = "latest_blessed_model_resolver"
LATEST_PUSHED_MODEL = "LatestPushedModel"  # the baseline where no Resolver runs (KFP OSS)
EVALUATOR = "Evaluator"
PUSHER = "Pusher"
