"""Hostile clients against a real running service (``python -m service`` on 127.0.0.1): each class of attack from the
hostile-client review, with cases of its own. While each attack runs, a probe in a process of its own times
``/healthz`` and a sampler records the process tree's RSS. What users need: ``/healthz`` under 0.5 s during every
attack, no 5xx but 503, RSS within the documented budget, and the service healthy afterwards. Numbers are printed
for the README."""

from __future__ import annotations

import asyncio
import io
import json
import math
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
from service.contract import INPUT_NAME
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
    assert set(statuses) <= {400, 503} and 400 in statuses  # 503: over the buffered-upload budget
    watch.assert_healthy("parser bombs (12 uploads of about 10 MB: JPEG markers, PNG chunks, GIF blocks)")
    for kind, data in bombs:  # one at a time, within the budget: each parser refuses its bomb
        response = httpx.post(f"{base}/v1/classify", content=data, headers={"content-type": kind}, timeout=60)
        assert response.status_code == 400, (kind, response.text)
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


def test_past_the_connection_cap_with_every_connection_busy_only_health_is_answered():
    with running_service(CONVLENS_MAX_CONNECTIONS="10") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        busy = [socket.create_connection((host, int(port))) for _ in range(12)]
        try:
            for sock in busy:  # each inside a request: its head sent, its body still arriving
                sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            time.sleep(0.2)
            assert httpx.get(f"{base}/healthz").status_code == 200
            refused = httpx.get(f"{base}/v1/models")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        finally:
            for sock in busy:
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


