"""A tiny run of the benchmark suite, so that `make bench` cannot rot."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.server import ROOT

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


def test_quick_bench_run_writes_a_results_file_with_every_measure(tmp_path):
    out = tmp_path / "latest.json"
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    results = json.loads(out.read_text())
    assert results["machine"]["cores"] >= 1 and results["machine"]["commit"]
    assert results["http_errors"] == 0
    measures = [row["measure"] for row in results["rows"]]
    for expected in (
        "onnxruntime batch-1 p50 (1 thread)",
        "HTTP classify p50, concurrency 1",
        "HTTP classify throughput, concurrency 64",
        "batch endpoint, 1,000 images per request (.npy)",
        "HTTP deconvolution pool (one filter, PNG) p50",
        "v2 binary infer of 256 images (`output`, tritonclient's encoding)",
        "v2 JSON infer of one image p50 (`output`)",
        "time from start to /readyz = 200 (`make serve`)",
        "HTTP classify req/s, concurrency 16",
        "training seconds per epoch (60,000 images, from the manifest)",
    ):
        assert expected in measures
    assert all(row["value"] is not None and row["value"] > 0 for row in results["rows"])
    assert results["markdown"].startswith("| measure |")


def test_short_soak_mixing_every_endpoint_sees_no_5xx_and_no_dropped_connections(tmp_path):
    out = tmp_path / "soak.json"
    subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "4", "--warmup", "2", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    verdict = json.loads(out.read_text())["verdict"]
    assert verdict["no_5xx"] and verdict["no_dropped_connections"] and verdict["bad_requests_got_4xx"], verdict


def test_the_invariance_bench_prints_the_ratio_to_classify_and_the_parts():
    result = subprocess.run(
        [sys.executable, "-m", "bench.invariance", "--rounds", "1", "--seconds", "1"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "load average before:" in result.stdout
    assert "| HTTP invariance JSON, rotate in 33 steps, p50 |" in result.stdout
    assert "times classify" in result.stdout and "onnxruntime run (33 images, 5 outputs)" in result.stdout
