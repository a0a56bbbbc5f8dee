"""What tests and bench share: paths, free ports, waiting for readiness, MNIST, image encoders, HTTP shortcuts."""

from __future__ import annotations

import atexit
import functools
import io
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from service.contract import VARIANTS_DIR
from training.data import MnistError, resolve_data_dir

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
DEFAULT_MNIST_DIR = "../shared/mnist"  # the Makefile's default, relative to the checkout
# Set (to 1) to run every test that starts a service with the example network imported beside the shipped models.
WITH_EXAMPLE = "CONVLENS_TESTS_WITH_IMPORTED_EXAMPLE"
EXAMPLE_ONNX = ROOT / "examples" / "models" / "mnist-cnn.onnx"
EXAMPLE_NAME = "mnist-cnn"


def mnist_dir() -> Path:
    """The real MNIST folder, found as the Makefile finds it: ``$MNIST_DIR``, else ``../shared/mnist`` from the
    checkout; absolute. MnistError when the test split is not there."""
    path = resolve_data_dir(os.environ.get("MNIST_DIR") or ROOT / DEFAULT_MNIST_DIR)
    if not any((path / name).exists() for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte")):
        raise MnistError(f"real MNIST not found in {path}; set MNIST_DIR to the folder holding the IDX files")
    return path


def free_port() -> int:
    """An unused TCP port on the loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float, process: subprocess.Popen | None = None) -> float:
    """Poll ``url/readyz`` until it answers 200; the seconds it took. RuntimeError on timeout, or when ``process``
    exits first."""
    started = time.perf_counter()
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} before it was ready")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the service at {url} was not ready within {timeout:g} s")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)


def encode(pixels: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    """A uint8 array as image file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` with no real pixel data (a decompression bomb's card)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def post_image(client, url: str, data: bytes, content_type: str = "image/png", **params):
    """POST ``data`` as the raw body."""
    return client.post(url, content=data, headers={"content-type": content_type}, params=params)


def decode_png(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return image


def link_shipped_models(target: Path) -> Path:
    """``target`` (created) holding symlinks to the shipped models and statistics, without ``models/variants``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in MODELS.iterdir():
        if path.name != VARIANTS_DIR:
            (target / path.name).symlink_to(path)
    return target


def server_errors(base: str) -> dict[str, float]:
    """Every 5xx but 503 the service has counted, by route and status (from /metrics)."""
    found = {}
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        match = re.match(r'convlens_requests_total\{.*route="([^"]+)".*status="(5\d\d)"\} (\S+)', line)
        if match and match[2] != "503" and float(match[3]) > 0:
            found[f"{match[1]} {match[2]}"] = float(match[3])
    return found


def import_example(models: Path, name: str = EXAMPLE_NAME) -> Path:
    """``models`` with the example network imported as ``name`` (``make import-example``)."""
    from service.importer import main

    assert main([str(EXAMPLE_ONNX), "--name", name, "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    return models


@functools.cache
def served_models() -> Path:
    """The models folder the tests' services run on: the shipped models alone (variants trained locally, whose ONNX
    files are not shipped, would change what the service lists, so the tests see the same models on every
    checkout), with the example network imported beside them when WITH_EXAMPLE is set."""
    folder = Path(tempfile.mkdtemp(prefix="convlens-models-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    models = link_shipped_models(folder / "models")
    return import_example(models) if os.environ.get(WITH_EXAMPLE) else models
