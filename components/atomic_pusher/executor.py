"""The AtomicPusher's executor: copy under a temporary name, then rename to the version.

TFX's Pusher copies the model straight into ``<serving dir>/<version>/``, so a model server
polling the directory can load a half-copied model, and a push killed midway leaves one behind
for good. Here the copy goes to ``.incomplete-<version>-<host>-<pid>`` in the serving directory
(TF Serving loads only all-digit names, and the same filesystem makes the rename a metadata
operation), and only the complete copy is renamed to ``<version>``. ``rename(2)`` replaces no
non-empty directory, so an existing version is never overwritten. Leftovers of pushes killed
mid-copy are removed by the next push from the same host.
"""

from __future__ import annotations

import os
import socket
import time

from absl import logging
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

INCOMPLETE_PREFIX = ".incomplete-"
# TF Serving and TFX take a SavedModel to be complete once saved_model.pb exists; written last,
# it also guards readers on object stores, where a directory rename is a copy per object.
SAVED_MODEL_FILE = "saved_model.pb"
_RENAME_ATTEMPTS = 10  # concurrent pushers each take the next free version


class Executor(tfx_pusher_executor.Executor):
    """Pushes a blessed model to ``push_destination.filesystem.base_directory/<version>``.

    The version is the Unix time, or one more than the highest version already there when that
    is later (a clock set back must not hide the new model behind an older one: model servers
    serve the highest version).
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(pushed_model)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(
                "AtomicPusher pushes to a filesystem only, not to "
                f"{destination.WhichOneof('destination')!r}"
            )
        if destination.filesystem.versioning not in (
            pusher_pb2.Versioning.AUTO,
            pusher_pb2.Versioning.UNIX_TIMESTAMP,
        ):
            raise NotImplementedError(f"unsupported versioning {destination.filesystem.versioning}")
        model_path = self.GetModelPath(input_dict)
        serving_path = push(model_path, destination.filesystem.base_directory)
        io_utils.copy_dir(model_path, pushed_model.uri)  # the PushedModel artifact's own copy
        self._MarkPushed(
            pushed_model,
            pushed_destination=serving_path,
            pushed_version=os.path.basename(serving_path),
        )


def push(model_path: str, serving_dir: str) -> str:
    """Copies the SavedModel at ``model_path`` to a new version in ``serving_dir``; its path."""
    fileio.makedirs(serving_dir)
    remove_abandoned_copies(serving_dir)
    version = next_version(serving_dir)
    incomplete = os.path.join(
        serving_dir, f"{INCOMPLETE_PREFIX}{version}-{socket.gethostname()}-{os.getpid()}"
    )
    try:
        copy_saved_model(model_path, incomplete)
        for _ in range(_RENAME_ATTEMPTS):
            serving_path = os.path.join(serving_dir, str(version))
            try:
                fileio.rename(incomplete, serving_path, overwrite=False)
            # fileio raises tf.errors.AlreadyExistsError or OSError, by filesystem plugin.
            except Exception as error:  # the version appeared meanwhile: take the next one
                if not fileio.exists(serving_path):
                    raise
                logging.warning("Version %s exists (%s); trying the next one", version, error)
                version = next_version(serving_dir)
                continue
            logging.info("Model pushed to %s", serving_path)
            return serving_path
        raise RuntimeError(
            f"no free version in {serving_dir} after {_RENAME_ATTEMPTS} attempts; "
            f"the complete copy stays at {incomplete}"
        )
    except BaseException:
        if fileio.exists(incomplete):  # e.g. a full disk: leave no partial copy behind
            fileio.rmtree(incomplete)
        raise


def next_version(serving_dir: str) -> int:
    return max([int(time.time()), *(v + 1 for v in versions(serving_dir))])


def versions(serving_dir: str) -> list[int]:
    """The versions pushed to ``serving_dir``, lowest first: its all-digit names, as model
    servers see them (a push in progress has a hidden name until it is complete)."""
    names = (name.rstrip("/") for name in fileio.listdir(serving_dir))
    return sorted(int(name) for name in names if name.isdigit())


def copy_saved_model(source: str, destination: str) -> None:
    """Copies every file of ``source`` to ``destination``, ``saved_model.pb`` last."""
    last = []
    for directory, _, files in fileio.walk(source):
        relative = os.path.relpath(directory, source)
        fileio.makedirs(os.path.normpath(os.path.join(destination, relative)))
        for name in sorted(files):
            pair = (os.path.join(directory, name), os.path.join(destination, relative, name))
            if relative == "." and name == SAVED_MODEL_FILE:
                last.append(pair)
            else:
                fileio.copy(*pair, overwrite=False)
    for pair in last:
        fileio.copy(*pair, overwrite=False)


def remove_abandoned_copies(serving_dir: str) -> None:
    """Deletes incomplete copies whose pusher, on this host, is no longer alive."""
    host = socket.gethostname()
    for name in fileio.listdir(serving_dir):
        name = name.rstrip("/")
        if not name.startswith(INCOMPLETE_PREFIX):
            continue
        owner_host, _, pid = name[len(INCOMPLETE_PREFIX) :].partition("-")[2].rpartition("-")
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            logging.warning("Removing %s, left by a push that did not finish", name)
            fileio.rmtree(os.path.join(serving_dir, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
