"""Hostile clients against a real running service (``python -m service`` on 127.0.0.1): each class of attack from the
hostile-client review, with cases of its own. While each attack runs, a probe in a process of its own times
``/healthz`` and a sampler records the process tree's RSS. What users need: ``/healthz`` under 0.5 s during every
attack, no 5xx but 503, RSS within the documented budget, and the service healthy afterwards. Numbers are printed
for the README."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from service.api.settings import Settings
from tests.helpers import ROOT, encode, png_claiming, server_errors
from tests.server import running_service

HEALTH_LIMIT = 0.5
EXAMPLE_JPEG = (ROOT / "examples" / "photo-3.jpg").read_bytes()
DIGIT = (ROOT / "examples" / "digit-7.png").read_bytes()
MEASURED: dict[str, str] = {}


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pids += [int(child) for child in children]
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024
    return total


def probe_health(base: str, ready, stop, results) -> None:
    """/healthz every 50 ms until ``stop``, in a process of its own: the attack's client runs in the test's
    process, whose GIL would otherwise delay the probe itself (one probe of 0.64 s during the arrival of 200
    requests at once, when the server's answers to the others stayed under 60 ms)."""
    health, statuses = [], []
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            statuses.append(client.get(f"{base}/healthz").status_code)
            health.append(time.perf_counter() - started)
            ready.set()
            stop.wait(0.05)
    results.put((health, statuses))


class Watch:
    """During an attack: /healthz latency every 50 ms (from another process) and the service's RSS every 20 ms."""

    def __init__(self, base: str, pid: int) -> None:
        self.base, self.pid = base, pid
        self.health: list[float] = []
        self.health_status: list[int] = []
        self.rss: list[float] = []
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.rss.append(rss_mb(self.pid))
            self._stop.wait(0.02)

    @contextmanager
    def running(self) -> Iterator[Watch]:
        spawn = multiprocessing.get_context("spawn")
        ready, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
        prober = spawn.Process(target=probe_health, args=(self.base, ready, stop, results), daemon=True)
        prober.start()
        assert ready.wait(60), "the /healthz probe did not start"
        sampler = threading.Thread(target=self._sample)
        sampler.start()
        try:
            yield self
        finally:
            self._stop.set()
            stop.set()
            sampler.join()
            self.health, self.health_status = results.get(timeout=60)
            prober.join(timeout=60)

    def assert_healthy(self, name: str) -> None:
        worst = max(self.health)
        MEASURED[name] = (
            f"/healthz max {1000 * worst:.0f} ms over {len(self.health)} probes, peak RSS {max(self.rss):.0f} MB"
        )
        assert set(self.health_status) == {200}
        assert worst < HEALTH_LIMIT, f"/healthz took {worst:.2f} s during {name}"


async def burst(base: str, requests: list[dict], limit: int = 256) -> list[int]:
    """Send every request at once (each a dict of httpx.request arguments); their statuses."""
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=limit)) as client:
        answers = await asyncio.gather(*(client.request(**request) for request in requests), return_exceptions=True)
    return [answer.status_code if isinstance(answer, httpx.Response) else 0 for answer in answers]


def counter(base: str, name: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in httpx.get(f"{base}/metrics").text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


@pytest.fixture(scope="module")
def service():
    with running_service() as (base, process):
        yield base, process
    print("\nhostile clients:", *(f"  {name}: {value}" for name, value in MEASURED.items()), sep="\n")


def png_with_chunks(count: int) -> bytes:
    """A real small PNG with ``count`` empty ancillary chunks before its image data (a parser bomb)."""
    png = encode(np.full((28, 28), 255, np.uint8))
    chunk = struct.pack(">I", 0) + b"tEXt" + struct.pack(">I", zlib.crc32(b"tEXt"))
    return png[:33] + chunk * count + png[33:]


def gif_with_comment_blocks(count: int) -> bytes:
    """A small GIF whose comment extension holds ``count`` one-byte sub-blocks before the first frame."""
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, "GIF")
    gif = buffer.getvalue()
    head = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    return gif[:head] + b"\x21\xfe" + b"\x01x" * count + b"\x00" + gif[head:]


