"""HTTP load from wrk (a compiled generator) against the service started as users start it, on loopback."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
LUA = Path(__file__).with_name("wrk") / "post.lua"


class WrkMissing(RuntimeError):
    """wrk is not installed."""


def require_wrk() -> str:
    """The wrk binary, or an error saying how to install it."""
    path = shutil.which("wrk")
    if not path:
        raise WrkMissing("wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu), then run again")
    return path


@dataclass
class Load:
    """What one wrk run measured."""

    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk(
    url: str,
    body: Path,
    content_type: str,
    connections: int,
    seconds: float,
    max_requests: int | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> Load:
    """POST ``body`` to ``url`` (with extra ``headers``; ``method`` GET sends no body) from ``connections``
    connections for ``seconds``; each wrk thread stops sending after its share of ``max_requests`` (wrk itself
    still waits out the duration)."""
    threads = min(2, connections)
    env = {
        **os.environ,
        "BENCH_METHOD": method,
        "BENCH_BODY": str(body),
        "BENCH_CONTENT_TYPE": content_type,
        "BENCH_HEADERS": "\n".join(f"{name}: {value}" for name, value in (headers or {}).items()),
        "BENCH_MAX_REQUESTS_PER_THREAD": str(-(-max_requests // threads) if max_requests else 0),
    }
    result = subprocess.run(
        [
            require_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, math.ceil(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + 60,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH "))
    raw = json.loads(line[len("BENCH ") :])
    return Load(
        raw["requests"],
        raw["duration_us"] / 1e6,
        raw["non2xx"],
        raw["socket_errors"],
        raw["p50_us"] / 1000,
        raw["p90_us"] / 1000,
        raw["p99_us"] / 1000,
    )


def free_port() -> int:
    """An unused TCP port on the loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float, process: subprocess.Popen, ready_path: str = "/readyz") -> None:
    """Poll ``url`` + ``ready_path`` until it answers 200. RuntimeError on timeout, or when ``process`` exits
    first."""
    started = time.perf_counter()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} before it was ready")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the service at {url} was not ready within {timeout:g} s")
        try:
            with urllib.request.urlopen(f"{url}{ready_path}", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Service:
    """A running service: its URL, the Python process serving it, and how long it took to be ready."""

    url: str
    pid: int
    ready_seconds: float

    def rss_mb(self) -> float:
        """Resident memory of the serving process and every process under it (workers), in MB."""
        return sum(rss_mb(pid) for pid in [self.pid, *_descendants(self.pid)])


@contextmanager
def serving(command: list[str], env: dict[str, str] | None = None, timeout: float = 120, ready_path: str = "/readyz"):
    """Start ``command`` (with HOST/PORT set) in its own process group, wait for ``ready_path`` to answer 200, stop
    it afterwards."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, timeout, process, ready_path)
        except RuntimeError as exc:
            raise RuntimeError(f"{' '.join(command)}: {exc}") from exc
        ready = time.perf_counter() - started
        python = [
            pid
            for pid in [process.pid, *_descendants(process.pid)]
            if b"python" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        yield Service(url, python[0], ready)
    finally:
        with suppress(ProcessLookupError):  # a command that exited early has no group left to stop
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def make_serve() -> list[str]:
    """The command users run."""
    return ["make", "-s", "serve"]


def keras_serve(python: str) -> list[str]:
    """The naive Keras server (bench only), on the HOST and PORT that ``serving`` sets."""
    return [
        "sh",
        "-c",
        f'exec "{python}" -m uvicorn bench.keras_app:create_keras_app --factory '
        '--host "$HOST" --port "$PORT" --no-access-log',
    ]
