"""Custom TFX components, for what no standard component does.

``QuarantineReport`` is exported here because its type name, ``components.QuarantineReport``,
is the import path that TFX's Kubeflow entrypoint loads it by; it is imported on first use,
so importing one component does not import the others.

Keras 2 (tf_keras) is selected before anything imports TensorFlow: TFX 1.16, TFT and TFMA are
built on it, and a process that touched Keras 3 first cannot switch back.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def __getattr__(name: str):
    if name == "QuarantineReport":
        from components.quarantine.component import QuarantineReport

        return QuarantineReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
