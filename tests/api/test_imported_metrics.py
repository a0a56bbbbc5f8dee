"""Quality metrics of an imported model's maps on /v1/attribution/{method}?model=NAME&metrics over HTTP, on the
real app with the shipped example imported (examples/models/mnist-cnn.onnx, MNIST normalisation): each metric
against Quantus 0.6.0 (or a brute-force loop) on the example's PyTorch original fed the input the service prepared,
with the service's own seeded draws handed to Quantus; the sanity flag fails for a map blind to the model; the
batch route equals the single one; the cost and applicability refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.images.preprocessing import upload_input
from service.importer import main
from tests.api.test_imported_gradients import EXAMPLE, SUBJECTS, manifest_of
from tests.graphs.test_against_captum_torchvision import mnist_example
from tests.helpers import link_shipped_models
from tests.importer.over_http import serving

NAME = "mnist-cnn"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    models = link_shipped_models(tmp_path_factory.mktemp("metrics") / "models")
    assert main([str(EXAMPLE), "--name", NAME, "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    return models


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def example(models):
    """The upload's input as the service prepares it (1, 1, 28, 28), its normalised black and 1 / std, and the
    PyTorch original of the example."""
    manifest = manifest_of(models, NAME)
    image = upload_input(SUBJECTS[NAME].upload, manifest, max_pixels=10**6).reshape(1, 1, 28, 28).astype(np.float32)
    mean, std = manifest.preprocessing.mean[0], manifest.preprocessing.std[0]
    return image, np.float32(-mean / std), 1 / std, mnist_example()


def ask(client, method: str, metrics: str, **params) -> dict:
    response = client.post(
        f"/v1/attribution/{method}",
        params={"model": NAME, "format": "json", "metrics": metrics, **params},
        content=SUBJECTS[NAME].upload,
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def pixels(answer: dict) -> np.ndarray:
    return np.array(answer["values"], np.float64).reshape(1, 1, 28, 28)


def test_metrics_all_answers_every_metric_but_the_completeness_gap_for_saliency(client):
    metrics = ask(client, "saliency", "all")["metrics"]
    assert metrics["completeness_gap"] is None
    assert set(metrics["sanity"]) == {"passes", "parameter_randomization", "random_logit"}
    assert metrics["sanity"]["passes"] is True