def v2_request(images: np.ndarray, binary_output: bool | None = None) -> dict:
    """A /v2 inference of ``images`` sent as a binary tensor, asking for every layer (no ``outputs`` listed)."""
    data = images.astype("<f4").tobytes()
    document: dict = {
        "inputs": [
            {
                "name": INPUT_NAME,
                "shape": list(images.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(data)},
            }
        ]
    }
    if binary_output is not None:
        document["parameters"] = {"binary_data_output": binary_output}
    head = json.dumps(document).encode()
    headers = {"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))}
    return {"method": "POST", "url": "/v2/models/classifier/infer", "content": head + data, "headers": headers}


def raw_request(request: dict, extra_headers: bytes = b"") -> bytes:
    """``request`` (as for ``burst``) as the bytes of an HTTP/1.1 request."""
    headers = "".join(f"{name}: {value}\r\n" for name, value in request["headers"].items())
    return (
        f"{request['method']} {request['url']} HTTP/1.1\r\nHost: x\r\n{headers}"
        f"Content-Length: {len(request['content'])}\r\n".encode()
        + extra_headers
        + b"\r\n"
        + request["content"]
    )


def budget_mb(**settings: object) -> float:
    """The worst case the service's settings allow, in MB: the RSS a hostile client must never push it past."""
    return Settings(**settings).memory_budget().total / 2**20


def digits(count: int) -> np.ndarray:
    return np.random.default_rng(count).random((count, 28, 28, 1), np.float32)


def address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def test_answers_are_refused_before_they_outgrow_their_budget_and_large_ones_stream(service):
    base, process = service
    limit = Settings().max_response_bytes
    every_layer_as_json = v2_request(digits(247))  # the issue's: 16.7 M values as JSON numbers
    refused = httpx.request(**{**every_layer_as_json, "url": base + every_layer_as_json["url"]}, timeout=30)
    assert refused.status_code == 413
    assert (
        f"the limit is {limit:,} bytes" in refused.json()["error"] and "binary_data_output" in refused.json()["error"]
    )
    large_binary = v2_request(digits(60), binary_output=True)  # 16 MB of tensors, streamed
    large_json = v2_request(digits(12))  # 815 K values as JSON numbers, streamed
    with Watch(base, process.pid).running() as watch:
        statuses = asyncio.run(burst(base, [every_layer_as_json] * 6 + [large_binary, large_json] * 2))
    assert set(statuses[:6]) <= {413, 503} and set(statuses[6:]) <= {200, 503} and 200 in statuses  # 503: slots busy
    watch.assert_healthy("6 answers of 16.7 M JSON numbers asked for, 4 large answers streamed")
    assert max(watch.rss) <= budget_mb()
    answer = httpx.request(**{**large_json, "url": base + large_json["url"]}, timeout=30).json()
    assert all(len(output["data"]) == math.prod(output["shape"]) for output in answer["outputs"])
    assert server_errors(base) == {}


def test_answers_nobody_reads_are_bounded_and_their_connections_closed():
    settings = {"CONVLENS_SEND_STALL_SECONDS": "1"}
    with running_service(**settings) as (base, process):
        request = v2_request(digits(200), binary_output=True)  # a 54 MB answer
        answer_bytes = 200 * sum(math.prod(shape) * 4 for shape in classifier_layer_shapes())
        readers = []
        with Watch(base, process.pid).running() as watch:
            for _ in range(8):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                sock.connect(address(base))
                sock.sendall(raw_request(request))
                readers.append(sock)
            statuses = [int(sock.recv(12).split()[1]) for sock in readers]  # the status line, then nothing read
            ordinary = [classify_status(base) for _ in range(12) if not time.sleep(0.25)]
        assert set(statuses) <= {200, 503} and 200 in statuses
        watch.assert_healthy("8 clients not reading 54 MB answers")
        assert max(watch.rss) <= budget_mb(send_stall_seconds=1)
        assert ordinary.count(200) >= 9, ordinary
        for sock in readers:  # the server cut every unread answer off: far less than it arrives
            assert received_until_closed(sock) < answer_bytes / 2
        assert counter(base, "convlens_pending_answer_bytes") == 0
        assert server_errors(base) == {}


def classifier_layer_shapes() -> list[list[int]]:
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    return [output["shape"][1:] for output in manifest["models"]["classifier"]["outputs"]]


def classify_status(base: str, **headers: str) -> int:
    return httpx.post(
        f"{base}/v1/classify", content=DIGIT, headers={"content-type": "image/png", **headers}, timeout=30
    ).status_code


def received_until_closed(sock: socket.socket, seconds: float = 10) -> int:
    """Bytes read from ``sock`` until the server closes it (failing after ``seconds``)."""
    sock.settimeout(seconds)
    received = 0
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return received


def test_connections_that_never_speak_or_drip_their_head_are_closed_and_lock_nobody_out():
    with running_service(CONVLENS_MAX_CONNECTIONS="32", CONVLENS_HEAD_TIMEOUT_SECONDS="1") as (base, process):
        silent = [socket.create_connection(address(base)) for _ in range(64)]
        drippers = [socket.create_connection(address(base)) for _ in range(4)]
        stop = threading.Event()

        def drip() -> None:
            for byte in b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n":
                for sock in drippers:
                    try:
                        sock.send(bytes([byte]))
                    except OSError:
                        pass
                if stop.wait(0.1):
                    return

        dripping = threading.Thread(target=drip)
        dripping.start()
        with Watch(base, process.pid).running() as watch:
            started = time.perf_counter()
            ordinary = []
            while time.perf_counter() - started < 2.5:
                ordinary.append(httpx.get(f"{base}/v1/models").status_code)
                time.sleep(0.1)
        stop.set()
        dripping.join()
        watch.assert_healthy("64 silent and 4 dripping connections past a cap of 32")
        assert set(ordinary) == {200}, ordinary
        for sock in silent:
            assert received_until_closed(sock, 1) == 0
        answers = [sock.recv(64) for sock in drippers if not sock.settimeout(1)]
        assert all(answer == b"" or answer.startswith(b"HTTP/1.1 408") for answer in answers), answers
        assert server_errors(base) == {}


def test_headers_without_a_key_reserve_no_upload_buffer():
    key = {"x-api-key": "k1"}
    buffer = 4 * 2**20
    with running_service(CONVLENS_API_KEYS="k1", CONVLENS_MAX_BUFFERED_UPLOAD_BYTES=str(buffer)) as (base, process):
        keyless = []
        for declared in [10 * 2**20] * 4 + [8 * 2**20]:  # the issue's: 48 MiB declared in headers, about 400 bytes
            sock = socket.create_connection(address(base))
            sock.sendall(f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n".encode())
            keyless.append(sock)
        assert all(sock.recv(12).startswith(b"HTTP/1.1 401") for sock in keyless)
        keyed_silent = []  # keyed, declaring 3 x 3 MiB, sending none of it
        for _ in range(3):
            sock = socket.create_connection(address(base))
            head = f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nX-API-Key: k1\r\nContent-Length: {3 * 2**20}\r\n\r\n"
            sock.sendall(head.encode())
            keyed_silent.append(sock)
        with Watch(base, process.pid).running() as watch:
            statuses = [classify_status(base, **key) for _ in range(10)]
            junk = httpx.post(
                f"{base}/v1/classify",
                content=bytes(3 * 2**20),
                headers={"content-type": "image/png", **key},
                timeout=30,
            )
        for sock in keyless + keyed_silent:
            sock.close()
        assert statuses == [200] * 10 and junk.status_code in (400, 415)  # had room: declared lengths hold none
        watch.assert_healthy("5 keyless and 3 silent keyed uploads declaring 57 MiB")
        assert max(watch.rss) <= budget_mb(max_buffered_upload_bytes=buffer, api_keys=["k1"])
        assert server_errors(base) == {}


def test_two_clients_looping_heavy_work_leave_capacity_for_ordinary_requests():
    keys = ["attacker-1", "attacker-2", "ordinary"]
    with running_service(CONVLENS_API_KEYS=",".join(keys)) as (base, process):
        buffer = io.BytesIO()
        np.save(buffer, np.random.default_rng(0).integers(0, 256, (64, 28, 28), np.uint8))
        heavy = buffer.getvalue()  # 64 images x 64 steps: 4,096 image-evaluations
        stop = threading.Event()
        attacks: list[int] = []

        def attack(key: str) -> None:
            with httpx.Client(base_url=base, timeout=60, headers={"x-api-key": key}) as client:
                while not stop.is_set():
                    attacks.append(
                        client.post(
                            "/v1/attribution/integrated-gradients/batch",
                            params={"steps": 64},
                            content=heavy,
                            headers={"content-type": "application/x-npy"},
                        ).status_code
                    )

        attackers = [threading.Thread(target=attack, args=(key,)) for key in keys[:2]]
        with Watch(base, process.pid).running() as watch:
            for thread in attackers:
                thread.start()
            time.sleep(0.5)
            ordinary = [classify_status(base, **{"x-api-key": "ordinary"}) for _ in range(20) if not time.sleep(0.3)]
            stop.set()
            for thread in attackers:
                thread.join()
        MEASURED["fair shares"] = f"{ordinary.count(200)} of 20 classifications served; heavy answers {attacks}"
        assert set(attacks) <= {200, 503} and 200 in attacks
        assert ordinary.count(200) >= 19, ordinary
        watch.assert_healthy("two clients looping integrated-gradients batches")
        assert max(watch.rss) <= budget_mb(api_keys=keys)
        assert server_errors(base) == {}


def npy_with_header(header: bytes, data: bytes = bytes(3 * 28 * 28)) -> bytes:
    """A .npy body (format 1.0) whose header text is ``header``, padded as numpy pads it."""
    padded = header + b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(padded)) + padded + data


CRAFTED_NPY_HEADERS = {
    "3,000 additions": b"{'descr': '|u1', 'fortran_order': False, 'shape': (3, 28, 28" + b"+0" * 3000 + b"), }",
    "one addition": b"{'descr': '|u1', 'fortran_order': False, 'shape': (3, 28, 28+0), }",
    "2,000 parentheses": b"{'descr': '|u1', 'fortran_order': False, 'shape': " + b"(" * 2000 + b")" * 2000 + b"}",
    "a 5,000-digit size": b"{'descr': '|u1', 'fortran_order': False, 'shape': (3" + b"0" * 5000 + b", 28, 28), }",
    "a call": b"{'descr': '|u1', 'fortran_order': False, 'shape': __import__('os').getpid()}",
    "a nested dict": b"{'descr': {'a': {'b': {}}}, 'fortran_order': False, 'shape': (3, 28, 28)}",
    "a list shape": b"{'descr': '|u1', 'fortran_order': False, 'shape': [3, 28, 28]}",
    "an unknown key": b"{'descr': '|u1', 'fortran_order': False, 'shape': (3, 28, 28), 'x': 1}",
    "bytes": b"{'descr': b'|u1', 'fortran_order': False, 'shape': (3, 28, 28)}",
    "not text": b"{'descr': '\xff\xfe', 'fortran_order': False, 'shape': (3, 28, 28)}",
}


@pytest.mark.parametrize("path", ["/v1/classify/batch", "/v1/attribution/saliency/batch"])
def test_a_crafted_npy_header_is_a_400_saying_what_the_format_allows(service, path):
    base, process = service
    bodies = [npy_with_header(header) for header in CRAFTED_NPY_HEADERS.values()]
    with Watch(base, process.pid).running() as watch:
        answers = [
            httpx.post(f"{base}{path}", content=body, headers={"content-type": "application/x-npy"}, timeout=30)
            for body in bodies
        ]
    assert [answer.status_code for answer in answers] == [400] * len(bodies), [a.text[:200] for a in answers]
    assert all("object at" not in answer.text and len(answer.text) < 600 for answer in answers)
    watch.assert_healthy(f"{len(bodies)} crafted .npy headers to {path}")
    assert server_errors(base) == {}


def test_error_messages_and_redirects_leak_nothing(service):
    base, _ = service
    forged = httpx.post(
        f"{base}/v1/classify/batch",
        content=npy_with_header(CRAFTED_NPY_HEADERS["one addition"]),
        headers={"content-type": "application/x-npy"},
    )
    assert forged.status_code == 400 and not re.search(r"0x[0-9a-f]{6,}|object at", forged.text), forged.text
    for method in ("GET", "POST"):
        slash = httpx.request(method, f"{base}/v1/classify/", headers={"host": "evil.example"}, content=DIGIT)
        assert slash.status_code == 404 and "location" not in slash.headers, slash.headers
    odd_type = "text/" + "<script>" * 3000
    answer = httpx.post(f"{base}/v1/classify", content=DIGIT, headers={"content-type": odd_type})
    assert answer.status_code == 415 and len(answer.json()["error"]) < 400 and answer.text.count("<script>") <= 5
    assert server_errors(base) == {}


def container_memory_limits() -> dict[str, int]:
    """The memory limit of the service's container in each deployment of deploy/ and docker-compose.yml, in bytes."""
    kubernetes = (ROOT / "deploy" / "kubernetes" / "deployment.yaml").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    pod = re.search(r"limits:\s*\n\s*cpu: \S+\s*\n\s*memory: (\d+)Mi", kubernetes)
    container = re.search(r"mem_limit: \$\{CONVLENS_MEMORY:-(\d+)m\}", compose)
    return {"kubernetes": int(pod[1]) * 2**20, "compose": int(container[1]) * 2**20}


def test_the_container_memory_limit_holds_the_worst_case_the_settings_allow():
    budget = Settings().memory_budget()
    limits = container_memory_limits()
    MEASURED["memory budget"] = (
        f"baseline {budget.baseline / 2**20:.0f} + uploads {budget.uploads / 2**20:.0f} + work "
        f"{budget.work / 2**20:.0f} + answers {budget.answers / 2**20:.0f} = {budget.total / 2**20:.0f} MiB; "
        f"limits {', '.join(f'{name} {limit / 2**20:.0f} MiB' for name, limit in limits.items())}"
    )
    assert all(budget.total <= limit for limit in limits.values()), MEASURED["memory budget"]
    with running_service() as (base, process):
        for _ in range(20):
            assert classify_status(base) == 200
        resident = rss_mb(process.pid)
        MEASURED["baseline"] = (
            f"{resident:.0f} MB after start-up and 20 classifications; budget {budget.baseline / 2**20:.0f} MiB"
        )
        assert resident * 2**20 <= budget.baseline
