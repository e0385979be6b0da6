"""Benchmarks: ``alexnet-tfx bench transform|input|overhead|e2e|sizes`` (docs/benchmarks.md).

Each benchmark measures a real part of the pipeline against a baseline measured in the same
run, prints its figures and ends with one JSON line, so results can be collected by a script.

Keras 2 (tf_keras) is selected before anything imports TensorFlow: TFX 1.16, TFT and TFMA are
built on it, and a process that touched Keras 3 first cannot switch back.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
