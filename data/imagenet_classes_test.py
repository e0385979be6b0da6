"""The bundled ILSVRC-2012 class list against facts known independently of the data file."""

import pytest

from data import imagenet_classes

# (index, synset, name): well-known ILSVRC-2012 classes, positions in sorted-synset order.
KNOWN = [
    (0, "n01440764", "tench"),
    (1, "n01443537", "goldfish"),
    (281, "n02123045", "tabby"),
    (282, "n02123159", "tiger cat"),
    (504, "n03063599", "coffee mug"),
    (652, "n03763968", "military uniform"),
    (701, "n03888257", "parachute"),
    (967, "n07920052", "espresso"),
    (999, "n15075141", "toilet tissue"),
]


def test_synsets_are_1000_unique_sorted_wordnet_ids():
    synsets = imagenet_classes.synsets()
    assert len(synsets) == 1000
    assert len(set(synsets)) == 1000
    assert list(synsets) == sorted(synsets)
    assert all(s[0] == "n" and len(s) == 9 and s[1:].isdigit() for s in synsets)


def test_every_class_has_a_nonempty_name():
    names = imagenet_classes.names()
    assert len(names) == 1000
    assert all(name and name == name.strip() and "," not in name for name in names)


@pytest.mark.parametrize(("index", "synset", "name"), KNOWN)
def test_known_classes(index, synset, name):
    assert imagenet_classes.index_of(synset) == index
    assert imagenet_classes.synset_of(index) == synset
    assert imagenet_classes.name_of(index) == name


def test_the_two_cranes_are_told_apart():
    # WordNet has a bird (n02012849) and a machine (n03126707) both called "crane".
    bird = imagenet_classes.name_of(imagenet_classes.index_of("n02012849"))
    machine = imagenet_classes.name_of(imagenet_classes.index_of("n03126707"))
    assert bird != machine
    assert bird.startswith("crane") and machine.startswith("crane")


def test_unknown_synset_is_named_in_the_error():
    with pytest.raises(ValueError, match="n99999999"):
        imagenet_classes.index_of("n99999999")


@pytest.mark.parametrize("index", [-1, 1000])
def test_index_out_of_range(index):
    with pytest.raises(ValueError, match=str(index)):
        imagenet_classes.synset_of(index)
    with pytest.raises(ValueError, match=str(index)):
        imagenet_classes.name_of(index)
