"""Resuming a killed Trainer exactly where it stopped.

A re-run of the pipeline after a crash is a new TFX execution with new output directories, so
the training state lives under ``checkpoint_root``, in a directory that the same training
inputs and config find again (``models.trainer``); any change starts afresh. After every
epoch ``Resume`` saves

* the model's and the optimizer's variables in a checkpoint, the random generators' states
  among them: inside ``random_generators``, augmentation and dropout draw from
  ``tf.random.Generator``s, whose state is a variable, instead of stateful kernels whose
  position no checkpoint holds;
* then ``state.json``, naming that checkpoint: the epochs done, their logs (the history) and
  the learning-rate schedule's counters (``ReduceLROnPlateau``'s best value and patience).

A re-run restores all of it and starts the training input at the record where the next epoch
would have started (``models.input_pipeline.training_records``), so a resumed training ends
with the weights an uninterrupted one ends with (tests/reliability_e2e_test.py kills one).
The directory is deleted once the model is exported (``finish``).
"""

from __future__ import annotations

import contextlib
import json
import os

import tensorflow as tf
import tf_keras
from absl import logging

STATE_FILE = "state.json"
KEPT_CHECKPOINTS = 2  # the one state.json names survives a crash while the next is written
# ReduceLROnPlateau's counters that a resumed schedule must continue from.
PLATEAU_COUNTERS = ("best", "wait", "cooldown_counter")


@contextlib.contextmanager
def random_generators():
    """Keras' random layers built in the block draw from ``tf.random.Generator``s (their
    state saved with the model). The switch is the process's: put back as it was."""
    experimental = tf_keras.backend.experimental
    before = experimental.is_tf_random_generator_enabled()
    experimental.enable_tf_random_generator()
    try:
        yield
    finally:
        if not before:
            experimental.disable_tf_random_generator()


def _generators(model: tf_keras.Model) -> dict:
    """The ``tf.random.Generator`` of each of Keras' own random layers (dropout), created now
    (Keras creates it at the first draw), by the layer's place in the model (names differ from
    one build to the next in a process). Keras leaves them out of checkpoints on purpose (they
    go to SavedModels only), so the checkpoint names them itself. Call it in the strategy's
    scope, where the model was built: a generator made there splits its stream over the
    replicas. (``models.augmentation.Augment`` owns a generator the model tracks.)"""
    generators = {}
    for number, layer in enumerate(model.submodules):
        rng = getattr(layer, "_random_generator", None)  # tf_keras 2.16's BaseRandomLayer
        if hasattr(rng, "_maybe_init"):
            rng._maybe_init()  # noqa: SLF001 - the generator is made on first use otherwise
            if rng._generator is not None:  # noqa: SLF001 - None: legacy stateful kernels
                generators[str(number)] = rng._generator  # noqa: SLF001
    return generators


class Resume(tf_keras.callbacks.Callback):
    """Saves the training state after every epoch; ``epochs_done`` and ``history`` are what a
    killed run had done. List it after the ``ReduceLROnPlateau`` it continues."""

    def __init__(self, directory: str, model: tf_keras.Model, plateau):
        super().__init__()
        self.directory = directory
        self.plateau = plateau
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=model.optimizer, random_generators=_generators(model)
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=KEPT_CHECKPOINTS
        )
        self.epochs_done, self.history, self._counters = 0, {}, None
        path = os.path.join(directory, STATE_FILE)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                state = json.load(f)
            checkpoint = os.path.join(directory, state["checkpoint"])
            if not tf.io.gfile.exists(checkpoint + ".index"):
                logging.warning(
                    "%s names %s, which is gone: training from the start", path, checkpoint
                )
                return
            # Variables built later (optimizer slots, generator states) are restored as they
            # are created.
            self.checkpoint.restore(checkpoint)
            self.epochs_done, self.history = state["epochs"], state["history"]
            self._counters = state["plateau"]

    def on_train_begin(self, logs=None):
        if self._counters:  # after the schedule's own on_train_begin, which resets them
            for name, value in self._counters.items():
                setattr(self.plateau, name, value)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        checkpoint = self.manager.save(checkpoint_number=epoch + 1)
        state = {
            "epochs": epoch + 1,
            "checkpoint": os.path.basename(checkpoint),
            "history": self.history,
            "plateau": {name: float(getattr(self.plateau, name)) for name in PLATEAU_COUNTERS},
        }
        path = os.path.join(self.directory, STATE_FILE)
        with tf.io.gfile.GFile(path + ".tmp", "w") as f:
            json.dump(state, f)
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)

    def finish(self) -> None:
        """Deletes the state: the training it describes is complete and exported."""
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)
