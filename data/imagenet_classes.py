"""The 1000 ILSVRC-2012 classes: synset ids in label order (sorted) and their names.

``imagenet_classes.tsv`` ships with the project so nothing is downloaded at run time. Each line
is ``synset<TAB>WordNet text``, the layout of ``imagenet_metadata.txt`` that
``build_imagenet_data.py`` reads. It was assembled offline from the tensorflow-datasets 4.9.3
wheel (Apache-2.0): the synsets are ``datasets/imagenet2012/labels.txt`` (sorted, which is the
label order of both record formats) and the texts are ``IMAGENET_LABELS_LIST`` in
``datasets/siscore/labels.py``, which lists them in the same order. A class's name is the first
lemma of its text ("tench, Tinca tinca" -> "tench"); names are not unique ("maillot" twice).
"""

from __future__ import annotations

import functools
from importlib import resources

from data.records import NUM_CLASSES

_CLASSES_FILE = "imagenet_classes.tsv"


@functools.cache
def _table() -> tuple[tuple[str, str], ...]:
    text = resources.files(__package__).joinpath(_CLASSES_FILE).read_text(encoding="utf-8")
    rows = tuple(tuple(line.split("\t")) for line in text.splitlines())
    # A damaged data file would silently shift every label, so refuse it outright.
    synset_ids = [row[0] for row in rows]
    if (
        len(rows) != NUM_CLASSES
        or any(len(row) != 2 for row in rows)
        or synset_ids != sorted(set(synset_ids))
    ):
        raise RuntimeError(
            f"{_CLASSES_FILE} is damaged: expected {NUM_CLASSES} lines of 'synset<TAB>text' "
            "with unique synsets in sorted order"
        )
    return rows


@functools.cache
def synsets() -> tuple[str, ...]:
    """The 1000 synset ids; position i is class index i."""
    return tuple(synset for synset, _ in _table())


@functools.cache
def names() -> tuple[str, ...]:
    """A short human-readable name per class index (the first WordNet lemma)."""
    return tuple(text.split(",")[0].strip() for _, text in _table())


@functools.cache
def _index_by_synset() -> dict[str, int]:
    return {synset: index for index, synset in enumerate(synsets())}


def index_of(synset: str) -> int:
    """The 0-based class index of ``synset``; ValueError naming it when it is not a class."""
    try:
        return _index_by_synset()[synset]
    except KeyError:
        raise ValueError(f"{synset!r} is not one of the 1000 ILSVRC-2012 synsets") from None


def _check_index(index: int) -> int:
    if not 0 <= index < NUM_CLASSES:
        raise ValueError(f"class index {index} is outside 0..{NUM_CLASSES - 1}")
    return index


def synset_of(index: int) -> str:
    """The synset id of class ``index``; ValueError unless 0 <= index <= 999."""
    return synsets()[_check_index(index)]


def name_of(index: int) -> str:
    """The short name of class ``index``; ValueError unless 0 <= index <= 999."""
    return names()[_check_index(index)]


def describe(synset: str) -> str:
    """E.g. "tabby (n02123045)": how plots and tables label a class."""
    return f"{name_of(index_of(synset))} ({synset})"