def jpeg_with_markers(count: int) -> bytes:
    """The issue's reproduction: a real JPEG with ``count`` empty APP2 markers after its start."""
    return EXAMPLE_JPEG[:2] + b"\xff\xe2\x00\x02" * count + EXAMPLE_JPEG[2:]


def post(path: str, data: bytes, content_type: str = "image/png", **params) -> dict:
    return {"method": "POST", "url": path, "content": data, "headers": {"content-type": content_type}, "params": params}


def test_parser_bombs_are_refused_without_stalling_the_event_loop(service):
    base, process = service
    bombs = [
        ("image/jpeg", jpeg_with_markers(2_600_000)),
        ("image/png", png_with_chunks(800_000)),
        ("image/gif", gif_with_comment_blocks(1_500_000)),
    ]
    assert all(len(data) < Settings().max_upload_bytes for _, data in bombs)
    with Watch(base, process.pid).running() as watch:
        statuses = asyncio.run(burst(base, [post("/v1/classify", data, kind) for kind, data in bombs * 4]))
    assert set(statuses) <= {400, 503} and statuses.count(400) >= 4  # 503: over the buffered-upload budget
    watch.assert_healthy("parser bombs (12 uploads of about 10 MB: JPEG markers, PNG chunks, GIF blocks)")
    assert server_errors(base) == {}


def test_pixel_and_aspect_ratio_bombs_cost_neither_time_nor_memory(service):
    base, process = service
    strip = png_claiming(16_000_000, 1)
    wide = encode(np.full((2, 20_000), 255, np.uint8))
    huge = png_claiming(60_000, 60_000)
    baseline = rss_mb(process.pid)
    with Watch(base, process.pid).running() as watch:
        statuses = asyncio.run(burst(base, [post("/v1/classify", data) for data in (strip, wide, huge) * 8]))
    assert sorted(set(statuses)) == [413, 422]
    watch.assert_healthy("pixel and aspect-ratio bombs (24 uploads)")
    assert max(watch.rss) - baseline < 100


def test_large_real_images_stay_within_the_memory_budget(service):
    base, process = service
    settings = Settings()
    pixels = np.full((4000, 4000, 4), 255, np.uint8)
    pixels[..., 3] = 0
    pixels[1500:2500, 1900:2100] = (0, 0, 0, 255)
    rgba = encode(pixels)
    baseline = rss_mb(process.pid)
    budget = (settings.max_concurrent_work * settings.request_memory_bytes + settings.max_buffered_upload_bytes) / 2**20
    with Watch(base, process.pid).running() as watch:
        statuses = asyncio.run(burst(base, [post("/v1/classify", rgba)] * 8))
    assert set(statuses) <= {200, 503} and 200 in statuses
    watch.assert_healthy("8 concurrent 16-megapixel RGBA PNGs")
    MEASURED["memory"] = (
        f"peak {max(watch.rss) - baseline:.0f} MB over the baseline {baseline:.0f} MB; budget {budget:.0f} MB"
    )
    assert max(watch.rss) - baseline <= budget


def test_a_repeated_model_list_counts_each_model_once(service):
    base, process = service
    with Watch(base, process.pid).running() as watch:
        started = time.perf_counter()
        response = httpx.post(
            f"{base}/v1/compare/deconvolution/conv1/3",
            files={"image": ("d.png", DIGIT)},
            params={"models": ",".join(["classifier"] * 1000), "scale": 32},
            timeout=30,
        )
        seconds = time.perf_counter() - started
    assert response.status_code == 422 and "got 1" in response.json()["error"]
    assert seconds < 2
    watch.assert_healthy("?models= with one name 1,000 times")


