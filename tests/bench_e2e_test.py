"""Every benchmark runs from a clean checkout, as documented, and ends with its JSON line.

Smoke runs on a few generated images: they check that each benchmark measures what it says and
reports it, never how fast anything is (benchmarks are not tests).
"""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import noise_lines, run_cli

pytestmark = pytest.mark.e2e

IMAGES = "24"


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bench"))


def _figures(work_dir: str, bench: str, *args: str) -> dict:
    result = run_cli("bench", bench, "--work-dir", work_dir, *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert noise_lines(result) == []
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["bench"] == bench
    assert math.isfinite(figures["ratio"])
    return figures


def test_bench_sizes(work_dir):
    figures = _figures(work_dir, "sizes", "--images", IMAGES)
    assert figures["ratio"] > 0 and figures["saved_model_ratio"] > 0
    assert figures["images"] == int(IMAGES)
    # A 227x227x3 uint8 crop is 154,587 bytes, stored uncompressed; the JPEGs a few tens of KiB.
    assert figures["transformed_bytes_per_image"] > figures["jpeg_bytes_per_image"]
    assert figures["saved_model_bytes"] > figures["weight_bytes"] > 100 * 2**20  # AlexNet: ~55M


def test_bench_input(work_dir):
    figures = _figures(work_dir, "input", "--images", IMAGES, "--batch-size", "4", "--batches", "3")
    assert figures["ratio"] > 0 and figures["compression"] == "uncompressed"
    assert figures["host_images_per_cpu_s"] > 0 and figures["host_images_per_cpu_s_all_cores"] > 0
    assert figures["host_images_per_cpu_s_cached"] > 0 and figures["augment_cpu_ms_per_image"] > 0


def test_bench_overhead(work_dir):
    figures = _figures(
        work_dir, "overhead", "--images", IMAGES, "--batch-size", "4", "--steps", "2"
    )
    assert figures["ratio"] > 0
    assert figures["device"] == "CPU" and figures["model"] == "alexnet"
    assert figures["step_s_real"] > 0 and figures["step_s_in_memory"] > 0


def test_bench_determinism(work_dir):
    figures = _figures(
        work_dir, "determinism", "--images", IMAGES, "--batch-size", "4", "--steps", "1",
        "--batches", "2",
    )  # fmt: skip
    assert figures["ratio"] > 0 and figures["input_ratio"] > 0
    assert figures["step_s_deterministic"] > 0 and figures["images_per_s_unordered"] > 0


def test_bench_transform(work_dir):
    # The small size (a tenth) must still hold every class of the sample in its training split.
    figures = _figures(work_dir, "transform", "--images", "80")
    assert figures["images"] == [8, 80]
    # The marginal ratio divides by t(80) - t(8), which timing noise can make negative at these
    # sizes: only the rates themselves must be positive.
    assert figures["ratio_at_n"] > 0 and figures["decode_limit_images_per_s"] > 0
    assert len(figures["peak_rss_mib"]) == 2 and min(figures["peak_rss_mib"]) > 100
