"""The service started as users start it (``python -m service``) on a free loopback port, for tests over TCP."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.helpers import MODELS, ROOT, WITH_EXAMPLE, free_port, served_models, wait_ready


@contextmanager
def running_service(**env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the service with extra environment ``env``, wait for /readyz, yield (base URL, process), stop it. Its
    models folder is ``models/`` (with WITH_EXAMPLE set: ``served_models()``, the example imported beside)."""
    models = served_models() if os.environ.get(WITH_EXAMPLE) else MODELS
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "CONVLENS_MODEL_DIR": str(models), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(base, 30, process)
        except RuntimeError as exc:
            log.seek(0)
            raise RuntimeError(f"{exc}: {log.read().decode()[-2000:]}") from exc
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)
        log.close()
