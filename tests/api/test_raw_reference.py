"""The hot path's raw-ASGI reference (``bench/raw_asgi.py``) answers a classification as the service does, so that
``bench.hotpath`` compares the same work."""

import pytest
from fastapi.testclient import TestClient

from bench import raw_asgi
from tests.helpers import ROOT, served_models

DIGITS = [ROOT / "examples" / name for name in ("digit-7.png", "digit-2.png")]


@pytest.fixture(scope="module")
def reference():
    """The reference app on the models the API tests serve."""
    shipped = raw_asgi.SESSION, raw_asgi.THRESHOLD
    raw_asgi.SESSION, raw_asgi.THRESHOLD = raw_asgi.judged_session(served_models())
    yield TestClient(raw_asgi.app)
    raw_asgi.SESSION, raw_asgi.THRESHOLD = shipped


@pytest.mark.parametrize("path", DIGITS, ids=lambda path: path.name)
def test_the_raw_reference_answers_a_classification_field_for_field_as_the_service(client, reference, path):
    png = path.read_bytes()
    ours = client.post("/v1/classify", content=png, headers={"content-type": "image/png"}).json()
    assert reference.post("/v1/classify", content=png, headers={"content-type": "image/png"}).json() == ours


def test_the_raw_reference_reads_a_multipart_upload_as_the_service(client, reference):
    files = {"image": ("digit-7.png", DIGITS[0].read_bytes(), "image/png")}
    assert reference.post("/v1/classify", files=files).json() == client.post("/v1/classify", files=files).json()
