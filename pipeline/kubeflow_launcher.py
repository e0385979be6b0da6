"""A compiled ``PipelineJob`` run on this machine, step by step, as a Kubeflow backend runs it.

Each container step runs its own command and arguments from the spec, with ``{{$}}`` replaced
by the ``ExecutorInput`` the backend's launcher would build (upstream artifacts, parameter
values with the runtime parameters and upstream output parameters, output URIs, the
output-metadata file), as a subprocess of this package's environment standing in for the
image; what the executor writes to its output file is recorded as its artifacts' metadata and
its output parameters. ``gs://BUCKET/path`` maps to ``DIR/BUCKET/path`` and the image's
``/alexnet-tfx`` to this package, so the spec runs unchanged.

Where the two backends differ (``pipeline.kubeflow_backends``: which executors they run, how
inputs arrive, what is copied to the pod, the cache key), the chosen backend's rules apply:
on Vertex AI, resolver steps are answered with the spec's own query over the artifacts that
earlier runs in ``DIR`` recorded; on open-source Kubeflow Pipelines, a resolver is refused as
its compiler refuses it, inputs arrive untyped and every input artifact is copied to a
directory standing in for the pod's disk before the step runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shlex
import sys
import threading
import time

import yaml

from data.errors import UserError
from pipeline import (
    configs,
    kubeflow_backends,
    kubeflow_entrypoint,
    kubeflow_platform,
    pipeline_root,
)
from pipeline.kubeflow_runner import DATA_ROOT_PARAMETER

CANNOT_EMULATE = (
    "kubeflow-local runs every step here, in this package's environment in place of the "
    "image, independent steps side by side (--parallel). It cannot emulate: the image "
    "build, GPU scheduling (the Trainer's accelerator request), node selection and resource "
    "limits, storage credentials, or a Beam runner other than DirectRunner (Dataflow, Flink, "
    "Spark)."
)
# Under --gcs-dir: the record of every run's executions and artifacts, and each step's files.
LAUNCHER_DIR = "kubeflow-local"
RECORD_FILE = "record.json"
OUTPUT_TAIL_LINES = 30
# Where the pod may write an output parameter instead (driver/driver.go); no step here does.
OUTPUT_PARAMETERS_DIR = "/tmp/kfp/outputs"
_ANY_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")
_ARTIFACT_METADATA = re.compile(
    r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}"
)
_CLAUSE = re.compile(r'([\w.]+)\s*=\s*("(?:[^"\\]|\\.)*"|[\w.-]+)')


@dataclasses.dataclass
class Step:
    """One task of the DAG with its component and executor specs."""

    name: str
    task: dict
    component: dict
    executor: dict

    @property
    def container(self) -> dict | None:
        return self.executor.get("container")


def run(
    job: dict,
    gcs_dir: str,
    parameters: dict[str, str],
    *,
    backend: str,
    enable_cache: bool = True,
    parallel: int = 2,
) -> int:
    """Runs every step under ``backend``'s rules, up to ``parallel`` at once as their
    upstream steps complete (a cluster runs independent steps side by side); 0 when all
    completed (blessed or not), 1 when a step failed."""
    rules = kubeflow_backends.BACKENDS[backend]
    rules.check(job)
    steps = dag_order(job)
    for step in steps:
        _check_runner(step)
    paths = PathMap(gcs_dir)
    data_root = parameters.get(DATA_ROOT_PARAMETER)
    if data_root and not os.path.isdir(paths(data_root)):
        raise UserError(
            f"data_root {data_root} is {paths(data_root)} here, which does not exist: put the "
            "train-*/validation-* shards there, or pass --param data_root=gs://..."
        )
    directory = os.path.join(gcs_dir, LAUNCHER_DIR)
    os.makedirs(directory, exist_ok=True)
    why = "its record of runs takes one run at a time"
    with pipeline_root.exclusive_run(directory, "--gcs-dir", why):
        record = Record(os.path.join(directory, RECORD_FILE))
        launcher = Launcher(job, paths, record, directory, parameters, enable_cache, rules)
        print(CANNOT_EMULATE, flush=True)
        title = kubeflow_platform.BACKEND_NAMES[backend]
        print(
            f"Running {launcher.run_id} as {title} would: {len(steps)} steps, "
            f"root {launcher.root}",
            flush=True,
        )
        failure = _run_steps(launcher, steps, parallel)
        if rules.copies_artifacts:
            print(launcher.copies_line(), flush=True)
        launcher.finish("failed" if failure else "succeeded")
        print(launcher.summary(), flush=True)
        print(f"Each step's ExecutorInput and output: {launcher.steps_dir}", flush=True)
    if failure:
        print(f"alexnet-tfx kubeflow-local: FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


def _run_steps(launcher: Launcher, steps: list[Step], parallel: int) -> StepFailed | None:
    """Starts each step once its upstream steps completed; after a failure, starts no more
    and lets the running ones finish. The first failure, or None."""
    from concurrent import futures

    upstream = {step.name: _upstream(step.task) for step in steps}
    waiting, running, done, failure = list(steps), {}, set(), None
    with futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while running or (waiting and failure is None):
            for step in [s for s in waiting if upstream[s.name] <= done]:
                if failure is not None or len(running) >= max(1, parallel):
                    break
                waiting.remove(step)
                print(f"[{len(done) + len(running) + 1}/{len(steps)}] {step.name} ...", flush=True)
                running[pool.submit(launcher.execute, step)] = step
            if not running:  # nothing can start: a cycle was refused before, so a failure
                break
            finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                try:
                    state, seconds = future.result()
                except StepFailed as error:
                    failure = failure or error
                    continue
                done.add(step.name)
                print(
                    f"[{len(done)}/{len(steps)}] {step.name} {state} ({seconds:.1f} s)", flush=True
                )
    return failure


def dag_order(job: dict) -> list[Step]:
    """The root DAG's tasks, each after the tasks it depends on (ties by name, so the order
    is the same on every run)."""
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    steps, done = [], set()
    while len(done) < len(tasks):
        ready = sorted(
            name
            for name, task in tasks.items()
            if name not in done and set(_upstream(task)) <= done
        )
        if not ready:
            raise UserError(f"the spec's DAG has a cycle among {sorted(set(tasks) - done)}")
        for name in ready:
            component = spec["components"][tasks[name]["componentRef"]["name"]]
            executor = executors[component["executorLabel"]]
            steps.append(Step(name, tasks[name], component, executor))
        done.update(ready)
    return steps


def _upstream(task: dict) -> set[str]:
    inputs = task.get("inputs", {})
    producers = {
        a["taskOutputArtifact"]["producerTask"] for a in inputs.get("artifacts", {}).values()
    }
    producers |= {
        p["taskOutputParameter"]["producerTask"]
        for p in inputs.get("parameters", {}).values()
        if "taskOutputParameter" in p
    }
    return producers | set(task.get("dependentTasks", ()))


def _check_runner(step: Step) -> None:
    for arg in (step.container or {}).get("args", ()):
        if arg.startswith("--runner=") and arg != "--runner=DirectRunner":
            raise UserError(
                f"step {step.name} runs Beam with {arg}, which cannot run here: dry-run a spec "
                "compiled with --beam-runner DirectRunner (the other flags the same)"
            )


class PathMap:
    """``gs://BUCKET/path`` -> ``DIR/BUCKET/path`` anywhere in a string (parameters hold JSON
    with URIs), and a path in the image -> the file of this package."""

    def __init__(self, gcs_dir: str):
        self.gcs_dir = gcs_dir

    def __call__(self, value):
        if isinstance(value, str):
            return kubeflow_platform.local_path(value.replace("gs://", self.gcs_dir + "/"))
        return value

    def remote(self, path: str) -> str:
        """The gs:// URI of a path under the directory (the inverse map); others unchanged."""
        relative = os.path.relpath(path, self.gcs_dir)
        return path if relative.startswith("..") else "gs://" + relative


