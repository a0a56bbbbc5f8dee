"""The real app on the shipped models, driven over HTTP (ASGI) by a test client."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from tests.helpers import MODELS, encode, link_shipped_models


@functools.cache
def shipped_models() -> Path:
    """The shipped models alone: variants trained locally (their ONNX files are not shipped) would change what
    the service lists, so the API tests see the same models on every checkout."""
    folder = Path(tempfile.mkdtemp(prefix="convlens-models-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return link_shipped_models(folder / "models")


def make_client(**settings) -> TestClient:
    return TestClient(create_app(Settings(model_dir=shipped_models(), **settings)))


@pytest.fixture(scope="session")
def client():
    with make_client() as test_client:
        yield test_client


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((MODELS / "manifest.json").read_text())


@pytest.fixture(scope="session")
def digit_png(mnist_test) -> bytes:
    """The first real test digit (a 7) as a 28x28 PNG."""
    return encode(mnist_test[0][0])
