"""A fingerprint of the code a step runs, so that TFX's cache sees a change of code.

TFX keys its cache on a component's inputs and exec properties. Transform and the Trainer name
their code by import path, which stays the same when the code changes (tensorflow/tfx#2247),
so an edited preprocessing or network would be answered from the cache with a model of the old
code. ``create_pipeline`` puts this fingerprint in both steps' ``custom_config``: a change of
code is then a change of exec properties, locally and in the compiled Kubeflow spec alike.

What is hashed: the source of every module the step's entry modules import, found statically
(imports inside functions too), within the packages step code may import (``models`` imports
only ``data`` and ``models``: ``tests/import_graph_test.py``), and the data files beside those
modules that share their name (``imagenet_classes.tsv``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os

STEP_PACKAGES = ("data", "models")


def module_file(module: str) -> str | None:
    """The source file of ``module`` (a package's ``__init__.py``), or None if it is not a
    module, found on disk without importing anything but its top-level package."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = os.path.join(spec.submodule_search_locations[0], *rest)
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def imported_modules(path: str, packages: tuple[str, ...]) -> set[str]:
    """The modules of ``packages`` that the file at ``path`` imports, wherever it imports them."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from models import lrn`` imports the module models.lrn; ``from models.lrn
            # import X`` imports models.lrn.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in packages and module_file(name))
    return found


def closure(modules: list[str], packages: tuple[str, ...] = STEP_PACKAGES) -> set[str]:
    """``modules`` and every module of ``packages`` they import, directly or not."""
    seen, pending = set(), list(modules)
    while pending:
        module = pending.pop()
        if module not in seen:
            seen.add(module)
            path = module_file(module)
            if path is None:
                raise ModuleNotFoundError(f"no module {module!r} to fingerprint")
            pending.extend(imported_modules(path, packages) - seen)
    return seen


def fingerprint(modules: list[str], packages: tuple[str, ...] = STEP_PACKAGES) -> str:
    """A short SHA-256 over the files of ``closure(modules)`` and their same-named data,
    each under its module's name, so the same code hashes the same wherever it is installed."""
    files = {}
    for module in closure(modules, packages):
        path = module_file(module)
        files[module] = path
        stem, directory = os.path.splitext(os.path.basename(path))[0], os.path.dirname(path)
        for name in os.listdir(directory):
            if os.path.splitext(name)[0] == stem and not name.endswith((".py", ".pyc")):
                files[f"{module}:{name}"] = os.path.join(directory, name)
    digest = hashlib.sha256()
    for label in sorted(files):
        with open(files[label], "rb") as f:
            content = f.read()
        digest.update(f"{label}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:16]