class StepFailed(Exception):
    """A step's process failed: its name, command line and the tail of its output."""


class Record:
    """Every run's executions and artifacts in one JSON file, rewritten whole after each step
    (so a killed launcher keeps what completed for the next run's cache and resolvers)."""

    def __init__(self, path: str):
        self.path = path
        self.runs: list[dict] = []
        self.artifacts = 0  # artifacts created so far: the next one's ML Metadata id
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            self.runs, self.artifacts = saved["runs"], saved.get("artifacts", 0)

    def save(self) -> None:
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({"runs": self.runs, "artifacts": self.artifacts}, f, indent=1, sort_keys=True)
        os.replace(temporary, self.path)

    def executions(self):
        """Every recorded execution, oldest first."""
        return [execution for run in self.runs for execution in run["tasks"].values()]

    def created(self) -> list[dict]:
        """Every artifact an execution created (a cached one re-links them), oldest first."""
        return [
            artifact
            for execution in self.executions()
            if execution["state"] == "complete"
            for artifacts in execution["outputs"].values()
            for artifact in artifacts
        ]

    def cached(self, key: str) -> dict | None:
        """The latest execution with this cache key that produced its outputs."""
        hits = [
            e
            for e in self.executions()
            if e.get("cache_key") == key and e["state"] in ("complete", "cached")
        ]
        return hits[-1] if hits else None


