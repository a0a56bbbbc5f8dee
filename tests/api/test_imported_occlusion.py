"""Occlusion of an imported model over HTTP: each square filled with the model's normalised black, the drop of the
target's probability, checked against a brute-force loop over the user's own file in onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.contract import IMPORTED_DIR, ImportedModel, read_document
from service.images.preprocessing import upload_input
from service.importer import main
from tests.helpers import decode_png, encode, link_shipped_models
from tests.importer.builders import save, tiny_classifier
from tests.importer.over_http import serving

NAME = "colour"
SIDE = 32
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("occlusion")
    models = link_shipped_models(folder / "models")
    source = save(tiny_classifier(("N", 3, SIDE, SIDE)), folder / "colour.onnx")
    options = ["--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD)), "--resize", str(SIDE)]
    assert main([str(source), "--name", NAME, "--models-dir", str(models), *options]) == 0
    return folder


@pytest.fixture(scope="module")
def client(folder):
    with serving(folder / "models") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))


def occlusion(client, photo: bytes, **params):
    return client.post(
        "/v1/attribution/occlusion",
        params={"model": NAME, **params},
        content=photo,
        headers={"content-type": "image/png"},
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def brute_force(folder: Path, photo: bytes, patch: int, stride: int, target: int | None) -> dict:
    """Every square filled with (0 - mean) / std in turn and run alone through the user's file: the drops, and each
    pixel's mean drop over the squares covering it."""
    session = ort.InferenceSession(str(folder / "colour.onnx"), providers=["CPUExecutionProvider"])
    manifest = read_document(folder / "models" / IMPORTED_DIR / NAME / "manifest.json", ImportedModel)
    image = upload_input(photo, manifest, max_pixels=10**6).reshape(1, 3, SIDE, SIDE).astype(np.float32)
    fill = (-np.array(MEAN) / np.array(STD)).astype(np.float32)[:, None, None]
    base = softmax(session.run(None, {"input": image})[0])[0]
    target = int(base.argmax()) if target is None else target
    starts = range(0, SIDE - patch + 1, stride)
    grid = np.zeros((len(starts), len(starts)))
    total, count = np.zeros((SIDE, SIDE)), np.zeros((SIDE, SIDE))
    for i, row in enumerate(starts):
        for j, col in enumerate(starts):
            occluded = image.copy()
            occluded[0, :, row : row + patch, col : col + patch] = fill
            grid[i, j] = base[target] - softmax(session.run(None, {"input": occluded})[0])[0, target]
            total[row : row + patch, col : col + patch] += grid[i, j]
            count[row : row + patch, col : col + patch] += 1
    pixels = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return {"grid": grid, "pixels": pixels, "target": target, "probability": base[target]}


def test_occlusion_is_each_squares_probability_drop_as_a_brute_force_loop_finds_it(client, folder, photo):
    answer = occlusion(client, photo, format="json", patch=6, stride=5).json()
    expected = brute_force(folder, photo, 6, 5, None)
    assert answer["target"] == expected["target"] and answer["probability"] == pytest.approx(expected["probability"])
    assert np.abs(np.array(answer["values"]) - expected["grid"]).max() <= 1e-5
    assert np.abs(np.array(answer["pixels"]) - expected["pixels"]).max() <= 1e-5


def test_occlusion_of_another_class_explains_that_class(client, folder, photo):
    answer = occlusion(client, photo, format="json", target=3).json()
    expected = brute_force(folder, photo, 5, 2, 3)  # the defaults: 4 and 2 over 28 pixels, scaled to 32
    assert answer["target"] == 3 and answer["parameters"] == {"patch": 5, "stride": 2}
    assert np.abs(np.array(answer["values"]) - expected["grid"]).max() <= 1e-5


def test_occlusion_png_is_a_heat_map_over_the_input_scaled(client, photo):
    response = occlusion(client, photo, scale=4, labels="false")
    assert response.status_code == 200 and decode_png(response).size == (SIDE * 4, SIDE * 4)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"patch": 33}, "patch must be an integer in [1, 32]"),
        ({"patch": 1, "stride": 1}, "make 1024 squares"),
        ({"target": 5}, "target must be a class 0-4"),
    ],
)
def test_occlusion_out_of_range_is_a_422_saying_what_to_change(client, photo, params, says):
    response = occlusion(client, photo, **params)
    assert response.status_code == 422 and says in response.json()["error"]
