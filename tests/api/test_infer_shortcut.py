"""The shortcut for ``POST /v2/models/{model_name}/infer`` (no query string) answers exactly as FastAPI's routing
answers the same request, errors included, and is counted under the route."""

import re

import numpy as np
import pytest

from service.api.middleware import infer_shortcut
from tests.api.test_classify_shortcut import compared
from tests.api.test_inference_protocol import binary_request, json_request

IMAGE = np.linspace(0, 1, 784, dtype=np.float32).reshape(1, 28, 28, 1)
BINARY_BODY, BINARY_HEADERS = binary_request(IMAGE, ["output", "pool"])


def recorded(monkeypatch) -> list[bool]:
    """Whether the shortcut took each request it saw."""
    taken: list[bool] = []
    name_of = infer_shortcut.InferShortcut._model_name

    def recording(scope) -> str | None:
        name = name_of(scope)
        if scope["type"] == "http":
            taken.append(name is not None)
        return name

    monkeypatch.setattr(infer_shortcut.InferShortcut, "_model_name", staticmethod(recording))
    return taken


@pytest.mark.parametrize(
    ("path", "request_"),
    [
        ("/v2/models/classifier/infer", {"json": json_request(IMAGE, ["output"])}),
        ("/v2/models/classifier/infer", {"content": BINARY_BODY, "headers": BINARY_HEADERS}),
        ("/v2/models/autoencoder/infer", {"json": json_request(IMAGE, ["decoded"])}),
        ("/v2/models/vgg/infer", {"json": json_request(IMAGE, ["output"])}),
        ("/v2/models/classifier/infer", {"json": json_request(IMAGE, ["fc9"])}),
        ("/v2/models/classifier/infer", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("/v2/models/classifier/infer", {"json": json_request(IMAGE * 2, ["output"])}),
        (
            "/v2/models/classifier/infer",
            {"content": b"{}", "headers": {"content-type": "application/json", "content-encoding": "gzip"}},
        ),
    ],
    ids=["json", "binary", "autoencoder", "unknown-model", "unknown-output", "malformed", "out-of-range", "gzip"],
)
def test_an_inference_answers_as_fastapis_routing_does(client, monkeypatch, path, request_):
    taken = recorded(monkeypatch)
    shortcut = client.post(path, **request_)
    monkeypatch.setattr(infer_shortcut.InferShortcut, "_model_name", staticmethod(lambda scope: None))
    routed = client.post(path, **request_)
    assert taken == [True]
    assert compared(shortcut) == compared(routed)


def test_a_versioned_inference_goes_to_fastapi(client, monkeypatch):
    taken = recorded(monkeypatch)
    response = client.post("/v2/models/classifier/versions/1/infer", json=json_request(IMAGE, ["output"]))
    assert response.status_code == 200
    assert taken == [False]


def test_the_shortcut_counts_its_requests_under_the_route(client):
    def inferred() -> float:
        text = client.get("/metrics").text
        pattern = r'convlens_requests_total\{method="POST",route="/v2/models/\{model_name\}/infer",status="200"\} (\S+)'
        found = re.search(pattern, text)
        return float(found[1]) if found else 0.0

    before = inferred()
    client.post("/v2/models/classifier/infer", json=json_request(IMAGE, ["output"]))
    assert inferred() == before + 1
