"""The real app on the shipped models, driven over HTTP (ASGI) by a test client."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from tests.helpers import MODELS, encode, link_shipped_models

# Set (to 1) to run every API test with the example network imported beside the shipped models.
WITH_EXAMPLE = "CONVLENS_TESTS_WITH_IMPORTED_EXAMPLE"


@functools.cache
def shipped_models() -> Path:
    """The shipped models alone: variants trained locally (their ONNX files are not shipped) would change what
    the service lists, so the API tests see the same models on every checkout. With WITH_EXAMPLE set, the example
    network imported beside them (``make import-example``)."""
    folder = Path(tempfile.mkdtemp(prefix="convlens-models-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    models = link_shipped_models(folder / "models")
    if os.environ.get(WITH_EXAMPLE):
        from service.importer import main

        example = MODELS.parent / "examples" / "models" / "mnist-cnn.onnx"
        assert main([str(example), "--name", "mnist-cnn", "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    return models


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
