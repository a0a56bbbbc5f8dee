"""The shortcut for a plain ``POST /v1/attribution/{method}`` (no query string, a raw image body or a multipart form)
answers exactly as FastAPI's routing answers the same request."""

import re

import pytest

from service.api.middleware import attribution_shortcut
from tests.helpers import ROOT, post_image

DIGIT = (ROOT / "examples" / "digit-7.png").read_bytes()
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def compared(response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body and headers, less the per-request ID."""
    headers = sorted((name, value) for name, value in response.headers.items() if name != "x-request-id")
    return response.status_code, response.content, headers


def both_ways(client, monkeypatch, send) -> tuple:
    """``send()``'s answer through the shortcut, and through FastAPI's routing; asserts the shortcut took the
    first and declined the second."""
    taken = []
    applies = attribution_shortcut.plain_post

    def recording(scope) -> bool:
        taken.append(applies(scope))
        return taken[-1]

    monkeypatch.setattr(attribution_shortcut, "plain_post", recording)
    shortcut = send()
    monkeypatch.setattr(attribution_shortcut, "plain_post", lambda scope: False)
    routed = send()
    assert taken == [True]
    return compared(shortcut), compared(routed)


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("grad-cam", DIGIT),
        ("layer-cam", DIGIT),
        ("eigen-cam", DIGIT),
        ("saliency", DIGIT),
        ("integrated-gradients", DIGIT),
        ("no-such-method", DIGIT),
        ("grad-cam", CORRUPT),
        ("grad-cam", b""),
    ],
    ids=["grad-cam", "layer-cam", "eigen-cam", "saliency", "ig", "unknown-method", "corrupt", "empty"],
)
def test_a_plain_attribution_answers_as_fastapis_routing_does(client, monkeypatch, method, data):
    shortcut, routed = both_ways(client, monkeypatch, lambda: post_image(client, f"/v1/attribution/{method}", data))
    assert shortcut == routed


def test_a_multipart_attribution_answers_as_fastapis_routing_does(client, monkeypatch):
    files = [("image", ("digit-7.png", DIGIT, "image/png"))]
    shortcut, routed = both_ways(client, monkeypatch, lambda: client.post("/v1/attribution/grad-cam", files=files))
    assert shortcut[0] == 200
    assert shortcut == routed


@pytest.mark.parametrize(
    ("path", "files"),
    [
        ("/v1/attribution/grad-cam?format=json", [("image", ("digit-7.png", DIGIT, "image/png"))]),
        ("/v1/attribution/grad-cam/batch", [("image", ("digit-7.png", DIGIT, "image/png"))]),
    ],
    ids=["query", "batch"],
)
def test_a_query_string_or_a_batch_goes_to_fastapi(client, monkeypatch, path, files):
    answered = []
    respond = attribution_shortcut.respond

    async def recording(request, answer, send) -> None:
        answered.append(request.url.path)
        await respond(request, answer, send)

    monkeypatch.setattr(attribution_shortcut, "respond", recording)
    answer = client.post(path, files=files)
    assert answer.status_code == 200, answer.text
    assert answered == []


def test_the_shortcut_counts_its_requests_under_the_route(client):
    def counted() -> float:
        text = client.get("/metrics").text
        found = re.search(
            r'convlens_requests_total\{method="POST",route="/v1/attribution/\{method\}",status="200"\} (\S+)', text
        )
        return float(found[1]) if found else 0.0

    before = counted()
    post_image(client, "/v1/attribution/grad-cam", DIGIT)
    assert counted() == before + 1
