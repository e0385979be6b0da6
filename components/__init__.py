"""Custom TFX components, for what no standard component does.

Keras 2 (tf_keras) is selected before anything imports TensorFlow: TFX 1.16, TFT and TFMA are
built on it, and a process that touched Keras 3 first cannot switch back.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
