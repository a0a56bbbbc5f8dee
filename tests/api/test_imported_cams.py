"""The CAM family on imported models over HTTP against pytorch-grad-cam on their PyTorch originals: the example
MNIST CNN (its last ReLU) and a torchvision resnet18 (weights=None, 64x64, at ``layer3``, a residual block's
output); each raw map (before pytorch-grad-cam's min-max scaling and resizing) correlates at least 0.999 with the
reference's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from references.grad_cam_maps import CAMS, raw_cam_maps
from service.api.middleware.work_cost import request_cost
from service.contract import IMPORTED_DIR
from service.images.preprocessing import upload_input
from service.importer import main
from tests.api.test_imported_gradients import (
    EXAMPLE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SIDE,
    SUBJECTS,
    Served,
    exposed_layer,
    manifest_of,
    values,
)
from tests.graphs.test_against_captum_torchvision import onnx_tensor_of
from tests.helpers import link_shipped_models
from tests.importer.frameworks import export_torch
from tests.importer.over_http import serving

MIN_CORRELATION = 0.999
GRADIENT_CAMS = ["grad-cam-plus-plus", "hires-cam", "xgrad-cam", "layer-cam"]
FORWARD_CAMS = ["eigen-cam", "score-cam", "ablation-cam"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cams")
    models = link_shipped_models(folder / "models")
    assert main([str(EXAMPLE), "--name", "mnist-cnn", "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    resnet = export_torch(SUBJECTS["resnet18"].original(), folder / "resnet18.onnx", SIDE)
    imagenet = ["--mean", ",".join(map(str, IMAGENET_MEAN)), "--std", ",".join(map(str, IMAGENET_STD))]
    assert main([str(resnet), "--name", "resnet18", "--resize", str(SIDE), *imagenet, "--models-dir", str(models)]) == 0
    return models


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


@pytest.fixture(scope="module", params=list(SUBJECTS))
def served(request, models) -> Served:
    subject = SUBJECTS[request.param]
    manifest = manifest_of(models, subject.name)
    spec = manifest.input
    image = upload_input(subject.upload, manifest, max_pixels=10**6).reshape(1, spec.channels, spec.height, spec.width)
    return Served(subject, manifest, image.astype(np.float32), subject.original())


def post(client, served: Served, method: str, **params):
    return client.post(
        f"/v1/attribution/{method}",
        params={"model": served.subject.name, "format": "json", **params},
        content=served.subject.upload,
        headers={"content-type": "image/png"},
    )


def reference(served: Served, method: str, target: int) -> np.ndarray:
    module = served.model.get_submodule(served.subject.module)
    return raw_cam_maps(method, served.model, module, served.image, np.array([target]))[0]


@pytest.mark.parametrize("method", GRADIENT_CAMS + FORWARD_CAMS)
def test_a_cam_of_an_imported_model_correlates_with_pytorch_grad_cam_s_raw_map(client, served, models, method):
    response = post(client, served, method, layer=exposed_layer(models, served))
    assert response.status_code == 200, response.text
    answer = response.json()
    ours, expected = values(answer), reference(served, method, answer["target"])
    assert ours.shape == expected.shape and ours.max() > 0 and answer["signed"] is False
    assert np.corrcoef(ours.ravel(), expected.ravel())[0, 1] >= MIN_CORRELATION
    assert np.array(answer["pixels"]).shape == served.image.shape[2:]


@pytest.mark.parametrize("method", GRADIENT_CAMS + FORWARD_CAMS)
def test_a_cam_defaults_to_the_last_spatial_layer(client, served, method):
    response = post(client, served, method)
    assert response.status_code == 200, response.text
    spatial = [layer.name for layer in served.manifest.layers if len(layer.shape) == 4 and min(layer.shape[2:]) > 1]
    assert response.json()["parameters"]["layer"] == spatial[-1]


def test_the_cam_family_is_listed_among_an_imported_model_s_methods(client):
    listed = client.get("/v1/models/resnet18").json()["capabilities"]["attribution_methods"]
    assert set(CAMS) <= set(listed)


def exposed_layer_of(models: Path, manifest) -> str:
    """The exposed layer showing resnet18's ``layer3`` output."""
    proto = onnx.load(str(models / IMPORTED_DIR / "resnet18" / manifest.source.file))
    tensor = onnx_tensor_of(proto, SUBJECTS["resnet18"].module)
    return next(entry.name for entry in manifest.layers if entry.tensor == tensor)


def resnet(models: Path) -> Served:
    """The resnet18 subject for requests that need no reference map."""
    return Served(SUBJECTS["resnet18"], manifest_of(models, "resnet18"), np.zeros(1), None)


def test_ablation_cam_at_a_layer_a_skip_connection_bypasses_is_a_422_naming_the_layer(client, models):
    inside = next(
        layer.name
        for layer in manifest_of(models, "resnet18").layers
        if layer.tensor.startswith("/layer3/layer3.1/relu/") and len(layer.shape) == 4
    )
    response = post(client, resnet(models), "ablation-cam", layer=inside)
    assert response.status_code == 422, response.text
    assert inside in response.json()["error"] and "not a cut" in response.json()["error"]


def test_score_cam_over_the_work_limit_is_a_413_naming_the_limit(models):
    with serving(models, max_gradient_work=100) as limited:
        response = post(limited, resnet(models), "score-cam")
    assert response.status_code == 413, response.text
    assert "CONVLENS_MAX_GRADIENT_WORK is 100" in response.json()["error"]


def test_admission_weighs_score_cam_by_the_layer_s_channels_plus_one_forward_runs(client, models):
    manifest = manifest_of(models, "resnet18")
    layer = exposed_layer_of(models, manifest)
    channels = next(entry.shape[1] for entry in manifest.layers if entry.name == layer)
    cost = client.get("/v1/models/resnet18").json()["cost"]
    query = f"model=resnet18&layer={layer}".encode()
    scope = {"app": client.app, "path": "/v1/attribution/score-cam", "query_string": query, "headers": []}
    assert request_cost(scope, b"", 64, 100, 100) == (channels + 1) * cost
