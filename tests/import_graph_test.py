"""The import graph goes one way, data < models < components < pipeline < bench, without cycles.

Read from the source with ``ast``: every import counts, at module level or inside a function,
tests included (a test of a lower layer may not import a higher one either).
"""

from __future__ import annotations

import ast
import pathlib

from pipeline import cli

REPO = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ("data", "models", "components", "pipeline", "bench", "tests")
# The console script's module sits above every layer: it names each subcommand's module, the
# benchmarks' too, and imports them by name to declare their flags.
ENTRY_POINT = "pipeline.cli"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {
        _module_name(path): path
        for layer in LAYERS
        for path in (REPO / layer).rglob("*.py")
        if "__pycache__" not in path.parts
    }


def _imports(path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` is ``a.b`` when b is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in modules
                else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in LAYERS)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_no_module_imports_a_higher_layer():
    upward = {
        (module, imported)
        for module, imports in _graph().items()
        for imported in imports
        if _layer(imported) > _layer(module)
    }
    assert upward == set()


def test_only_the_entry_point_names_a_higher_layer_and_only_by_module_name():
    higher = [name for name in cli.COMMANDS if _layer(name) > _layer(ENTRY_POINT)]
    assert higher == ["bench.cli"]
    assert all(name in _modules() for name in cli.COMMANDS)


def test_there_is_no_import_cycle():
    graph = {m: i for m, i in _graph().items() if not m.endswith("_test") and "conftest" not in m}
    state: dict[str, str] = {}  # "visiting" or "done"
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "visiting"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "visiting":
                cycles.append(path[path.index(imported) :] + [imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checks_see_what_they_check(tmp_path):
    """Imports written at module level and inside a function are both found (it can fail)."""
    probe = tmp_path / "probe.py"
    probe.write_text("from pipeline import configs\n\ndef f():\n    import bench.cli\n")
    assert _imports(probe, _modules()) == {"pipeline.configs", "bench.cli"}
