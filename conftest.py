"""pytest start-up: Keras 2 (tf_keras) before any test module imports TensorFlow; and how the
suite splits over pytest-xdist's workers (``make test`` runs two)."""

import os

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# The session fixture that makes the bundled sample's shared runs (tests/conftest.py).
SHARED_RUNS = "sample_runs"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Each module runs on one worker, so its module-scoped runs are made once; the tests that
    read the shared runs run on one worker together, so those are made once too. The long
    groups come first (``--no-loadscope-reorder`` keeps this order), so none starts last."""
    for item in items:
        shared = SHARED_RUNS in getattr(item, "fixturenames", ())
        item.add_marker(pytest.mark.xdist_group(SHARED_RUNS if shared else item.module.__name__))
    items.sort(
        key=lambda item: (
            SHARED_RUNS not in getattr(item, "fixturenames", ()),
            item.get_closest_marker("e2e") is None,
        )
    )
