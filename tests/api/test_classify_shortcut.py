"""The shortcut for a plain ``POST /v1/classify`` (no query string, a raw image body or a multipart form) answers
exactly as FastAPI's routing answers the same request (a query string that changes nothing takes that path)."""

import re

import pytest

from service.api.middleware import classify_shortcut
from tests.helpers import ROOT, post_image

CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def compared(response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and headers, less the per-request ID."""
    headers = sorted((name, value) for name, value in response.headers.items() if name != "x-request-id")
    return response.status_code, response.content, headers


def routed_by_fastapi(monkeypatch, client, data: bytes, content_type: str):
    """The same request with the shortcut declining it."""
    monkeypatch.setattr(classify_shortcut.ClassifyShortcut, "_applies", lambda self, scope: False)
    return post_image(client, "/v1/classify", data, content_type)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ((ROOT / "examples" / "digit-7.png").read_bytes(), "image/png"),
        ((ROOT / "examples" / "photo-3.jpg").read_bytes(), "image/jpeg"),
        (CORRUPT, "image/png"),
        (b"", "image/png"),
        ((ROOT / "examples" / "digit-7.png").read_bytes(), "image/x-unknown"),
    ],
    ids=["png", "jpeg-photo", "corrupt", "empty", "unknown-type"],
)
def test_a_plain_classification_answers_as_fastapis_routing_does(client, monkeypatch, data, content_type):
    shortcut = post_image(client, "/v1/classify", data, content_type)
    assert compared(shortcut) == compared(routed_by_fastapi(monkeypatch, client, data, content_type))


DIGIT = (ROOT / "examples" / "digit-7.png").read_bytes()


@pytest.mark.parametrize(
    "files",
    [
        [("image", ("digit-7.png", DIGIT, "image/png"))],
        [("file", ("digit-7.png", DIGIT, "image/png"))],
        [("image", ("a.png", DIGIT, "image/png")), ("image", ("b.png", DIGIT, "image/png"))],
        [("image", ("corrupt.png", CORRUPT, "image/png"))],
    ],
    ids=["one-image", "other-field", "two-images", "corrupt"],
)
def test_a_multipart_classification_answers_as_fastapis_routing_does(client, monkeypatch, files):
    taken = []
    applies = classify_shortcut.ClassifyShortcut._applies

    def recording(self, scope) -> bool:
        taken.append(applies(self, scope))
        return taken[-1]

    monkeypatch.setattr(classify_shortcut.ClassifyShortcut, "_applies", recording)
    shortcut = client.post("/v1/classify", files=files)
    monkeypatch.setattr(classify_shortcut.ClassifyShortcut, "_applies", lambda self, scope: False)
    routed = client.post("/v1/classify", files=files)
    assert taken == [True]
    assert compared(shortcut) == compared(routed)


def test_the_shortcut_counts_its_requests_under_the_route(client):
    def classified() -> float:
        text = client.get("/metrics").text
        found = re.search(r'convlens_requests_total\{method="POST",route="/v1/classify",status="200"\} (\S+)', text)
        return float(found[1]) if found else 0.0

    before = classified()
    post_image(client, "/v1/classify", (ROOT / "examples" / "digit-7.png").read_bytes())
    assert classified() == before + 1