def test_clients_that_hang_up_mid_upload_are_not_server_errors(service):
    base, _ = service
    host, port = base.removeprefix("http://").split(":")
    for _ in range(5):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: 1000000\r\n\r\n" + DIGIT[:100]
            )
        time.sleep(0.05)
    deadline = time.monotonic() + 5
    while (
        counter(base, 'convlens_requests_total{method="POST",route="unmatched",status="499"}') < 5
        and counter(base, 'convlens_requests_total{method="POST",route="/v1/classify",status="499"}') < 5
    ):
        assert time.monotonic() < deadline, httpx.get(f"{base}/metrics").text
        time.sleep(0.05)
    assert server_errors(base) == {}


def test_many_large_multipart_uploads_are_held_in_memory_or_refused_with_503(service):
    base, process = service
    body = np.random.default_rng(0).integers(0, 255, (int(9.5 * 2**20),), np.uint8).tobytes()
    requests = [{"method": "POST", "url": "/v1/classify", "files": {"image": ("big.png", body)}}] * 20
    with Watch(base, process.pid).running() as watch:
        statuses = asyncio.run(burst(base, requests))
    assert set(statuses) <= {415, 503} and 503 in statuses
    watch.assert_healthy("20 concurrent 9.5 MiB multipart uploads")
    assert server_errors(base) == {}


def test_overload_is_refused_with_503_and_retry_after_fast(service):
    base, process = service
    requests = [post("/v1/deconvolution/pool", DIGIT, scale=8)] * 200
    busy_before = counter(base, "convlens_busy_rejections_total")
    with Watch(base, process.pid).running() as watch:
        started = time.perf_counter()
        statuses = asyncio.run(burst(base, requests))
        seconds = time.perf_counter() - started
    assert set(statuses) <= {200, 503} and 503 in statuses
    assert counter(base, "convlens_busy_rejections_total") > busy_before
    watch.assert_healthy("200 concurrent deconvolution grids")
    MEASURED["overload"] = f"{statuses.count(503)} of 200 refused with 503 in {seconds:.1f} s"
    assert server_errors(base) == {}
    assert httpx.post(f"{base}/v1/classify", content=DIGIT, headers={"content-type": "image/png"}).status_code == 200


def test_a_huge_header_is_refused_early_with_431(service):
    base, _ = service
    host, port = base.removeprefix("http://").split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 128 * 2**20:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(4096)
    seconds = time.perf_counter() - started
    MEASURED["header"] = f"431 after {sent / 1024:.0f} KB sent, {1000 * seconds:.0f} ms"
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert sent < 8 * 2**20 and seconds < 2


def test_past_the_connection_cap_only_health_is_answered():
    with running_service(CONVLENS_MAX_CONNECTIONS="10") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(20)]
        try:
            assert httpx.get(f"{base}/healthz").status_code == 200
            refused = httpx.get(f"{base}/v1/models")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 5
        while httpx.get(f"{base}/v1/models").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_timed_out_request_stops_computing():
    with running_service(CONVLENS_REQUEST_TIMEOUT_SECONDS="0.02") as (base, process):
        response = httpx.post(
            f"{base}/v1/deconvolution/pool",
            content=DIGIT,
            params={"scale": 20},
            headers={"content-type": "image/png"},
            timeout=30,
        )
        assert response.status_code == 503 and "longer than 0.02 s" in response.json()["error"]
        cpu = Path(f"/proc/{process.pid}/stat").read_text().split()
        before = int(cpu[13]) + int(cpu[14])
        time.sleep(1.0)
        cpu = Path(f"/proc/{process.pid}/stat").read_text().split()
        spent = (int(cpu[13]) + int(cpu[14]) - before) / 100
        MEASURED["cancellation"] = f"{spent:.2f} s of CPU in the second after a timed-out deconvolution grid"
        assert spent < 0.5
