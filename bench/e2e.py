"""``bench e2e``: what ``make run`` costs: wall time, per-component durations, peak RSS.

Runs ``alexnet-tfx run`` with its defaults (the bundled sample; other flags after ``--``) in a
fresh pipeline root, in a fresh process, as ``make run`` does once the venv exists.
Per-component durations come from ML Metadata; their sum against the wall time shows what the
orchestration and start-up cost.
"""

from __future__ import annotations

import os
import shutil

from bench import output, process

TARGET_SECONDS = 180


def main(args) -> int:
    from models import metric_names
    from pipeline import configs, metadata
    from pipeline.evaluation import load_evaluation

    work_dir = args.work_dir or output.DEFAULT_WORK_DIR
    root = os.path.join(work_dir, "e2e")
    shutil.rmtree(root, ignore_errors=True)
    command = ["run", "--pipeline-root", root, *args.run_args]
    finished = process.run(process.python_module("pipeline.cli", *command))
    if finished.returncode != 0:
        print(finished.output[-5000:])
        raise RuntimeError(f"alexnet-tfx run failed (exit status {finished.returncode})")
    store = metadata.open_store(root)
    components = metadata.component_runs(store, metadata.run_ids(store)[-1])
    seconds = {node_id: c.seconds for node_id, c in components.items()}
    total = sum(seconds.values())
    evaluation = load_evaluation(components[configs.EVALUATOR])
    top1, top5 = evaluation.metrics[metric_names.TOP1], evaluation.metrics[metric_names.TOP5]
    lines = [
        f"alexnet-tfx run: {finished.seconds:.1f} s wall ({finished.seconds / TARGET_SECONDS:.2f}"
        f" of the {TARGET_SECONDS} s target), {finished.cpu_seconds:.1f} CPU-s, "
        f"peak RSS {finished.peak_rss_bytes / output.MIB:.0f} MiB",
        *(
            f"  {node_id:<32} {s:7.1f} s  {s / finished.seconds:6.1%}"
            for node_id, s in seconds.items()
        ),
        f"  {'components':<32} {total:7.1f} s  {total / finished.seconds:6.1%} of the wall time",
        f"validation top-1 {top1:.3f}, top-5 {top5:.3f}; blessed: {evaluation.blessed}",
    ]
    output.report(
        "e2e",
        lines,
        {
            "ratio": finished.seconds / TARGET_SECONDS,
            "wall_s": finished.seconds,
            "cpu_s": finished.cpu_seconds,
            "peak_rss_mib": finished.peak_rss_bytes / output.MIB,
            "component_s": seconds,
            "top1": top1,
            "top5": top5,
            "blessed": evaluation.blessed,
        },
    )
    shutil.rmtree(root, ignore_errors=True)
    return 0
