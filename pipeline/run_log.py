"""What a command prints, and what a local run only logs.

Every command runs under ``quiet`` (``pipeline.cli``): the terminal gets the command's own
output and real warnings, never the messages known to be noise (the table below: each with its
logger, its text, the code that says it and why nobody can act on it); ``--verbose`` prints
them too. A local run (and ``kubeflow-local``) also keeps a log file (``logged_run``): the
terminal gets a progress line as each component starts and ends, Keras' line per epoch, real
warnings and the summary, and everything, including TensorFlow's, TFX's and Beam's messages,
goes to the log file in the pipeline root; ``--verbose`` prints everything the log file gets.

Python messages are routed by logger and text before they are formatted, so a multi-line
warning is one decision. TensorFlow's C++ runtime writes to file descriptor 2 directly, so
the process's stdout and stderr go through a pipe that copies every line to the log and
passes on the lines that are not noise; Beam's worker processes inherit it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import sys
import threading
import time


@dataclasses.dataclass(frozen=True)
class Noise:
    source: str  # the logger (and its children), or "native" for TensorFlow's C++ lines
    text: str  # a regular expression searched in the message or line
    origin: str  # the code that says it
    why: str


NOISE = (
    Noise(
        "absl",
        r"^(Artifact|Context)Query\.property_predicate is not supported\.$",
        "tfx/orchestration/portable/input_resolution/channel_resolver.py",
        "TFX 1.16 tests a protobuf sub-message for truth, which is always true, and warns for "
        "every input of every component",
    ),
    Noise(
        "absl",
        r"^Analyzer \(.*\) node's cache key varies on repeated tracing",
        "tensorflow_transform/impl_helper.py",
        "tf.Transform traces the preprocessing twice; the analyzers' order is deterministic",
    ),
    Noise(
        "absl",
        r"^Tables initialized inside a tf\.function",
        "tensorflow_transform/graph_tools.py",
        "the class vocabulary's table, which the serving graph needs",
    ),
    Noise(
        "tensorflow",
        r"tf_record_iterator \(from tensorflow\.python\.lib\.io\.tf_record\) is deprecated",
        "tensorflow_model_analysis/writers/metrics_plots_and_validations_writer.py",
        "TFMA 0.47 reads its own results with a deprecated API",
    ),
    Noise(
        "tensorflow",
        r"^No training configuration found in save file",
        "tf_keras/src/saving/legacy/saved_model/load.py",
        "the exported model carries no optimizer, on purpose (half the size)",
    ),
    Noise(
        "apache_beam.io.tfrecordio",
        r"^Couldn't find python-snappy",
        "apache_beam/io/tfrecordio.py",
        "Beam's optional CRC speed-up, not among TFX's dependencies",
    ),
    Noise(
        "urllib3.connectionpool",
        r"^Retrying \(Retry\(",
        "urllib3/connectionpool.py",
        "kfp's client retries an unreachable host before submit's one line that says so",
    ),
    Noise(
        "native",
        r"cuda_(dnn|fft|blas)\.cc:\d+\] Unable to register cu\w+ factory",
        "TensorFlow's XLA stream executor",
        "TensorFlow 2.16 registers its CUDA plugins twice on import",
    ),
    Noise(
        "native",
        r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
        "TensorFlow's CUDA stub",
        "a machine without a GPU",
    ),
    Noise(
        "native",
        r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized|"
        r"^To enable the following instructions: .* compiler flags\.$",
        "TensorFlow's CPU feature check",
        "TensorFlow's generic build, reported on every start",
    ),
    Noise(
        "native",
        r"port\.cc:\d+\] oneDNN custom operations are on",
        "TensorFlow's start-up",
        "TensorFlow's default on x86",
    ),
    Noise(
        "native",
        r"TF-TRT Warning: Could not find TensorRT",
        "TensorFlow's TensorRT bridge",
        "TensorRT is not used",
    ),
    Noise(
        "native",
        r"jpeg_mem\.cc:\d+\] ",
        "libjpeg, through TensorFlow's JPEG decoder",
        "its message on a cut or corrupt JPEG names no file; the decode error that follows names "
        "it (predict's error line, Quarantine's report)",
    ),
    Noise(
        "native",
        r"local_rendezvous\.cc:\d+\] Local rendezvous is aborting with status: ",
        "TensorFlow's executor",
        "it logs every op that stops early, as the end of every finite tf.data dataset "
        "(OUT_OF_RANGE) or an image predict reports it cannot decode; the error itself reaches "
        "whoever can act on it",
    ),
)
_PYTHON_NOISE = [(n.source, re.compile(n.text)) for n in NOISE if n.source != "native"]
_NATIVE_NOISE = [re.compile(n.text) for n in NOISE if n.source == "native"]

LOG_DIR = "logs"


def is_noise(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return any(
        (record.name == source or record.name.startswith(source + ".")) and pattern.search(message)
        for source, pattern in _PYTHON_NOISE
    )


def is_native_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in _NATIVE_NOISE)


class _QuietFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_noise(record)


class _Progress(logging.Handler):
    """Turns the LocalDagRunner's component log lines into one progress line each."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Component %s is running.":
            (node_id,) = record.args
            self.started[node_id] = time.time()
            print(f"[{time.strftime('%H:%M:%S')}] {node_id} ...", flush=True)
        elif record.msg == "Component %s is finished.":
            (node_id,) = record.args
            seconds = time.time() - self.started.get(node_id, time.time())
            print(f"[{time.strftime('%H:%M:%S')}] {node_id} done ({seconds:.1f} s)", flush=True)