class Launcher:
    """One run of the job: the artifacts of its steps so far, and how each step is run."""

    def __init__(self, job, paths, record, directory, parameters, enable_cache, rules):
        from pipeline import kubeflow_submit

        self.paths, self.record, self.enable_cache = paths, record, enable_cache
        self.rules = rules
        self.lock = threading.Lock()
        self.order = [step.name for step in dag_order(job)]  # the record's and summary's order
        self.parameters = {name: paths(value) for name, value in parameters.items()}
        self.pipeline_name = job["pipelineSpec"]["pipelineInfo"]["name"]
        self.root = paths(job["runtimeConfig"]["gcsOutputDirectory"])
        ids = {run["run_id"] for run in record.runs}
        self.run_id = base = kubeflow_submit.run_name(job, None)
        while self.run_id in ids:  # two runs within a second
            self.run_id = f"{base}-{len(ids)}"
            ids.add(self.run_id)
        self.steps_dir = os.path.join(directory, self.run_id)
        os.makedirs(self.steps_dir)
        self.run = {
            "run_id": self.run_id,
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "state": "running",
            "tasks": {},
        }
        record.runs.append(self.run)

    def execute(self, step: Step) -> tuple[str, float]:
        """Runs, resolves or reuses one step and records it; StepFailed if its process fails.
        Steps run in threads: the record changes under ``lock`` only, and a step's execution
        is its own until it is recorded whole."""
        start = time.monotonic()
        with self.lock:
            inputs = self._input_artifacts(step)
            self.run["tasks"][step.name] = {"state": "running", "seconds": 0.0}
            self.record.save()
        execution = {"state": "running", "inputs": inputs, "outputs": {}, "parameters": {}}
        try:
            if "resolver" in step.executor:  # Vertex AI only: Kfp.check refused it
                with self.lock:
                    execution["outputs"] = self._resolve(step, inputs)
                execution["state"] = "complete"
            else:
                self._run_container(step, inputs, execution)
        except StepFailed:
            execution["state"] = "failed"
            raise
        finally:
            execution["seconds"] = round(time.monotonic() - start, 1)
            with self.lock:
                self.run["tasks"][step.name] = execution
                self.record.save()
        return execution["state"], execution["seconds"]

    def finish(self, state: str) -> None:
        with self.lock:
            self.run["state"] = state
            self.run["tasks"] = {
                n: self.run["tasks"][n] for n in self.order if n in self.run["tasks"]
            }
            self.record.save()

    def _input_artifacts(self, step: Step) -> dict[str, list[dict]]:
        """Upstream outputs, as the backend hands them over (``input_artifact``); a resolver
        that found nothing gives an empty list (the Evaluator then has no baseline)."""
        definitions = step.component.get("inputDefinitions", {}).get("artifacts", {})
        result = {}
        for key, source in step.task.get("inputs", {}).get("artifacts", {}).items():
            output = source["taskOutputArtifact"]
            producer = self.run["tasks"][output["producerTask"]]
            result[key] = [
                self.rules.input_artifact(artifact, definitions[key]["artifactType"])
                for artifact in producer["outputs"].get(output["outputArtifactKey"], [])
            ]
        return result

    def _parameter_values(self, step: Step) -> dict:
        values = {}
        for key, source in step.task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in source:
                values[key] = self.paths(source["runtimeValue"]["constant"])
            elif "componentInputParameter" in source:
                values[key] = self.parameters[source["componentInputParameter"]]
            elif "taskOutputParameter" in source:
                output = source["taskOutputParameter"]
                producer = self.run["tasks"][output["producerTask"]]
                values[key] = producer["parameters"][output["outputParameterKey"]]
            else:
                raise UserError(
                    f"step {step.name}: parameter {key} comes from {source}, "
                    "which kubeflow-local does not support"
                )
        return values

    def _resolve(self, step: Step, inputs: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """Each output: the latest recorded artifact that the spec's filter selects."""
        outputs = {}
        for key, query in step.executor["resolver"]["outputArtifactQueries"].items():
            text, missing = query["filter"], False

            def metadata(match):
                nonlocal missing
                artifacts = inputs.get(match.group(1)) or []
                if not artifacts or match.group(2) not in artifacts[0]["metadata"]:
                    missing = True
                    return ""
                return str(artifacts[0]["metadata"][match.group(2)])

            text = _ARTIFACT_METADATA.sub(metadata, text)
            _no_placeholder(text, step)
            found = [] if missing else [a for a in self.record.created() if _selects(text, a, step)]
            outputs[key] = found[-1:]
        return outputs

    def _run_container(self, step: Step, inputs: dict[str, list[dict]], execution: dict) -> None:
        rules = self.rules
        task_root = os.path.join(self.root, self.run_id, step.name)
        pod_dir = os.path.join(self.steps_dir, "pods", step.name)  # the pod's own disk
        outputs = {}
        for key, definition in (
            step.component.get("outputDefinitions", {}).get("artifacts", {}).items()
        ):
            with self.lock:
                self.record.artifacts += 1
                number = self.record.artifacts
            name = rules.artifact_name(self.run_id, step.name, key, number)
            uri = rules.output_uri(self.root, self.pipeline_name, self.run_id, step.name, key)
            outputs[key] = [
                {"name": name, "type": definition["artifactType"], "uri": uri, "metadata": {}}
            ]
        parameters = self._parameter_values(step)
        output_file = rules.output_file(task_root, pod_dir)
        container = step.container
        check = container.get("lifecycle", {}).get("preCacheCheck")
        if check and rules.runs_pre_cache_check:  # ExampleGen's driver on Vertex AI
            self._process(step, "driver", check, inputs, parameters, outputs, output_file)
            parameters.update(self._read_output(output_file, outputs))
        # The artifacts passed by reference (pipeline.kubeflow_oss) are inputs too, for the
        # record and the summary; not for the backend, which sees parameters.
        suffix = kubeflow_entrypoint.REFERENCE_SUFFIX
        execution["inputs"] = {
            **inputs,
            **{
                name[: -len(suffix)]: [json.loads(value)]
                for name, value in parameters.items()
                if name.endswith(suffix)
            },
        }
        key = rules.cache_key(
            container, inputs, parameters, step.component.get("outputDefinitions", {})
        )
        execution["cache_key"] = key
        hit = self.enable_cache and step.task.get("cachingOptions", {}).get("enableCache")
        with self.lock:
            cached = self.record.cached(key) if hit else None
        if cached:
            execution["outputs"], execution["state"] = cached["outputs"], "cached"
            execution["parameters"] = cached.get("parameters", {})
            return
        copies = kubeflow_backends.Copies()
        if rules.copies_artifacts:
            rules.download(inputs, self.paths.remote, pod_dir, copies)
            rules.prepare_outputs(outputs, self.paths.remote, pod_dir)
        self._process(step, "executor", container, inputs, parameters, outputs, output_file)
        written = self._read_output(output_file, outputs)
        if rules.copies_artifacts:
            rules.upload(outputs, self.paths.remote, pod_dir, copies)
            execution["copies"] = dataclasses.asdict(copies)
        execution["parameters"] = self._output_parameters(step, written)
        execution["outputs"], execution["state"] = outputs, "complete"

    def _output_parameters(self, step: Step, written: dict) -> dict:
        """The step's declared output parameters from its output file (launcher_v2.go
        collectOutputParameters: one it did not write fails the step)."""
        declared = step.component.get("outputDefinitions", {}).get("parameters", {})
        missing = sorted(set(declared) - set(written))
        if missing:
            raise StepFailed(
                f"step {step.name} wrote no value for its output parameter(s) {missing}"
            )
        return {key: written[key] for key in declared}

    def copies_line(self) -> str:
        """What the launcher copied to the pods' disks in this run, step by step."""
        copied = {
            name: e["copies"]["downloaded_bytes"]
            for name, e in self.run["tasks"].items()
            if e.get("copies")
        }
        total = sum(copied.values())
        by_step = ", ".join(f"{n} {b:,} B" for n, b in copied.items() if b) or "none"
        return f"Input artifacts copied to the steps' pods: {total:,} bytes ({by_step})"

    def _process(self, step, role, container, inputs, parameters, outputs, output_file) -> None:
        import subprocess

        executor_input = {
            "inputs": {
                "artifacts": {k: {"artifacts": v} for k, v in inputs.items()},
                "parameterValues": parameters,
            },
            "outputs": {
                "artifacts": {
                    k: {"artifacts": [self.rules.output_artifact(a) for a in v]}
                    for k, v in outputs.items()
                },
                # Where a command may write each output parameter instead (driver.go).
                "parameters": {
                    key: {"outputFile": f"{OUTPUT_PARAMETERS_DIR}/{key}"}
                    for key in step.component.get("outputDefinitions", {}).get("parameters", {})
                },
                "outputFile": output_file,
            },
        }
        input_file = os.path.join(self.steps_dir, f"{step.name}.{role}_input.json")
        with open(input_file, "w", encoding="utf-8") as f:
            json.dump(executor_input, f, indent=1)
        argv, shown = [], []
        for arg in [*container.get("command", ()), *container.get("args", ())]:
            if arg == "{{$}}":
                argv.append(json.dumps(executor_input))
                shown.append(f'"$(cat {shlex.quote(input_file)})"')
                continue
            _no_placeholder(arg, step)
            arg = sys.executable if not argv and arg == "python" else self.paths(arg)
            argv.append(arg)
            shown.append(shlex.quote(arg))
        log_file = os.path.join(self.steps_dir, f"{step.name}.{role}.log")
        environment = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}  # as the image's ENV
        with open(log_file, "wb") as log:
            returncode = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=kubeflow_platform.PACKAGE_ROOT,  # the image's WORKDIR
                env=environment,
            ).returncode
        if returncode:
            with open(log_file, encoding="utf-8", errors="replace") as f:
                tail = f.read().splitlines()[-OUTPUT_TAIL_LINES:]
            raise StepFailed(
                f"step {step.name} ({role}) exited with status {returncode}.\n"
                f"Command: {' '.join(shown)}\n"
                f"Last {len(tail)} lines of its output ({log_file}):\n" + "\n".join(tail)
            )

    @staticmethod
    def _read_output(output_file: str, outputs: dict[str, list[dict]]) -> dict:
        """The executor's output metadata into ``outputs``; its parameter values returned."""
        if not os.path.exists(output_file):
            return {}
        with open(output_file, encoding="utf-8") as f:
            written = json.load(f)
        for key, artifacts in written.get("artifacts", {}).items():
            written_artifacts = artifacts.get("artifacts", ())
            for mine, theirs in zip(outputs.get(key, ()), written_artifacts, strict=False):
                mine["metadata"] = theirs.get("metadata", {})
                mine["uri"] = theirs.get("uri") or mine["uri"]
        return written.get("parameterValues", {})

    def summary(self) -> str:
        from pipeline import summary

        return summary.render(self.report())

    def report(self):
        """This run as a ``RunReport``, the form ``alexnet-tfx run``'s summary renders."""
        from pipeline import metadata
        from pipeline.evaluation import load_evaluation
        from pipeline.run_report import RunReport, load_anomalies

        components = {
            name: metadata.ComponentRun(
                node_id=name,
                state=execution["state"],
                seconds=execution["seconds"],
                execution_id=number,
                inputs={k: [_mlmd_artifact(a) for a in v] for k, v in execution["inputs"].items()},
                outputs={
                    k: [_mlmd_artifact(a) for a in v] for k, v in execution["outputs"].items()
                },
            )
            for number, (name, execution) in enumerate(self.run["tasks"].items(), 1)
        }
        evaluator = components.get(configs.EVALUATOR)
        evaluated = evaluator is not None and evaluator.succeeded
        return RunReport(
            pipeline_root=self.root,
            run_id=self.run_id,
            run_ids=[run["run_id"] for run in self.record.runs],
            components=components,
            evaluation=load_evaluation(evaluator) if evaluated else None,
            classes=[],
            training={},
            pushed_to=metadata.pushed_destination(components.get(configs.PUSHER)),
            history=[],
            anomalies=load_anomalies(components.get(configs.EXAMPLE_VALIDATOR)),
        )


