"""The command line, parsed and dispatched in-process: flags become typed settings, bad flags
and bad paths are one line and exit status 2, and ``--help`` imports nothing heavy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from pipeline import cli
from pipeline.commands import flags


def _refused(capsys, argv: list[str], *fragments: str) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"alexnet-tfx {argv[0]}: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err
    return err


def test_every_subcommand_declares_its_flags_in_its_own_module():
    parser = cli.build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    assert set(subcommands) == {
        "run",
        "compile-kubeflow",
        "submit",
        "kubeflow-local",
        "convert-imagenet",
        "report",
        "predict",
        "tensorboard",
        "data-service",
        "bench",
    }
    for name, subparser in subcommands.items():
        handler = subparser.get_default("handler")
        if name not in ("bench", "data-service"):  # their handlers are their subcommands'
            assert handler.__module__ == f"pipeline.commands.{name.replace('-', '_')}"


def test_settings_flags_become_typed_settings_with_their_source():
    args = cli.build_parser().parse_args(
        ["run", "--batch-size", "32", "--store-full-region", "--min-top1", "0.2", "--xla"]
        + ["--nondeterministic"]
    )
    resolved = flags.resolve_settings(args)
    settings = resolved.settings
    assert settings.trainer.batch_size == 32 and settings.trainer.xla is True
    assert settings.transform.store_full_region is True
    assert settings.gate.min_top1 == 0.2
    assert resolved.sources["trainer.batch_size"] == "--batch-size"
    assert resolved.sources["trainer.learning_rate"] == "preset sample"  # not given: preset


def test_print_config_shows_the_papers_recipe_and_runs_nothing(tmp_path, capsys):
    root = tmp_path / "root"
    argv = ["run", "--preset", "paper", "--print-config", "--pipeline-root", str(root)]
    assert cli.main(argv + ["--batch-size", "64"]) == 0
    lines = {
        line.split()[0]: line.split(maxsplit=1)[1] for line in capsys.readouterr().out.splitlines()
    }
    assert lines["trainer.learning_rate"].split() == ["0.01", "(preset", "paper)"]
    assert lines["trainer.epochs"].split() == ["90", "(preset", "paper)"]
    assert lines["transform.store_full_region"].split() == ["True", "(preset", "paper)"]
    assert lines["trainer.batch_size"].split() == ["64", "(--batch-size)"]  # a flag wins
    assert not root.exists()


def test_help_answers_without_importing_tensorflow():
    script = (
        "import sys; from pipeline import cli; cli.build_parser().format_help(); "
        "heavy = {'tensorflow', 'tfx', 'apache_beam', 'matplotlib'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--train-steps", "-5", "argument --train-steps: must be >= 0, got -5"),
        ("--eval-steps", "0", "argument --eval-steps: must be a positive integer, got 0"),
        ("--batch-size", "many", "argument --batch-size: invalid positive_int value: 'many'"),
        ("--model", "vgg16", "argument --model: invalid choice: 'vgg16'"),
        ("--record-format", "csv", "argument --record-format: invalid choice: 'csv'"),
    ],
)
def test_bad_flag_values_are_refused(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--pipeline-root", str(tmp_path / "root"), flag, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


def test_a_data_root_that_is_no_directory_is_one_line(tmp_path, capsys):
    argv = ["run", "--data-root", str(tmp_path / "nowhere"), "--pipeline-root", str(tmp_path)]
    _refused(capsys, argv, f"--data-root '{tmp_path}/nowhere' is not a directory")


def test_a_pipeline_root_that_cannot_be_created_is_refused(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    root = tmp_path / "a_file" / "root"
    _refused(
        capsys,
        ["run", "--pipeline-root", str(root)],
        f"--pipeline-root {root}: cannot create it (Not a directory)",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_pipeline_root_is_refused(tmp_path, capsys):
    root = tmp_path / "root"
    os.makedirs(root)
    os.chmod(root, 0o555)
    try:
        _refused(capsys, ["run", "--pipeline-root", str(root)], f"{root}: not writable")
    finally:
        os.chmod(root, 0o755)


def test_a_model_option_the_model_does_not_take_is_refused(tmp_path, capsys):
    argv = ["run", "--pipeline-root", str(tmp_path), "--model", "cifar10"]
    _refused(capsys, [*argv, "--initialization", "paper"], "model cifar10 takes no initialization")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_data_service_servers_started_by_the_cli_serve_a_dataset():
    """A dispatcher and a worker as `alexnet-tfx data-service` starts them, on localhost,
    produce a dataset the test sends them: each element once."""
    import tensorflow as tf

    from models import data_service

    dispatcher, worker = _free_port(), _free_port()
    command = [sys.executable, "-m", "pipeline.cli", "data-service"]
    servers = [
        subprocess.Popen([*command, "dispatcher", "--port", str(dispatcher)]),
        subprocess.Popen(
            [*command, "worker", "--port", str(worker)]
            + ["--dispatcher", f"grpc://localhost:{dispatcher}"]
        ),
    ]
    try:
        dataset = data_service.distribute(
            tf.data.Dataset.range(50), f"grpc://localhost:{dispatcher}"
        )
        assert sorted(int(x) for x in dataset) == list(range(50))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
