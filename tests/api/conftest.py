"""The real app on the shipped models, driven over HTTP (ASGI) by a test client."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from tests.helpers import MODELS, encode, served_models


def make_client(**settings) -> TestClient:
    return TestClient(create_app(Settings(model_dir=served_models(), **settings)))


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
