"""pytest start-up: Keras 2 (tf_keras) before any test module imports TensorFlow."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
