"""Metric names, shared by the Trainer's Keras history (``history.json``, TensorBoard) and the
Evaluator's TFMA results, so that a curve and an evaluation of the same quantity share a name.

The Trainer's Keras ``loss`` is its objective: the cross-entropy plus the weight-decay penalty
(``models/alexnet.py``), several times the cross-entropy alone on a young model. The Evaluator
computes the cross-entropy alone, so the Trainer logs that too.
"""

TOP1 = "accuracy"
TOP5 = "top5_accuracy"
CROSS_ENTROPY = "cross_entropy"
TRAINING_LOSS = "loss"  # Keras' name for the objective, cross-entropy + weight decay
VALIDATION_PREFIX = "val_"  # Keras' prefix of a metric on the validation data
