"""``python -m bench.peers``: its correctness check, and a smoke run beside the peers that start here.

The peers live in virtualenvs of their own (``make peers`` makes them from ``bench/peers-requirements.txt`` and
``bench/peers-kserve-requirements.txt``; CI does, about 1.1 GB together). The smoke run is skipped where the first is
absent (a peer of a missing second is reported as skipped by the bench itself); the correctness check runs against
convlens alone everywhere.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bench.peers.compare import (
    CONVLENS,
    DEFAULT_PEERS_PYTHON,
    MEASURES,
    PEERS_PYTHON_VARIABLE,
    Body,
    bodies,
    check_answer,
    expected_outputs,
)
from tests.server import ROOT, running_service

PEERS_PYTHON = Path(os.environ.get(PEERS_PYTHON_VARIABLE, DEFAULT_PEERS_PYTHON))
needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
needs_peers = pytest.mark.skipif(
    not PEERS_PYTHON.exists(), reason=f"no peers' interpreter at {PEERS_PYTHON} (make bench-peers makes it)"
)


@pytest.fixture(scope="module")
def served_bodies():
    with tempfile.TemporaryDirectory() as folder, running_service() as (base, _):
        written = bodies(Path(folder))
        yield base, written, expected_outputs(written)


def test_the_correctness_check_passes_convlens_on_every_body(served_bodies):
    base, written, expected = served_bodies
    assert {name: check_answer(base, body, expected[name]) for name, body in written.items()} == dict.fromkeys(written)


def test_the_correctness_check_refuses_other_probabilities(served_bodies):
    base, written, expected = served_bodies
    shifted = expected["one.json"].copy()
    shifted[0, np.argmax(shifted[0])] -= 1e-3
    problem = check_answer(base, written["one.json"], shifted)
    assert problem is not None and "other probabilities" in problem


def test_the_correctness_check_reports_an_http_error(served_bodies):
    base, written, expected = served_bodies
    broken = written["one.bin"].path.with_name("broken.bin")
    broken.write_bytes(written["one.bin"].path.read_bytes()[:-4])
    body = Body(broken, "application/octet-stream", written["one.bin"].headers, np.zeros(1))
    assert check_answer(base, body, expected["one.bin"]).startswith("HTTP 400")


@needs_wrk
@needs_peers
def test_the_smoke_run_checks_every_started_peer_and_writes_each_ratio(tmp_path):
    out = tmp_path / "peers.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.peers", "--rounds", "1", "--seconds", "1", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, PEERS_PYTHON_VARIABLE: str(PEERS_PYTHON)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(out.read_text())
    started = [name for name in document["checks"] if name != CONVLENS]
    assert started, f"no peer started: {document['skipped']}"
    one_json = document["measures"]["json_c16"]
    answering = [name for name in started if document["checks"][name]["one.json"] is None]
    assert sorted(one_json["peers"]) == sorted(answering)
    for measure in MEASURES:
        for peer in document["measures"].get(measure.key, {}).get("peers", {}).values():
            assert len(peer["ratio"]["rounds"]) == 1
            if peer["figures"][0] > 0:
                assert peer["ratio"]["median"] > 0
            else:  # a peer that completed no request within the short run has no ratio, never a made-up one
                assert peer["ratio"]["median"] is None
    assert document["markdown"] in result.stdout
