"""What a run prints and what it only logs, in a real process: C++-style lines written to file
descriptor 2, Python records from the sources the noise table names, and real warnings."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from pipeline import run_log

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys
    from pipeline import run_log

    with run_log.logged_run(sys.argv[1], verbose=sys.argv[2] == "verbose"):
        print("[10:00:00] Transform ...", flush=True)
        os.write(2, b"2026-01-01 10:00:00.1: I external/local_tsl/tsl/cuda/cudart_stub.cc:32] "
                    b"Could not find cuda drivers on your machine, GPU will not be used.\\n")
        os.write(2, b"2026-01-01 10:00:00.2: E tensorflow/core/kernels/op.cc:1] a real error\\n")
        logging.getLogger("tensorflow").warning(
            "From x.py:1: tf_record_iterator (from tensorflow.python.lib.io.tf_record) is "
            "deprecated and will be removed in a future version.\\n"
            "Instructions for updating:\\nUse eager execution and: \\n`tf.data.TFRecordDataset`")
        logging.getLogger("tensorflow").warning("the disk is nearly full")
        logging.getLogger("absl").info("Component %s is running.", "Trainer")
    print("after the run", flush=True)
    """
)


def _run(tmp_path, mode: str):
    log = tmp_path / "logs" / "run.log"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(log), mode], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr, log.read_text()


def test_noise_stays_in_the_log_and_everything_else_reaches_the_terminal(tmp_path):
    shown, logged = _run(tmp_path, "quiet")
    for text in ("[10:00:00] Transform ...", "a real error", "the disk is nearly full"):
        assert text in shown and text in logged, text
    assert "] Trainer ..." in shown  # the runner's component line, as a progress line
    for noise in ("Could not find cuda drivers", "tf_record_iterator", "Instructions for"):
        assert noise not in shown, noise
        assert noise in logged, noise
    assert "after the run" in shown and "after the run" not in logged  # restored afterwards


def test_verbose_prints_everything(tmp_path):
    shown, _ = _run(tmp_path, "verbose")
    for text in ("Could not find cuda drivers", "tf_record_iterator", "a real error"):
        assert text in shown, text


def _record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, "(file)", 1, message, None, None)


@pytest.mark.parametrize(
    "noise", [n for n in run_log.NOISE if n.source != "native"], ids=lambda n: n.origin
)
def test_a_message_is_noise_only_from_its_own_logger(noise):
    text = {
        "tfx/orchestration/portable/input_resolution/channel_resolver.py": (
            "ArtifactQuery.property_predicate is not supported."
        ),
        "tensorflow_transform/impl_helper.py": (
            "Analyzer (mean_1/x:0) node's cache key varies on repeated tracing."
        ),
        "tensorflow_transform/graph_tools.py": "Tables initialized inside a tf.function",
        "tensorflow_model_analysis/writers/metrics_plots_and_validations_writer.py": (
            "From a.py:1: tf_record_iterator (from tensorflow.python.lib.io.tf_record) is "
            "deprecated and will be removed"
        ),
        "tf_keras/src/saving/legacy/saved_model/load.py": (
            "No training configuration found in save file, so the model was *not* compiled."
        ),
        "apache_beam/io/tfrecordio.py": "Couldn't find python-snappy so the implementation",
        "urllib3/connectionpool.py": (
            "Retrying (Retry(total=2, connect=None, read=None, redirect=None, status=None)) after "
            "connection broken by 'NewConnectionError(...)': /apis/v2beta1/healthz"
        ),
    }[noise.origin]
    assert run_log.is_noise(_record(noise.source, text))
    assert not run_log.is_noise(_record("pipeline", text))
    assert not run_log.is_noise(_record(noise.source, "something else went wrong"))
