"""Invariance of imported models over HTTP (the example ``mnist-cnn`` and a torchvision ResNet-18 at 64 x 64 with
random weights): every curve checked against the same transforms done by ``scipy.ndimage`` on the model's input,
per channel with the model's normalised black outside, and the model run in plain onnxruntime."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision
from PIL import Image
from scipy import ndimage

from service.api.middleware.work_cost import request_cost
from service.contract import IMPORTED_DIR, MANIFEST_FILE, ImportedModel, read_document
from service.images.preprocessing import upload_input
from service.importer import ImportOptions, import_model
from tests.helpers import EXAMPLE_NAME, decode_png, encode, import_example, link_shipped_models
from tests.importer.frameworks import export_torch
from tests.importer.over_http import serving

RESNET = "resnet18-64"
SIDE = 64
TOLERANCE = 1e-5
STEPS = 9


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("invariance")
    models = import_example(link_shipped_models(folder / "models"))
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    options = ImportOptions(name=RESNET, models_dir=models, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    import_model(export_torch(resnet, folder / "resnet18.onnx", SIDE), options)
    return models


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def uploads(mnist_test) -> dict[str, bytes]:
    photo = np.random.default_rng(2).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    return {EXAMPLE_NAME: encode(mnist_test[0][0]), RESNET: encode(photo)}


def curves(client, name: str, image: bytes, **params):
    return client.post(
        "/v1/invariance", params={"model": name, **params}, content=image, headers={"content-type": "image/png"}
    )


def by_scipy(planes: np.ndarray, transform: str, amount: float, fill: np.ndarray) -> np.ndarray:
    """One input (C, H, W) under one amount, each channel by scipy.ndimage (bilinear, ``fill`` outside)."""
    centre = (np.array(planes.shape[1:]) - 1) / 2
    out = []
    for plane, black in zip(planes.astype(np.float64), fill):
        common = {"order": 1, "mode": "grid-constant", "cval": float(black)}
        if transform == "shift-x":
            out.append(ndimage.shift(plane, (0, amount), **common))
        elif transform == "shift-y":
            out.append(ndimage.shift(plane, (amount, 0), **common))
        elif transform == "rotate":
            out.append(ndimage.rotate(plane, amount, reshape=False, **common))
        else:
            matrix = np.diag([1 / amount, 1 / amount])
            out.append(ndimage.affine_transform(plane, matrix, offset=centre - centre / amount, **common))
    return np.stack(out).astype(np.float32)


def reference(models: Path, name: str, image: bytes, transform: str, amounts: list[float]) -> dict:
    """The curves as a brute-force loop: each transformed input run alone through the exposed copy in plain
    onnxruntime, distances in float64, the tracked class the original's prediction."""
    folder = models / IMPORTED_DIR / name
    manifest = read_document(folder / MANIFEST_FILE, ImportedModel)
    spec = manifest.input
    session = ort.InferenceSession(str(folder / manifest.exposed.file), providers=["CPUExecutionProvider"])
    planes = upload_input(image, manifest, max_pixels=10**6).reshape(spec.channels, spec.height, spec.width)
    fill = -np.asarray(manifest.preprocessing.mean) / np.asarray(manifest.preprocessing.std)
    fill = np.broadcast_to(fill, (spec.channels,))
    layers = [layer.name for layer in manifest.layers if layer.name != manifest.probabilities]
    names = [*layers, manifest.probabilities]

    def run(planes: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, {spec.name: planes[None].astype(np.float32)})))

    original = run(planes)
    target = int(original[manifest.probabilities][0].argmax())
    answer = {"target": target, "probability": [], "predicted": [], "distance": {layer: [] for layer in layers}}
    for amount in amounts:
        moved = run(by_scipy(planes, transform, amount, fill))
        answer["probability"].append(moved[manifest.probabilities][0, target])
        answer["predicted"].append(int(moved[manifest.probabilities][0].argmax()))
        for layer in layers:
            difference = moved[layer].astype(np.float64) - original[layer].astype(np.float64)
            answer["distance"][layer].append(np.sqrt((difference**2).sum()))
    return answer


