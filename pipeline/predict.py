"""Classifying image files with a pushed model, through the serving signature a model server
would call (``serving_image_bytes``, or the paper's ``serving_ten_crop``): the model carries
its Transform graph, so there is no second preprocessing here to drift from training's.

Files are checked first with the pipeline's own image check (``data.image_check``: what
TensorFlow's decoder refuses, or a header too large to decode safely), so a bad file is named
with its reason while the others are classified; the good ones go through the signature in
batches.
"""

from __future__ import annotations

import dataclasses
import os

from components.atomic_pusher.executor import SAVED_MODEL_FILE
from components.quarantine.component import MAX_IMAGE_PIXELS  # a larger header is not decoded
from data import image_check
from data.errors import UserError
from pipeline import configs

IMAGE_SIGNATURE = "serving_image_bytes"
TEN_CROP_SIGNATURE = "serving_ten_crop"
# What a directory is searched for (a file named on the command line is tried whatever it is).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


@dataclasses.dataclass(frozen=True)
class Guess:
    synset: str
    name: str
    class_index: int  # ImageNet's, 0-based
    probability: float


@dataclasses.dataclass(frozen=True)
class Prediction:
    path: str
    top: list[Guess]  # most probable first; empty when ``error``
    error: str | None = None


def find_model(model: str | None, pipeline_root: str | None) -> str:
    """The SavedModel to use: ``model`` (a SavedModel, or a push directory's newest version),
    else the newest model pushed by the runs in ``pipeline_root`` (default: ``make run``'s)."""
    from components.pushed_baseline.executor import latest_pushed

    if model is not None:
        if os.path.exists(os.path.join(model, SAVED_MODEL_FILE)):
            return model
        if os.path.isdir(model) and (pushed := latest_pushed(model)):
            return pushed
        raise UserError(
            f"--model {model}: neither a SavedModel (no {SAVED_MODEL_FILE}) nor a directory "
            "of pushed versions"
        )
    from pipeline import metadata

    root = pipeline_root or configs.PIPELINE_ROOT
    if not os.path.exists(metadata.metadata_path(root)):
        raise UserError(
            f"no pipeline run in {root}: run 'make run' first, or give --model or "
            "--pipeline-root"
        )
    store = metadata.open_store(root)
    for run_id in reversed(metadata.run_ids(store)):
        pushed = metadata.pushed_destination(
            metadata.component_runs(store, run_id).get(configs.PUSHER)
        )
        if pushed and os.path.exists(os.path.join(pushed, SAVED_MODEL_FILE)):
            return pushed
    raise UserError(f"no run in {root} pushed a model (none was blessed): see 'alexnet-tfx report'")


def image_files(paths: list[str]) -> list[str]:
    """The files named, and every image file under the directories named (sorted)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            under = sorted(
                os.path.join(parent, name)
                for parent, _, names in os.walk(path)
                for name in names
                if name.lower().endswith(IMAGE_SUFFIXES)
            )
            if not under:
                raise UserError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} file under it")
            found += under
        elif os.path.lexists(path):
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or directory")
    return found


def _read(path: str) -> tuple[bytes | None, str | None]:
    """(the file's bytes, None), or (None, why it cannot be classified)."""
    if not os.path.isfile(path):  # a FIFO would block, a device never end
        return None, "not a regular file" if os.path.exists(path) else "a broken link"
    try:
        with open(path, "rb") as f:
            image = f.read()
    except OSError as error:
        return None, f"unreadable: {error.strerror}"
    if not image:
        return None, f"{image_check.EMPTY_IMAGE}: the file is empty"
    problem = image_check.check_image(image, MAX_IMAGE_PIXELS)
    return (image, None) if problem is None else (None, f"{problem[0]}: {problem[1]}")


def load_signature(model_dir: str, ten_crop: bool):
    """The model's signature, or a UserError saying which signatures it has."""
    import tensorflow as tf

    name = TEN_CROP_SIGNATURE if ten_crop else IMAGE_SIGNATURE
    signatures = tf.saved_model.load(model_dir).signatures
    if name not in signatures:
        why = (
            " (ten crops need the 256 region stored: train with --preset paper or "
            "--store-full-region)"
            if ten_crop and IMAGE_SIGNATURE in signatures
            else ""
        )
        raise UserError(
            f"{model_dir} has no {name} signature{why}; it has {sorted(signatures) or 'none'}"
        )
    return signatures[name]


def classify(signature, paths: list[str], batch_size: int, progress=None):
    """A ``Prediction`` per file, in the order of ``paths``; ``progress(done, total)`` after
    each batch. The images go through ``signature`` ``batch_size`` at a time."""
    import tensorflow as tf

    pending: list[tuple[str, bytes | None, str | None]] = []  # in order, errors included
    done = 0

    def flush():
        nonlocal done
        images = [image for _, image, _ in pending if image is not None]
        outputs = signature(image_bytes=tf.constant(images)) if images else None
        row = 0
        for path, image, error in pending:
            if image is None:
                yield Prediction(path, [], error)
            else:
                yield Prediction(path, _guesses(outputs, row))
                row += 1
        done += len(pending)
        pending.clear()
        if progress is not None:
            progress(done, len(paths))

    for path in paths:
        pending.append((path, *_read(path)))
        if sum(image is not None for _, image, _ in pending) == batch_size:
            yield from flush()
    if pending:
        yield from flush()


def _guesses(outputs, row: int) -> list[Guess]:
    columns = (
        outputs["top5_synsets"][row].numpy(),
        outputs["top5_names"][row].numpy(),
        outputs["top5_class_indices"][row].numpy(),
        outputs["top5_probabilities"][row].numpy(),
    )
    return [
        Guess(synset.decode(), name.decode(), int(index), float(probability))
        for synset, name, index, probability in zip(*columns, strict=True)
    ]
