"""The service started as users start it (``python -m service``) on a free loopback port, for tests over TCP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_service(**env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the service with extra environment ``env``, wait for /readyz, yield (base URL, process), stop it."""
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env={**os.environ, "CONVLENS_MODEL_DIR": str(ROOT / "models"), **env},
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            log.seek(0)
            raise RuntimeError(f"service did not become ready within 30 s: {log.read().decode()[-2000:]}")
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)
        log.close()
