"""The code fingerprint on a package written here: what it covers and what leaves it alone."""

from __future__ import annotations

import importlib
import sys

import pytest

from pipeline import code_fingerprint

PACKAGE = "fingerprint_probe"


@pytest.fixture()
def package(tmp_path, monkeypatch):
    """fingerprint_probe/: a imports b inside a function and c by ``from ... import``; c has a
    data file beside it; d is imported by nobody."""
    root = tmp_path / "site"
    files = {
        "__init__.py": "",
        "a.py": f"import os\nfrom {PACKAGE} import c as renamed\n\n"
        f"def f():\n    import {PACKAGE}.b\n",
        "b.py": "VALUE = 1\n",
        "c.py": "TABLE = 'c.tsv'\n",
        "c.tsv": "n01440764\ttench\n",
        "d.py": "UNUSED = 1\n",
    }
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield root / PACKAGE
    sys.modules.pop(PACKAGE, None)


def _fingerprint() -> str:
    return code_fingerprint.fingerprint([f"{PACKAGE}.a"], packages=(PACKAGE,))


def test_the_closure_follows_every_import_of_the_package(package):
    assert code_fingerprint.closure([f"{PACKAGE}.a"], packages=(PACKAGE,)) == {
        PACKAGE,
        f"{PACKAGE}.a",
        f"{PACKAGE}.b",
        f"{PACKAGE}.c",
    }


@pytest.mark.parametrize("edited", ["a.py", "b.py", "c.py", "c.tsv"])
def test_an_edit_of_covered_code_or_its_data_changes_the_fingerprint(package, edited):
    before = _fingerprint()
    (package / edited).write_text((package / edited).read_text() + "# edited\n")
    assert _fingerprint() != before


def test_code_nobody_imports_and_the_place_of_the_package_leave_it_alone(package, tmp_path):
    before = _fingerprint()
    (package / "d.py").write_text("UNUSED = 2\n")
    assert _fingerprint() == before
    moved = tmp_path / "elsewhere"
    (package.parent).rename(moved)
    sys.path[sys.path.index(str(package.parent))] = str(moved)
    importlib.invalidate_caches()
    sys.modules.pop(PACKAGE, None)
    assert _fingerprint() == before


def test_the_steps_code_is_models_and_data_only():
    trainer = code_fingerprint.closure(["models.trainer", "models.alexnet"])
    assert {"models.trainer", "models.alexnet", "models.lrn", "data.records"} <= trainer
    assert not {m for m in trainer if m.split(".")[0] not in code_fingerprint.STEP_PACKAGES}
    assert "models.cifar10" not in trainer and "data.convert" not in trainer
