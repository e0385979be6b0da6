"""Model code the pipeline runs: AlexNet, LRN, the CIFAR-10 net, preprocessing and training.

Keras 2 (tf_keras) is selected before anything imports TensorFlow: TFX 1.16, TFT and TFMA are
built on it, and a process that touched Keras 3 first cannot switch back.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
