"""GET /v1/filters/{layer}/{filter}/evolution over HTTP, on the shipped classifier and the features recorded while it
trained; a missing or changed recording is a 503 that names the command, and the service still starts."""

from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.app import create_app
from service.api.settings import Settings
from service.contract import EVOLUTION_FILE
from service.pictures.labels import ROW_GAP as LABEL_GAP
from service.pictures.labels import ROW_LABEL_HEIGHT as LABEL_HEIGHT
from tests.helpers import MODELS, decode_png, link_shipped_models

EPOCHS = [1, 2, 3, 5, 8, 15]
SUBSET = 2000
LAYERS = {"conv1": 32, "conv2": 64, "pool": 64}


@pytest.fixture(scope="module")
def onnx_norms(mnist_test) -> dict[str, np.ndarray]:
    """Per layer, the L2 norms (N, C) of the first 2,000 test images under the shipped classifier, in plain numpy."""
    session = ort.InferenceSession(str(MODELS / "classifier.onnx"), providers=["CPUExecutionProvider"])
    maps = session.run(list(LAYERS), {"input": (mnist_test[0][:SUBSET].astype(np.float32) / 255.0)[..., None]})
    return {layer: np.sqrt((m.astype(np.float64) ** 2).sum(axis=(1, 2))) for layer, m in zip(LAYERS, maps)}


@pytest.mark.parametrize("layer, filter", [("conv1", 0), ("conv2", 17), ("pool", 63)])
def test_json_lists_the_strongest_image_of_each_recorded_epoch(client, onnx_norms, layer, filter):
    response = client.get(f"/v1/filters/{layer}/{filter}/evolution")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {key: body[key] for key in ("model", "layer", "filter", "split", "images")} == {
        "model": "classifier",
        "layer": layer,
        "filter": filter,
        "split": "test",
        "images": SUBSET,
    }
    assert [row["epoch"] for row in body["epochs"]] == EPOCHS
    assert all(0 <= row["index"] < SUBSET and row["norm"] >= 0 for row in body["epochs"])
    last, norms = body["epochs"][-1], onnx_norms[layer][:, filter]
    assert last["norm"] == pytest.approx(norms.max(), rel=1e-4)
    assert norms[last["index"]] == pytest.approx(norms.max(), rel=1e-4)


def test_the_features_evolve(client):
    norms = [row["norm"] for row in client.get("/v1/filters/conv2/5/evolution").json()["epochs"]]
    assert len(set(norms)) == len(EPOCHS)


def test_png_is_a_strip_of_each_epochs_image_beside_its_projection(client, mnist_test):
    scale = 3
    rows = client.get("/v1/filters/conv2/5/evolution").json()["epochs"]
    image = decode_png(client.get("/v1/filters/conv2/5/evolution", params={"format": "png", "scale": scale}))
    tile = (28 + 2 + 28) * scale
    assert image.mode == "L"
    assert image.size == (len(EPOCHS) * tile + (len(EPOCHS) - 1) * LABEL_GAP, 28 * scale + LABEL_HEIGHT)
    pixels = np.asarray(image)
    for column, row in enumerate(rows):
        left = column * (tile + LABEL_GAP)
        shown = pixels[: 28 * scale : scale, left : left + 28 * scale : scale]
        np.testing.assert_array_equal(shown, mnist_test[0][row["index"]])
        projection = pixels[: 28 * scale, left + 30 * scale : left + tile]
        assert projection.min() == 0 and projection.max() == 255


def test_png_without_the_input_images_shows_the_projections_alone(client):
    image = Image.open(
        io.BytesIO(client.get("/v1/filters/pool/3/evolution", params={"format": "png", "input": "false"}).content)
    )
    assert image.size == (len(EPOCHS) * 28 * 4 + (len(EPOCHS) - 1) * LABEL_GAP, 28 * 4 + LABEL_HEIGHT)


@pytest.mark.parametrize(
    "url, status, message",
    [
        ("/v1/filters/dense1/0/evolution", 404, "no feature evolution for layer 'dense1'; layers: conv1, conv2, pool"),
        ("/v1/filters/conv9/0/evolution", 404, "no feature evolution for layer 'conv9'; layers: conv1, conv2, pool"),
        ("/v1/filters/conv2/64/evolution", 422, "filter 64 is out of range: layer 'conv2' has filters 0-63"),
        ("/v1/filters/conv1/3/evolution?scale=0", 422, "scale must be between 1 and 32, got 0"),
        (
            "/v1/filters/conv1/3/evolution?model=autoencoder",
            404,
            "model 'autoencoder' has no recorded feature evolution (recorded: classifier); "
            "`python -m training train --only classifier` records the shipped classifier's",
        ),
    ],
)
def test_errors_say_what_to_change(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert response.json() == {"status": status, "error": message}


def test_an_unknown_model_is_a_404_listing_every_served_model(client):
    response = client.get("/v1/filters/conv1/3/evolution?model=vgg")
    served = ", ".join(model["name"] for model in client.get("/v1/models").json()["models"])
    assert response.status_code == 404
    assert response.json()["error"] == f"unknown model 'vgg'; available: {served}"
    assert served.startswith("classifier, autoencoder")


def _models_with(tmp_path, change) -> TestClient:
    """The shipped models linked into ``tmp_path``, the recording replaced by ``change(bytes)`` (None: removed)."""
    folder = link_shipped_models(tmp_path / "models")
    (folder / EVOLUTION_FILE).unlink()
    changed = change((MODELS / EVOLUTION_FILE).read_bytes())
    if changed is not None:
        (folder / EVOLUTION_FILE).write_bytes(changed)
    return TestClient(create_app(Settings(model_dir=folder)))


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "has SHA-256"),
        (lambda data: None, "is missing"),
    ],
)
def test_a_changed_or_missing_recording_is_a_503_naming_the_command(tmp_path, change, reason):
    with _models_with(tmp_path, change) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/filters/conv1/0/top-images").status_code == 200
        response = client.get("/v1/filters/conv1/0/evolution")
        assert response.status_code == 503
        error = response.json()["error"]
        assert str(tmp_path / "models" / EVOLUTION_FILE) in error and reason in error
        assert "python -m training train" in error and "--only classifier" in error
