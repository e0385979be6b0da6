"""``alexnet-tfx report``: one self-contained HTML file about a run, read from ML Metadata."""

from __future__ import annotations

import math
import os

from data.errors import UserError
from pipeline import configs
from pipeline.commands import flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="write an HTML report of a run: verdict, metrics, per-class plots, history",
        description="Write one self-contained HTML file (plots embedded as PNG) showing how a "
        "run's model did and why it was or was not pushed, read from ML Metadata.",
    )
    p.add_argument(
        "--pipeline-root",
        default=configs.PIPELINE_ROOT,
        help="where the pipeline ran (default: %(default)s, where 'run' writes)",
    )
    p.add_argument("--output", default="report.html", help="the HTML to write (report.html)")
    p.add_argument("--run-id", default=None, help="which run (default: the latest)")
    flags.add_verbose_flag(p)
    p.set_defaults(handler=main)


def main(args) -> int:
    from models.metric_names import TOP1
    from pipeline import html_report, run_report

    output = os.path.abspath(args.output)
    if not os.path.isdir(os.path.dirname(output)):
        raise UserError(f"--output {output}: its directory does not exist")
    pipeline_root = os.path.abspath(args.pipeline_root)
    try:
        report = run_report.collect(pipeline_root, args.run_id)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from None
    document = html_report.render(report)
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(document)
    except OSError as error:
        raise UserError(f"--output {output}: cannot write it ({error.strerror})") from None
    evaluation = report.evaluation
    if evaluation is None:
        verdict = "not evaluated"
    else:
        verdict = "blessed" if evaluation.blessed else "NOT blessed"
        verdict += f", top-1 {evaluation.metrics.get(TOP1, math.nan):.3f}"
    print(f"Wrote {output} (run {report.run_id}: {verdict})")
    return 0
