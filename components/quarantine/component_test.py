"""Quarantine as a TFX component: its interface, and a real ImportExampleGen -> Quarantine run."""

import io
import json
import os
import re

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from PIL import Image
from skimage import data as skimage_data
from tfx.components import ImportExampleGen
from tfx.orchestration import metadata, pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

from components.quarantine.component import Quarantine, QuarantineReport
from data import records


def _quarantine(examples, **overrides) -> Quarantine:
    arguments = {
        "record_format": "build_imagenet",
        "max_image_pixels": 50_000_000,
        "max_rejected_fraction": 0.05,
    }
    return Quarantine(examples=examples, **{**arguments, **overrides})


@pytest.fixture
def example_gen(tmp_path):
    return ImportExampleGen(input_base=str(tmp_path))


def test_the_outputs_are_examples_and_a_report(example_gen):
    quarantine = _quarantine(example_gen.outputs["examples"])
    assert quarantine.outputs["examples"].type is standard_artifacts.Examples
    assert quarantine.outputs["report"].type is QuarantineReport
    assert quarantine.exec_properties == {
        "record_format": "build_imagenet",
        "max_image_pixels": 50_000_000,
        "max_rejected_fraction": 0.05,
    }


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"record_format": "jpeg"}, records.RecordFormatError, "unknown record format 'jpeg'"),
        ({"max_image_pixels": 0}, ValueError, "max_image_pixels must be a positive int, got 0"),
        ({"max_image_pixels": 1.5e7}, ValueError, "max_image_pixels must be a positive int"),
        ({"max_rejected_fraction": 1.5}, ValueError, "max_rejected_fraction must be within"),
        ({"max_rejected_fraction": -0.1}, ValueError, "max_rejected_fraction must be within"),
    ],
)
def test_bad_settings_fail_when_the_pipeline_is_built(example_gen, overrides, error, message):
    with pytest.raises(error, match=re.escape(message)):
        _quarantine(example_gen.outputs["examples"], **overrides)


def test_a_whole_number_fraction_is_accepted(example_gen):
    quarantine = _quarantine(example_gen.outputs["examples"], max_rejected_fraction=0)
    assert quarantine.exec_properties["max_rejected_fraction"] == 0.0


def _write_input(root, jpeg: bytes, bad_train_records: int) -> None:
    """train/ and validation/ TFRecords: classes 0 and 1, plus some undecodable train records."""
    synsets = ["n01440764", "n01443537"]  # classes 0 and 1 of the ILSVRC-2012 list
    splits = {
        "train": [(i % 2, jpeg) for i in range(6)] + [(0, b"not a JPEG")] * bad_train_records,
        "validation": [(0, jpeg), (1, jpeg)],
    }
    for split, rows in splits.items():
        os.makedirs(root / split)
        with tf.io.TFRecordWriter(str(root / split / "data.tfrecord")) as writer:
            for i, (label, encoded) in enumerate(rows):
                example = records.make_example(
                    encoded, label, synsets[label], "", 32, 48, f"{split}_{i}.JPEG"
                )
                writer.write(example.SerializeToString())


def _run_pipeline(tmp_path, max_rejected_fraction: float, bad_train_records: int):
    buffer = io.BytesIO()
    Image.fromarray(skimage_data.chelsea()).resize((48, 32)).save(buffer, "JPEG")
    _write_input(tmp_path / "input", buffer.getvalue(), bad_train_records)
    example_gen = ImportExampleGen(
        input_base=str(tmp_path / "input"),
        input_config=example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=split, pattern=f"{split}/*")
                for split in records.SPLITS
            ]
        ),
    )
    quarantine = _quarantine(
        example_gen.outputs["examples"], max_rejected_fraction=max_rejected_fraction
    )
    connection = metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite"))
    LocalDagRunner().run(
        pipeline.Pipeline(
            pipeline_name="quarantine-test",
            pipeline_root=str(tmp_path / "root"),
            components=[example_gen, quarantine],
            metadata_connection_config=connection,
        )
    )
    return metadata_store.MetadataStore(connection)


@pytest.mark.slow
def test_in_a_pipeline_the_valid_records_and_the_report_are_published(tmp_path):
    store = _run_pipeline(tmp_path, max_rejected_fraction=0.2, bad_train_records=1)
    (report,) = store.get_artifacts_by_type(QuarantineReport.TYPE_NAME)
    assert report.custom_properties["rejected_count"].int_value == 1
    assert report.custom_properties["rejected_count_validation"].int_value == 0
    with open(os.path.join(report.uri, "report.json")) as f:
        assert [e["filename"] for e in json.load(f)["rejected"]] == ["train_6.JPEG"]

    (produced_report,) = store.get_events_by_artifact_ids([report.id])
    outputs = [
        event.artifact_id
        for event in store.get_events_by_execution_ids([produced_report.execution_id])
        if event.type == event.OUTPUT
    ]
    (clean,) = [a for a in store.get_artifacts_by_id(outputs) if a.type == "Examples"]
    files = tf.io.gfile.glob(os.path.join(clean.uri, "Split-train", "*.gz"))
    assert sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) == 6


@pytest.mark.slow
def test_in_a_pipeline_the_failure_names_a_report_that_survives_it(tmp_path):
    with pytest.raises(Exception, match="Quarantine stopped the pipeline") as raised:
        _run_pipeline(tmp_path, max_rejected_fraction=0.05, bad_train_records=2)
    message = str(raised.value)
    assert "split 'train': 2 of 8 records rejected (25.0%)" in message
    (report_path,) = re.findall(r"Report: (\S+report\.json);", message)
    with open(report_path) as f:  # TFX has deleted the output artifacts by now; this is kept
        assert json.load(f)["splits"]["train"]["rejected"] == 2
    assert os.path.getsize(os.path.join(os.path.dirname(report_path), "rejected-train.tfrecord.gz"))


def test_the_report_type_in_a_kubeflow_spec_is_one_tfxs_entrypoint_can_load(tmp_path, example_gen):
    """On Kubeflow, TFX's container entrypoint imports a custom artifact type from the spec's
    schema title; "alexnet_tfx.QuarantineReport" failed there (found by kubeflow-local)."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfp_v2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils

    quarantine = _quarantine(example_gen.outputs["examples"])
    output = tmp_path / "pipeline.json"
    kfp_v2.KubeflowV2DagRunner(
        config=kfp_v2.KubeflowV2DagRunnerConfig(default_image="unused"),
        output_dir=str(tmp_path),
        output_filename=output.name,
    ).run(
        pipeline.Pipeline(
            pipeline_name="quarantine-test",
            pipeline_root="gs://unused/root",
            components=[example_gen, quarantine],
        )
    )
    spec = json.loads(output.read_text())["pipelineSpec"]["components"]["Quarantine"]
    report_type = spec["outputDefinitions"]["artifacts"]["report"]["artifactType"]
    artifacts = pipeline_spec_pb2.ArtifactList()
    artifacts.artifacts.add(
        uri=str(tmp_path / "report"),
        type=pipeline_spec_pb2.ArtifactTypeSchema(instance_schema=report_type["instanceSchema"]),
    )
    loaded = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict({"report": artifacts})
    assert type(loaded["report"][0]) is QuarantineReport