def _no_placeholder(text: str, step: Step) -> None:
    left = _ANY_PLACEHOLDER.search(text)
    if left:
        raise UserError(f"step {step.name}: kubeflow-local cannot fill the placeholder {left[0]}")


def _selects(query: str, artifact: dict, step: Step) -> bool:
    """Whether a KFP artifact filter (``field=value`` clauses joined by AND) selects it."""
    for clause in query.split(" AND "):
        match = _CLAUSE.fullmatch(clause.strip())
        if not match:
            raise UserError(f"step {step.name}: kubeflow-local cannot evaluate {clause!r}")
        field, value = match.groups()
        value = json.loads(value) if value.startswith('"') else value
        metadata = artifact["metadata"]
        if field == "schema_title":
            holds = _schema_title(artifact) == value
        elif field == "state":
            holds = value == "LIVE"  # the record holds no deleted artifacts
        elif field == "name":
            holds = artifact["name"] == value
        elif field.startswith("metadata.") and field.endswith(".number_value"):
            holds = metadata.get(field[len("metadata.") : -len(".number_value")]) == float(value)
        elif field.startswith("metadata.") and field.endswith(".string_value"):
            holds = metadata.get(field[len("metadata.") : -len(".string_value")]) == value
        else:
            raise UserError(f"step {step.name}: kubeflow-local cannot evaluate {clause!r}")
        if not holds:
            return False
    return True


def _schema_title(artifact: dict) -> str:
    kind = artifact["type"]
    return kind.get("schemaTitle") or yaml.safe_load(kind["instanceSchema"]).get("title", "")


def _mlmd_artifact(artifact: dict):
    """A recorded artifact as ML Metadata holds it, for the summary's readers: integral numbers
    as ints (KFP's metadata keeps every number as a double)."""
    from ml_metadata.proto import metadata_store_pb2

    result = metadata_store_pb2.Artifact(uri=artifact["uri"])
    for name, value in artifact["metadata"].items():
        field = result.custom_properties[name]
        if isinstance(value, int | float) and float(value).is_integer():
            field.int_value = int(value)
        elif isinstance(value, float):
            field.double_value = value
        else:
            field.string_value = value if isinstance(value, str) else json.dumps(value)
    return result