def log_path(pipeline_root: str) -> str:
    """A new log file's path for a run starting now."""
    return os.path.join(pipeline_root, LOG_DIR, f"run-{time.strftime('%Y%m%d-%H%M%S')}.log")


class _Unprinted(logging.Filter):
    """The records the quiet console drops: below WARNING, or noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING or is_noise(record)


@dataclasses.dataclass
class _Log:
    """The log file, written line by line from the pumps and the logging handler."""

    file: object
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def write(self, text: str) -> None:
        with self.lock:
            self.file.write(text)
            self.file.flush()

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def quiet(verbose: bool = False):
    """While active: warnings and what is not noise on the terminal (everything with
    ``verbose``). Enter it before TensorFlow is imported."""
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:
        console.addFilter(_QuietFilter())
    saved_handlers, saved_level = root.handlers[:], root.level
    with _tee_fds(None, verbose):
        root.handlers[:] = [console]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield
        finally:
            logging.captureWarnings(False)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)


@contextlib.contextmanager
def logged_run(path: str, verbose: bool = False):
    """While active: progress lines and what is not noise on the terminal, everything in
    ``path``. Enter it before TensorFlow is imported, so its loggers find it configured."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="replace") as file:
        log = _Log(file)
        root = logging.getLogger()
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))
        handlers = [console]
        if verbose:
            console.setLevel(logging.INFO)
        else:  # what the console drops goes to the log file directly; the rest via the pump
            console.setLevel(logging.WARNING)
            console.addFilter(_QuietFilter())
            to_file = logging.StreamHandler(log)
            to_file.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s:%(name)s: %(message)s")
            )
            to_file.addFilter(_Unprinted())
            handlers.append(to_file)
        saved_handlers, saved_level = root.handlers[:], root.level
        progress = _Progress()
        absl_logger = logging.getLogger("absl")
        with _tee_fds(log, verbose):
            root.handlers[:] = handlers
            root.setLevel(logging.INFO)
            logging.captureWarnings(True)
            absl_logger.addHandler(progress)
            try:
                with _absl_info():
                    yield
            finally:
                absl_logger.removeHandler(progress)
                logging.captureWarnings(False)
                root.handlers[:] = saved_handlers
                root.setLevel(saved_level)


@contextlib.contextmanager
def _absl_info():
    """absl at INFO, so the LocalDagRunner's component lines reach the progress handler.

    Set through absl's verbosity flag, not the logger's level: TensorFlow saves and restores
    that flag around every SavedModel export (Transform's first), which would reset a level
    set on the logger alone and silence the progress lines from then on.
    """
    from absl import logging as absl_logging

    previous = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        yield
    finally:
        absl_logging.set_verbosity(previous)


@contextlib.contextmanager
def _tee_fds(log: _Log | None, verbose: bool):
    """File descriptors 1 and 2 through pipes: each line to ``log`` (if any), and on to where
    it was going unless it is native noise (or ``verbose``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pumps = []
    for fd in (1, 2):
        read_end, write_end = os.pipe()
        original = os.dup(fd)
        os.dup2(write_end, fd)
        os.close(write_end)
        pump = threading.Thread(target=_pump, args=(read_end, original, log, verbose), daemon=True)
        pump.start()
        pumps.append((fd, original, pump))
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original, _ in pumps:
            os.dup2(original, fd)  # the pipe's last writer closes: its pump sees the end
        for _, original, pump in pumps:
            pump.join(timeout=10)
            os.close(original)


def _pump(read_end: int, original: int, log: _Log | None, verbose: bool) -> None:
    with os.fdopen(read_end, "rb") as lines:
        for raw in lines:
            line = raw.decode("utf-8", errors="replace")
            if log is not None:
                log.write(line)
            if verbose or not is_native_noise(line):
                os.write(original, raw)
