"""The service as users start it: ``python -m service`` on a real socket."""

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.server import ROOT, free_port, running_service


@pytest.fixture(scope="module")
def server():
    with running_service() as (base, _):
        yield base


def test_the_service_classifies_over_tcp(server):
    data = (ROOT / "examples" / "digit-4.png").read_bytes()
    response = httpx.post(f"{server}/v1/classify", files={"image": ("4.png", data, "image/png")})
    assert response.status_code == 200 and response.json()["digit"] == 4


def copy_models(target, tamper: str | None = None, drop: str | None = None) -> None:
    for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx"):
        if name == drop:
            continue
        data = (ROOT / "models" / name).read_bytes()
        (target / name).write_bytes(data[:-100] if name == tamper else data)


def start_up_failure(model_dir) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--port", str(free_port())],
        cwd=ROOT,
        env={"CONVLENS_MODEL_DIR": str(model_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_truncated_model_stops_start_up_with_a_one_line_reason(tmp_path):
    copy_models(tmp_path, tamper="classifier.onnx")
    line = start_up_failure(tmp_path)
    assert line.startswith("convlens: cannot start: model file") and "classifier.onnx has SHA-256" in line
    assert "the file was changed or truncated" in line


def test_a_missing_model_stops_start_up_with_a_one_line_reason(tmp_path):
    copy_models(tmp_path, drop="autoencoder.onnx")
    assert "autoencoder.onnx is missing" in start_up_failure(tmp_path)


def wait_in_flight(base: str, count: int, timeout: float = 10) -> None:
    """Until the service's ``convlens_requests_in_flight`` gauge (this probe included) reaches ``count``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        gauge = next(line for line in metrics.splitlines() if line.startswith("convlens_requests_in_flight "))
        if float(gauge.split()[1]) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"fewer than {count} requests in flight after {timeout} s")


def test_sigterm_lets_the_request_in_flight_finish_and_exits_cleanly():
    data = (ROOT / "examples" / "digit-2.png").read_bytes()
    sending = threading.Event()

    def slow_upload():
        yield data[:40]
        sending.set()
        time.sleep(1.0)  # the client's slowness is the test's input: SIGTERM arrives while the body is unfinished
        yield data[40:]

    with running_service() as (base, process):
        answers = []
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{base}/v1/classify", content=slow_upload(), headers={"content-type": "image/png"}, timeout=30
                )
            )
        )
        request.start()
        assert sending.wait(timeout=10)
        wait_in_flight(base, 2)  # the service's own gauge: the health probe and the upload
        process.send_signal(signal.SIGTERM)
        request.join(timeout=30)
        assert process.wait(timeout=30) == 0
    assert answers and answers[0].status_code == 200 and answers[0].json()["digit"] == 2
