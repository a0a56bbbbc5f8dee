"""GET /v1/filters/{layer}/{filter}/optimized, /v1/filters/{layer}/optimized and /v1/classes/{digit}/optimized."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from tests.api.conftest import MODELS
from tests.helpers import decode_png


@pytest.fixture(scope="module")
def shipped() -> dict[str, np.ndarray]:
    with np.load(MODELS / "optimized_inputs.npz") as archive:
        return {name: archive[name] for name in archive.files}


def test_one_filter_as_json_is_the_shipped_image_in_0_1(client, shipped):
    answer = client.get("/v1/filters/conv2/5/optimized", params={"format": "json"}).json()
    assert answer["layer"] == "conv2" and answer["index"] == 5 and answer["shape"] == [28, 28]
    np.testing.assert_allclose(answer["values"], shipped["conv2"][5] / 255.0, atol=1e-6)


def test_one_filter_as_png_is_its_pixels_upscaled(client, shipped):
    image = decode_png(client.get("/v1/filters/pool/12/optimized", params={"scale": 4, "labels": "false"}))
    assert image.size == (112, 112)
    np.testing.assert_array_equal(np.asarray(image)[::4, ::4], shipped["pool"][12])


def test_a_layer_grid_has_a_tile_per_filter(client):
    image = decode_png(client.get("/v1/filters/conv1/optimized", params={"scale": 1}))
    assert image.size == (6 * 28 + 5, 6 * 28 + 5)  # 32 tiles, 6 columns, 1 px gaps


def test_a_class_as_json_and_png(client, shipped):
    answer = client.get("/v1/classes/3/optimized", params={"format": "json"}).json()
    assert answer["layer"] == "output" and answer["index"] == 3
    np.testing.assert_allclose(answer["values"], shipped["classes"][3] / 255.0, atol=1e-6)
    assert decode_png(client.get("/v1/classes/3/optimized", params={"labels": "false"})).size == (224, 224)


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/v1/filters/conv1/32/optimized", 422, "filter 32 is out of range: layer 'conv1' has filters 0-31"),
        ("/v1/filters/conv9/0/optimized", 404, "has no layer 'conv9'"),
        ("/v1/filters/conv9/optimized", 404, "has no layer 'conv9'"),
        ("/v1/filters/dense1/optimized", 422, "layer 'dense1' has no feature maps"),
        ("/v1/classes/10/optimized", 422, "class 10 is out of range: the shipped classifiers' classes are 0-9"),
    ],
)
def test_errors_say_what_to_change(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_statistics_without_optimized_inputs_answer_503_naming_the_command(tmp_path):
    for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx", "top_images.npz", "plots"):
        os.symlink(MODELS / name, tmp_path / name)
    statistics = json.loads((MODELS / "statistics.json").read_text())
    statistics.pop("optimized_inputs")
    statistics.pop("digit_judge")
    (tmp_path / "statistics.json").write_text(json.dumps(statistics))
    with TestClient(create_app(Settings(model_dir=tmp_path))) as client:
        for url in ("/v1/filters/conv1/0/optimized", "/v1/filters/conv2/optimized", "/v1/classes/1/optimized"):
            response = client.get(url)
            assert response.status_code == 503
            assert "python -m training analyze" in response.json()["error"]
        assert client.get("/v1/statistics").status_code == 200
