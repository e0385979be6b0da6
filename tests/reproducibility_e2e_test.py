"""Reproducible runs: the same data, code, settings and seed give the same model, bit for bit.

Two runs of the bundled sample in fresh pipeline roots with the same seed, one with Beam on one
worker and one on two worker processes, each training two epochs of two steps: their
transformed records, their trained weights (the checkpoint tensors of the exported model) and
their TFMA metrics are equal. A third run, in the first root with another seed, trains again
(everything before the Trainer comes from the cache) and gives other weights.
A resumed training is compared with an uninterrupted one in tests/reliability_e2e_test.py.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from pipeline import configs
from pipeline.evaluation import load_evaluation
from tests.conftest import run_pipeline

pytestmark = pytest.mark.e2e

TRAIN = ("--train-steps", "4", "--steps-per-epoch", "2", "--min-top1", "0")
TWO_WORKERS = (
    "--beam-arg=--direct_num_workers=2",
    "--beam-arg=--direct_running_mode=multi_processing",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("reproducibility")
    one_worker = run_pipeline(str(base / "a"), *TRAIN)
    two_workers = run_pipeline(str(base / "b"), *TRAIN, *TWO_WORKERS)
    other_seed = run_pipeline(str(base / "a"), *TRAIN, "--seed", "1")
    yield one_worker, two_workers, other_seed
    shutil.rmtree(base, ignore_errors=True)


def _weights(run) -> dict[str, np.ndarray]:
    """The trained model's checkpoint tensors, by name."""
    model = run.components()[configs.TRAINER].uri("model")
    reader = tf.train.load_checkpoint(os.path.join(model, "Format-Serving", "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _files(directory: str) -> dict[str, bytes]:
    result = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                result[os.path.relpath(path, directory)] = f.read()
    return result


def test_the_same_seed_in_fresh_roots_gives_the_same_weights_and_metrics(runs):
    one_worker, two_workers, _ = runs
    a, b = _weights(one_worker), _weights(two_workers)
    assert a.keys() == b.keys() and len(a) > 10
    different = [name for name in a if a[name].tobytes() != b[name].tobytes()]
    assert different == []
    evaluations = [
        load_evaluation(run.components()[configs.EVALUATOR]) for run in (one_worker, two_workers)
    ]
    assert evaluations[0].metrics == evaluations[1].metrics
    assert evaluations[0].per_class == evaluations[1].per_class
    for run in (one_worker, two_workers):
        assert "Trained with seed 0, deterministic:" in run.result.stdout


def test_transform_writes_the_same_bytes_with_one_or_two_beam_workers(runs):
    one_worker, two_workers, _ = runs
    outputs = [
        run.components()[configs.TRANSFORM].uri("transformed_examples")
        for run in (one_worker, two_workers)
    ]
    files = [_files(uri) for uri in outputs]
    assert files[0].keys() == files[1].keys() and files[0]
    assert [name for name in files[0] if files[0][name] != files[1][name]] == []


def test_another_seed_trains_again_from_the_cache_and_gives_other_weights(runs):
    one_worker, _, other_seed = runs
    components = other_seed.components()
    for node_id in (configs.EXAMPLE_GEN, configs.QUARANTINE, configs.TRANSFORM):
        assert components[node_id].state == "cached", node_id
    assert components[configs.TRAINER].state == "complete"
    a, c = _weights(one_worker), _weights(other_seed)
    assert any(a[name].tobytes() != c[name].tobytes() for name in a)
    assert "Trained with seed 1, deterministic:" in other_seed.result.stdout
