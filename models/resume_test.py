"""models/resume.py's state on a small real model; the whole of it (a Trainer killed and
resumed to the weights of one never killed) runs in tests/reliability_e2e_test.py."""

from __future__ import annotations

import json

import numpy as np
import tf_keras

import models  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from models import resume


def _model() -> tf_keras.Model:
    inputs = tf_keras.Input([3])
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(tf_keras.layers.Dropout(0.5)(inputs)))
    model.compile(tf_keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    return model


def _fit(model, state, plateau, epochs: int):
    x, y = np.ones([8, 3], np.float32), np.zeros([8, 2], np.float32)
    model.fit(
        x, y, epochs=epochs, initial_epoch=state.epochs_done, verbose=0,
        callbacks=[plateau, state], validation_data=(x, y),
    )  # fmt: skip


def test_a_new_state_restores_epochs_history_counters_and_generators(tmp_path):
    with resume.random_generators():
        model = _model()
        plateau = tf_keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=5)
        state = resume.Resume(str(tmp_path), model, plateau)
        _fit(model, state, plateau, epochs=2)
        restored_model = _model()
        restored_plateau = tf_keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=5)
        restored = resume.Resume(str(tmp_path), restored_model, restored_plateau)
    assert restored.epochs_done == 2
    assert restored.history == state.history and len(restored.history["loss"]) == 2
    restored.on_train_begin()
    assert (restored_plateau.best, restored_plateau.wait) == (plateau.best, plateau.wait)
    for a, b in zip(model.weights, restored_model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    (generator,) = resume._generators(model).values()  # the dropout's
    (again,) = resume._generators(restored_model).values()
    np.testing.assert_array_equal(generator.state.numpy(), again.state.numpy())


def test_a_state_naming_a_missing_checkpoint_starts_afresh(tmp_path):
    (tmp_path / resume.STATE_FILE).write_text(
        json.dumps({"epochs": 3, "checkpoint": "ckpt-3", "history": {}, "plateau": {}})
    )
    model = _model()
    state = resume.Resume(str(tmp_path), model, tf_keras.callbacks.ReduceLROnPlateau())
    assert state.epochs_done == 0 and state.history == {}
