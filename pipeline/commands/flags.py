"""Flag types and the settings flags that ``run`` and ``compile-kubeflow`` share.

Each settings flag names the step config field it sets (``trainer.batch_size``); flags that are
not given stay out of the namespace, so ``pipeline.presets.resolve`` can tell a flag from a
preset value or a default.
"""

from __future__ import annotations

import argparse

from models import catalog
from pipeline import presets


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


# (flag, the setting it sets, argparse keywords); the defaults are the step configs' and the
# preset's, which --help cannot show here without resolving them.
SETTINGS_FLAGS = (
    ("--model", "trainer.model", {"choices": sorted(catalog.MODELS)}),
    (
        "--epochs",
        "trainer.epochs",
        {
            "type": positive_int,
            "help": "passes over the training records (the Trainer counts them)",
        },
    ),
    (
        "--train-steps",
        "trainer.train_steps",
        {"type": non_negative_int, "help": "training steps in all, instead of --epochs"},
    ),
    (
        "--steps-per-epoch",
        "trainer.steps_per_epoch",
        {"type": positive_int, "help": "steps between validations (default: a pass)"},
    ),
    ("--eval-steps", "trainer.eval_steps", {"type": positive_int}),
    ("--batch-size", "trainer.batch_size", {"type": positive_int}),
    ("--learning-rate", "trainer.learning_rate", {"type": float}),
    (
        "--initialization",
        "trainer.initialization",
        {
            "choices": ("paper", "glorot"),
            "help": "AlexNet's initial weights: the paper's N(0, 0.01) with biases of 1 (needs "
            "many epochs; use it for ImageNet) or Glorot-uniform with zero biases (learns the "
            "bundled sample in minutes)",
        },
    ),
    (
        "--store-full-region",
        "transform.store_full_region",
        {
            "action": "store_true",
            "help": "store the 256x256 center region; the Trainer then takes random crops of it",
        },
    ),
    (
        "--mixed-precision",
        "trainer.mixed_precision",
        {"choices": ("mixed_float16", "mixed_bfloat16")},
    ),
    (
        "--xla",
        "trainer.xla",
        {"action": "store_true", "help": "compile the training step with XLA"},
    ),
    (
        "--cache-dataset",
        "trainer.cache_dataset",
        {
            "action": "store_true",
            "help": "hold the decoded training images in RAM after the first epoch (S*S*3 "
            "bytes each: 1.5 GB per 10,000 images at 227)",
        },
    ),
    (
        "--data-service",
        "trainer.data_service",
        {
            "metavar": "grpc://HOST:PORT",
            "help": "run the training input on tf.data service workers "
            "('alexnet-tfx data-service'), each element once per epoch",
        },
    ),
    (
        "--seed",
        "trainer.seed",
        {
            "type": int,
            "help": "seeds the initial weights, the input order, augmentation and dropout: the "
            "same data, code, settings and seed give the same model, bit for bit",
        },
    ),
    (
        "--nondeterministic",
        "trainer.deterministic",
        {
            "action": "store_false",
            "help": "let TensorFlow pick its fastest kernels and read in any order (runs differ; "
            "needed for --xla and --data-service): docs/reproducibility.md",
        },
    ),
    (
        "--min-top1",
        "gate.min_top1",
        {
            "type": float,
            "help": "value threshold: the lowest top-1 accuracy a model may have to be blessed",
        },
    ),
    (
        "--max-top1-drop",
        "gate.max_top1_drop",
        {
            "type": float,
            "help": "change threshold: how much top-1 may fall below the last blessed model",
        },
    ),
)


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """The preset, model, training and gate flags: the same for every orchestrator."""
    parser.add_argument(
        "--preset",
        choices=sorted(presets.PRESETS),
        default=presets.DEFAULT_PRESET,
        help="a named set of values under the flags (default: %(default)s; paper: the "
        "paper's recipe for ImageNet)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print every setting with where it came from (default, preset, flag) and exit",
    )
    for flag, key, keywords in SETTINGS_FLAGS:
        keywords = dict(keywords)
        keywords["help"] = f"{keywords.get('help', '')} [{key}]".lstrip()
        if "type" in keywords:
            keywords["metavar"] = flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(flag, dest=key, default=argparse.SUPPRESS, **keywords)


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: TensorFlow's, TFX's and Beam's messages too (``pipeline.run_log``)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print every message, TensorFlow's, TFX's and Beam's too, not only this "
        "command's output and real warnings",
    )


def add_param_flag(parser: argparse.ArgumentParser) -> None:
    """``--param NAME=VALUE``: a compiled pipeline's runtime parameter (submit, kubeflow-local)."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a runtime parameter, e.g. --param data_root=gs://... (repeatable)",
    )


def resolve_settings(
    args: argparse.Namespace, given: dict[str, tuple] | None = None
) -> presets.Resolved:
    """The settings the flags in ``args`` ask for, on their preset; ``given`` adds values that
    are not flags, e.g. ``{"transform.record_format": ("tfds", "the data")}``."""
    values = vars(args)
    flags = {key: (values[key], flag) for flag, key, _ in SETTINGS_FLAGS if key in values}
    return presets.resolve(args.preset, {**flags, **(given or {})})


def print_config(resolved: presets.Resolved) -> int:
    """``--print-config``: every setting, its value and its source."""
    print("\n".join(resolved.lines()))
    return 0
