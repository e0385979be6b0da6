"""Quarantine's executor: check every record in Beam, pass the valid ones on byte-identical.

One Beam pipeline covers every split. Files are read one by one so each record keeps its
address (file, 0-based index within the file); files are spread over workers. Rejected records
keep their original bytes in ``rejected-<split>.tfrecord.gz`` and their address and reason in
``report.json``, both in the report artifact. The executor fails, after the report is written,
when a split keeps no valid record or rejects more than ``max_rejected_fraction``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from data import image_check, records

UNCHECKED_EXAMPLES_KEY = "unchecked_examples"
EXAMPLES_KEY = "examples"
REPORT_KEY = "report"
RECORD_FORMAT_KEY = "record_format"
MAX_IMAGE_PIXELS_KEY = "max_image_pixels"
MAX_REJECTED_FRACTION_KEY = "max_rejected_fraction"

REPORT_FILE = "report.json"
# The report artifact's custom properties: records read, and rejected (also per split, suffixed).
RECORD_COUNT_PROPERTY = "record_count"
REJECTED_COUNT_PROPERTY = "rejected_count"
ABSENT_FROM_TRAINING = "class absent from training"
_VALID = "valid"
# ExampleGen's shard prefix: downstream components glob Split-<name>/*, keep its layout anyway.
_DATA_PREFIX = "data_tfrecord"
_TFRECORDS_GZIP = "tfrecords_gzip"
_FAILURE_EXAMPLES = 5  # rejected records quoted per failing split


class QuarantineError(RuntimeError):
    """Too many records were rejected: the data, not the code, needs fixing."""


def rejected_file(split: str) -> str:
    return f"rejected-{split}.tfrecord.gz"


@dataclasses.dataclass(frozen=True)
class _Checked:
    split: str
    file: str
    index: int  # 0-based position within ``file``
    serialized: bytes
    verdict: image_check.Verdict


class Executor(base_beam_executor.BaseBeamExecutor):
    """Checks every record of every split; see the module docstring."""

    def Do(
        self,
        input_dict: dict[str, list[Any]],
        output_dict: dict[str, list[Any]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[UNCHECKED_EXAMPLES_KEY])
        clean = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        report = artifact_utils.get_single_instance(output_dict[REPORT_KEY])
        fmt = records.get_format(exec_properties[RECORD_FORMAT_KEY])
        max_pixels = int(exec_properties[MAX_IMAGE_PIXELS_KEY])
        max_fraction = float(exec_properties[MAX_REJECTED_FRACTION_KEY])

        _require_tf_examples_in_gzip_tfrecords(examples)
        splits = artifact_utils.decode_split_names(examples.split_names)
        files = {split: _split_files(examples, split) for split in splits}
        settings = {
            "examples": examples.uri,
            RECORD_FORMAT_KEY: fmt.name,
            MAX_IMAGE_PIXELS_KEY: max_pixels,
            MAX_REJECTED_FRACTION_KEY: max_fraction,
        }
        # Same splits, payload and layout as the input: downstream cannot tell the difference.
        clean.split_names = examples.split_names
        clean.span, clean.version = examples.span, examples.version
        examples_utils.set_payload_format(clean, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(clean, _TFRECORDS_GZIP)

        with self._make_beam_pipeline() as pipeline:
            _build_pipeline(pipeline, files, fmt, max_pixels, clean, report.uri, settings)

        with fileio.open(os.path.join(report.uri, REPORT_FILE)) as f:
            summary = json.load(f)
        _set_counts(report, summary)
        logging.info(_summary_paragraph(summary, report.uri))
        failures = _failures(summary, max_fraction)
        if failures:
            raise QuarantineError(_failure_message(summary, failures, self._keep_report(report)))

    def _keep_report(self, report) -> str:
        """Where the report survives the failure; TFX deletes a failed execution's outputs.

        The stateful working directory is the one place TFX keeps after a failed execution.
        Without an orchestrator (Do called directly) nothing is deleted and the report stays.
        """
        working_dir = self._context.stateful_working_dir if self._context else None
        if not working_dir:
            return report.uri
        kept = os.path.join(working_dir, "quarantine_report")
        fileio.makedirs(kept)
        for name in fileio.listdir(report.uri):
            fileio.copy(os.path.join(report.uri, name), os.path.join(kept, name), overwrite=True)
        return kept


def _require_tf_examples_in_gzip_tfrecords(examples) -> None:
    payload = examples_utils.get_payload_format(examples)
    file_format = examples_utils.get_file_format(examples)
    if payload != example_gen_pb2.FORMAT_TF_EXAMPLE or file_format != _TFRECORDS_GZIP:
        raise ValueError(
            f"Quarantine checks tf.train.Example records in {_TFRECORDS_GZIP} files, but "
            f"{examples.uri} holds {example_gen_pb2.PayloadFormat.Name(payload)} in "
            f"{file_format}"
        )


def _split_files(examples, split: str) -> list[str]:
    (pattern,) = examples_utils.get_split_file_patterns([examples], split)
    return sorted(fileio.glob(pattern))


def _build_pipeline(pipeline, files, fmt, max_pixels, clean, report_uri, settings) -> None:
    checked = {
        split: (
            pipeline
            | f"ListFiles[{split}]" >> beam.Create(split_files)
            | f"SpreadFiles[{split}]" >> beam.Reshuffle()
            | f"Check[{split}]"
            >> beam.FlatMap(_check_file, split=split, fmt=fmt, max_pixels=max_pixels)
        )
        for split, split_files in files.items()
    }
    if records.TRAIN_SPLIT in checked:
        train_classes = beam.pvalue.AsSingleton(
            checked[records.TRAIN_SPLIT]
            | "ValidTrain" >> beam.Filter(lambda c: c.verdict.ok)
            | "TrainClasses" >> beam.Map(lambda c: c.verdict.class_index)
            | "Classes" >> beam.CombineGlobally(beam.combiners.ToSetCombineFn())
        )
        for split in [split for split in checked if split != records.TRAIN_SPLIT]:
            checked[split] |= f"RequireTrainClass[{split}]" >> beam.Map(
                _require_train_class, train_classes
            )

    counts, entries = [], []
    for split, split_records in checked.items():
        valid, rejected = split_records | f"Partition[{split}]" >> beam.Partition(
            lambda c, _: 0 if c.verdict.ok else 1, 2
        )
        _ = (
            valid
            | f"ValidBytes[{split}]" >> beam.Map(lambda c: c.serialized)
            | f"WriteValid[{split}]"
            >> beam.io.WriteToTFRecord(
                os.path.join(artifact_utils.get_split_uri([clean], split), _DATA_PREFIX),
                file_name_suffix=".gz",
            )
        )
        _ = (
            rejected
            | f"RejectedBytes[{split}]" >> beam.Map(lambda c: c.serialized)
            | f"WriteRejected[{split}]"
            >> beam.io.WriteToTFRecord(
                os.path.join(report_uri, rejected_file(split)), shard_name_template=""
            )
        )
        counts.append(
            split_records
            | f"Reasons[{split}]" >> beam.Map(lambda c: (c.split, c.verdict.reason or _VALID))
            | f"Count[{split}]" >> beam.combiners.Count.PerElement()
        )
        entries.append(rejected | f"Entries[{split}]" >> beam.Map(_entry))

    _ = (
        pipeline
        | "Once" >> beam.Create([None])
        | "WriteReport"
        >> beam.Map(
            _write_report,
            path=os.path.join(report_uri, REPORT_FILE),
            splits=list(files),
            settings=settings,
            counts=beam.pvalue.AsList(counts | "AllCounts" >> beam.Flatten()),
            entries=beam.pvalue.AsList(entries | "AllEntries" >> beam.Flatten()),
        )
    )


def _check_file(path: str, split: str, fmt, max_pixels: int):
    dataset = tf.data.TFRecordDataset(path, compression_type="GZIP")
    index = 0
    try:
        for serialized in dataset.as_numpy_iterator():
            verdict = image_check.check_record(serialized, fmt, max_pixels)
            yield _Checked(split, path, index, serialized, verdict)
            index += 1
    except tf.errors.OpError as error:
        # A damaged file loses every record after the damage, so no per-record verdict fits.
        raise OSError(
            f"cannot read record {index} (0-based) of {path}: "
            f"{image_check.tf_error_reason(error)}"
        ) from None


def _require_train_class(checked: _Checked, train_classes: set[int]) -> _Checked:
    """Evaluating on a class the model never saw measures nothing, and Transform maps it to -1."""
    verdict = checked.verdict
    if not verdict.ok or verdict.class_index in train_classes:
        return checked
    detail = f"class {verdict.class_index} has no valid record in the {records.TRAIN_SPLIT} split"
    return dataclasses.replace(
        checked,
        verdict=image_check.Verdict(
            filename=verdict.filename, reason=ABSENT_FROM_TRAINING, detail=detail
        ),
    )


def _entry(checked: _Checked) -> dict[str, Any]:
    return {
        "split": checked.split,
        "file": checked.file,
        "index": checked.index,
        "filename": checked.verdict.filename,
        "reason": checked.verdict.reason,
        "detail": checked.verdict.detail,
    }


def _write_report(_, path, splits, settings, counts, entries) -> None:
    by_split = {split: {} for split in splits}
    for (split, reason), count in counts:
        by_split[split][reason] = count
    summary = {**settings, "splits": {}, "rejected": []}
    for split, reasons in by_split.items():
        valid = reasons.pop(_VALID, 0)
        rejected = sum(reasons.values())
        summary["splits"][split] = {
            "records": valid + rejected,
            "valid": valid,
            "rejected": rejected,
            "reasons": dict(sorted(reasons.items())),
            "rejected_file": rejected_file(split),
        }
    summary["rejected"] = sorted(entries, key=lambda e: (e["split"], e["file"], e["index"]))
    with fileio.open(path, "w") as f:
        json.dump(summary, f, indent=1)


def _set_counts(report, summary) -> None:
    splits = summary["splits"]
    records_read = sum(s["records"] for s in splits.values())
    report.set_int_custom_property(RECORD_COUNT_PROPERTY, records_read)
    rejected = sum(s["rejected"] for s in splits.values())
    report.set_int_custom_property(REJECTED_COUNT_PROPERTY, rejected)
    for split, counts in splits.items():
        report.set_int_custom_property(f"{REJECTED_COUNT_PROPERTY}_{split}", counts["rejected"])


def _summary_paragraph(summary, report_uri: str) -> str:
    parts = []
    for split, s in summary["splits"].items():
        reasons = ", ".join(f"{reason}: {n}" for reason, n in s["reasons"].items())
        parts.append(
            f"{split} kept {s['valid']} of {s['records']}"
            + (f" (rejected {s['rejected']}: {reasons})" if s["rejected"] else "")
        )
    return (
        f"Quarantine checked the {summary[RECORD_FORMAT_KEY]} records of {summary['examples']}: "
        f"{'; '.join(parts)}. Rejected records and report.json are in {report_uri}."
    )


def _failures(summary, max_fraction: float) -> dict[str, str]:
    """Split name -> why it fails the gate."""
    failures = {}
    for split, s in summary["splits"].items():
        if s["valid"] == 0:
            failures[split] = f"no valid records left ({s['rejected']} of {s['records']} rejected)"
        elif s["rejected"] / s["records"] > max_fraction:
            failures[split] = (
                f"{s['rejected']} of {s['records']} records rejected "
                f"({s['rejected'] / s['records']:.1%}), more than "
                f"max_rejected_fraction {max_fraction:.1%}"
            )
    return failures


def _failure_message(summary, failures: dict[str, str], report_dir: str) -> str:
    lines = ["Quarantine stopped the pipeline:"]
    lines += [f"  split {split!r}: {why}" for split, why in failures.items()]
    lines.append("First rejected records:")
    for split in failures:
        for e in [e for e in summary["rejected"] if e["split"] == split][:_FAILURE_EXAMPLES]:
            name = f" ({e['filename']})" if e["filename"] else ""
            lines.append(
                f"  {split}: {e['file']} record {e['index']}{name}: {e['reason']}: {e['detail']}"
            )
    rejected = ", ".join(rejected_file(split) for split in failures)
    lines.append(
        f"Report: {os.path.join(report_dir, REPORT_FILE)}; the rejected records' original bytes "
        f"are beside it in {rejected}"
    )
    return "\n".join(lines)