@pytest.mark.parametrize("name", [EXAMPLE_NAME, RESNET])
@pytest.mark.parametrize("transform", ["shift-x", "shift-y", "rotate", "scale"])
def test_the_curves_are_scipys_transforms_through_plain_onnxruntime(client, models, uploads, name, transform):
    answer = curves(client, name, uploads[name], transform=transform, steps=STEPS).json()
    expected = reference(models, name, uploads[name], transform, answer["amounts"])
    assert answer["target"] == expected["target"]
    assert np.allclose(answer["probability"], expected["probability"], rtol=0, atol=TOLERANCE)
    assert answer["distance"].keys() == expected["distance"].keys()
    for layer, values in expected["distance"].items():
        scale = max(1.0, max(values))
        assert np.allclose(answer["distance"][layer], values, rtol=0, atol=TOLERANCE * scale), layer


def test_the_predicted_classes_are_plain_onnxruntimes(client, models, uploads):
    answer = curves(client, RESNET, uploads[RESNET], transform="rotate", steps=STEPS).json()
    assert answer["predicted"] == reference(models, RESNET, uploads[RESNET], "rotate", answer["amounts"])["predicted"]


def test_the_distances_are_of_every_layer_but_the_probabilities_in_graph_order(client, uploads):
    answer = curves(client, EXAMPLE_NAME, uploads[EXAMPLE_NAME], transform="rotate", steps=3).json()
    layers = client.get(f"/v1/models/{EXAMPLE_NAME}").json()["layers"]
    assert list(answer["distance"]) == [layer for layer in layers if layer != "probabilities"]


def test_a_colour_models_inputs_come_back_as_colour_pngs_in_its_size(client, uploads):
    answer = curves(client, RESNET, uploads[RESNET], transform="scale", steps=3).json()
    pictures = [Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) for url in answer["inputs"]]
    assert [(picture.mode, picture.size) for picture in pictures] == [("RGB", (SIDE, SIDE))] * 3


def test_the_identity_amount_shows_the_models_input_undone_to_pixels(client, models, uploads):
    answer = curves(client, RESNET, uploads[RESNET], transform="shift-x", steps=3, **{"from": -4, "to": 4}).json()
    unchanged = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["inputs"][1].split(",", 1)[1]))))
    manifest = read_document(models / IMPORTED_DIR / RESNET / MANIFEST_FILE, ImportedModel)
    planes = upload_input(uploads[RESNET], manifest, max_pixels=10**6).reshape(3, SIDE, SIDE)
    steps = manifest.preprocessing
    pixels = (planes * np.array(steps.std)[:, None, None] + np.array(steps.mean)[:, None, None]).transpose(1, 2, 0)
    assert np.abs(unchanged - np.clip(pixels, 0, 1) * 255).max() <= 1
    assert all(values[1] <= TOLERANCE for values in answer["distance"].values())


def test_the_figure_of_a_colour_model_draws_its_inputs_in_colour(client, uploads):
    figure = np.asarray(decode_png(curves(client, RESNET, uploads[RESNET], transform="rotate", format="png")))
    strip = figure[-56:].astype(int)
    assert np.abs(strip[..., 0] - strip[..., 1]).max() > 64


def test_the_figure_of_a_grey_model_draws_its_inputs_grey(client, uploads):
    figure = np.asarray(decode_png(curves(client, EXAMPLE_NAME, uploads[EXAMPLE_NAME], format="png")))
    strip = figure[-56:]
    assert np.array_equal(strip[..., 0], strip[..., 1]) and strip.max() == 255 and strip.min() == 0


def test_a_target_outside_the_models_classes_is_a_422_saying_the_range(client, uploads):
    response = curves(client, EXAMPLE_NAME, uploads[EXAMPLE_NAME], target=10)
    assert response.status_code == 422 and "0-9" in response.json()["error"]


def test_the_model_detail_lists_invariance_among_its_routes(client):
    capabilities = client.get(f"/v1/models/{EXAMPLE_NAME}").json()["capabilities"]
    assert "POST /v1/invariance" in capabilities["endpoints"] and "invariance" not in capabilities["not_applicable"]


def test_an_invariance_request_costs_its_steps_and_the_original_in_the_models_units(client):
    cost = client.get(f"/v1/models/{RESNET}").json()["cost"]
    scope = {
        "app": client.app,
        "path": "/v1/invariance",
        "query_string": f"model={RESNET}&steps=9".encode(),
        "headers": [(b"content-type", b"image/png")],
    }
    assert request_cost(scope, b"", 64, 100, 100) == 10 * cost


def test_the_averaged_invariance_statistics_stay_the_shipped_models(client):
    response = client.get("/v1/statistics/invariance", params={"model": EXAMPLE_NAME})
    assert response.status_code == 422 and "shipped models were trained" in response.json()["error"]
