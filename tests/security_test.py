"""Security, without running the pipeline: no code unpickles or executes what it reads, and the
compiled Kubeflow spec carries no credential from the environment."""

from __future__ import annotations

import ast
import glob
import json
import os

from tests.conftest import REPO, run_cli

# In the environment of the compile, never read by it: if one shows up in the spec or the
# output, something dumped the environment.
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "sentinel-aws-secret-5d41402abc4b2a76",
    "ALEXNET_TFX_TEST_PASSWORD": "sentinel-password-7d793037a0760186",
}


def test_the_compiled_kubeflow_spec_holds_no_credentials(tmp_path):
    key = tmp_path / "service-account.json"
    key.write_text(json.dumps({"private_key": "sentinel-private-key-2c26b46b68ffc68f"}))
    output = tmp_path / "pipeline.json"
    result = run_cli(
        "compile-kubeflow",
        "--image",
        "registry.example/alexnet-tfx:test",
        "--pipeline-root",
        "gs://bucket/root",
        "--data-root",
        "gs://bucket/data",
        "--output",
        str(output),
        env={**SECRETS, "GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    spec = output.read_text()
    for text in [*SECRETS.values(), "sentinel-private-key", str(key)]:
        assert text not in spec and text not in result.stdout + result.stderr


_UNSAFE_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pickle", "Unpickler"),
    ("dill", "load"),
    ("dill", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("marshal", "load"),
    ("marshal", "loads"),
    ("shelve", "open"),
    ("yaml", "unsafe_load"),
    ("joblib", "load"),
    ("os", "system"),
    ("os", "popen"),
}


def _unsafe_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in ("eval", "exec", "__import__"):
            found.append(function.id)
        if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
            if (function.value.id, function.attr) in _UNSAFE_CALLS:
                found.append(f"{function.value.id}.{function.attr}")
            if (function.value.id, function.attr) == ("yaml", "load"):
                found.append("yaml.load")
        for keyword in node.keywords:
            risky = keyword.arg in ("allow_pickle", "shell")
            if risky and isinstance(keyword.value, ast.Constant) and keyword.value.value:
                found.append(f"{keyword.arg}=True")
    return found


def test_no_code_unpickles_or_executes_what_it_reads():
    sources = [
        path
        for path in glob.glob(os.path.join(REPO, "**", "*.py"), recursive=True)
        if not os.path.relpath(path, REPO).startswith((".venv", "build", "dist"))
    ]
    assert any(p.endswith(os.path.join("pipeline", "local_runner.py")) for p in sources)
    offences = {}
    for path in sources:
        with open(path) as f:
            calls = _unsafe_calls(ast.parse(f.read(), path))
        if calls:
            offences[os.path.relpath(path, REPO)] = calls
    assert offences == {}
    assert _unsafe_calls(ast.parse("pickle.loads(x); np.load(f, allow_pickle=True)")) == [
        "pickle.loads",
        "allow_pickle=True",
    ]
