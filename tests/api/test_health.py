"""Liveness, readiness and the model descriptions."""

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from tests.api.conftest import MODELS


def test_healthz_says_ok(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_lists_the_loaded_models(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "models": ["classifier", "autoencoder"]}


def test_models_lists_both_models_with_their_layers_and_metrics(client, manifest):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["classifier"]["layers"] == ["conv1", "conv2", "pool", "dense1", "output"]
    assert models["classifier"]["total_params"] == 1_199_882
    assert (
        models["classifier"]["metrics"]["test_accuracy"] == manifest["models"]["classifier"]["metrics"]["test_accuracy"]
    )
    assert "encoded" in models["autoencoder"]["layers"] and "decoded" in models["autoencoder"]["layers"]


def test_model_detail_gives_layers_with_type_shape_and_parameters(client):
    detail = client.get("/v1/models/classifier").json()
    layers = {layer["name"]: layer for layer in detail["layer_details"]}
    assert layers["conv2"] == {
        "name": "conv2",
        "type": "Conv2D",
        "output_shape": [24, 24, 64],
        "params": 18_496,
        "exposed": True,
    }
    assert layers["dropout1"]["exposed"] is False
    assert sum(layer["params"] for layer in layers.values()) == detail["total_params"]
    assert len(detail["metrics"]["confusion_matrix"]) == 10
    assert len(detail["history"]["val_accuracy"]) == detail["training"]["epochs"]


def test_unknown_model_detail_is_404_listing_the_models(client):
    response = client.get("/v1/models/resnet")
    served = ", ".join(model["name"] for model in client.get("/v1/models").json()["models"])
    assert response.status_code == 404
    assert response.json()["error"] == f"unknown model 'resnet'; available: {served}"
    assert served.startswith("classifier, autoencoder")


def test_readyz_is_503_until_the_models_are_loaded():
    not_started = TestClient(create_app(Settings(model_dir=MODELS)))
    response = not_started.get("/readyz")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert not_started.get("/healthz").status_code == 200
