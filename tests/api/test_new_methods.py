"""The CAM family and the black-box methods over HTTP: on the shipped classifier through the generic routes (JSON,
PNG, .npy), on the page's menu, their limits, and the black-box ones on the imported example network."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.contract import IMPORTED_DIR, ImportedModel, read_document
from service.images.preprocessing import upload_input
from service.importer import main
from tests.helpers import decode_png, link_shipped_models, post_image
from tests.importer.over_http import npy_body, serving

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE, NAME = ROOT / "examples" / "models" / "mnist-cnn.onnx", "mnist-cnn"
CAMS = ["grad-cam-plus-plus", "hires-cam", "xgrad-cam", "layer-cam", "score-cam", "eigen-cam", "ablation-cam"]
BLACK_BOX = {"rise": {"masks": 64}, "kernel-shap": {"coalitions": 64}, "feature-ablation": {}}


@pytest.mark.parametrize("method", CAMS)
def test_cam_answers_the_layer_s_map_as_json(client, digit_png, method):
    answer = post_image(client, f"/v1/attribution/{method}", digit_png, format="json", layer="conv1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["shape"] == [26, 26] and body["signed"] is False
    assert np.asarray(body["values"]).max() > 0


@pytest.mark.parametrize("method", [*CAMS, *BLACK_BOX])
def test_method_answers_a_png_heat_map(client, digit_png, method):
    decode_png(post_image(client, f"/v1/attribution/{method}", digit_png, **BLACK_BOX.get(method, {})))


@pytest.mark.parametrize("method", list(BLACK_BOX))
def test_black_box_batch_answers_npy_maps_over_the_input(client, mnist_test, method):
    images = mnist_test[0][:3].astype(np.float32) / 255
    answer = client.post(
        f"/v1/attribution/{method}/batch",
        content=npy_body(images),
        params=BLACK_BOX[method],
        headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
    )
    assert answer.status_code == 200, answer.text
    assert np.load(io.BytesIO(answer.content)).shape == (3, 28, 28)


def test_same_seed_gives_the_same_rise_map_and_another_seed_another(client, digit_png):
    def values(seed: int) -> np.ndarray:
        answer = post_image(client, "/v1/attribution/rise", digit_png, format="json", masks=64, seed=seed)
        return np.asarray(answer.json()["values"])

    assert np.array_equal(values(5), values(5))
    assert not np.array_equal(values(5), values(6))


def test_page_menu_lists_every_new_method(client):
    names = {entry["name"] for entry in client.get("/attribution-methods.json").json()["methods"]}
    assert set(CAMS) | set(BLACK_BOX) <= names


@pytest.mark.parametrize("segments", ["grid", "grid:0", "squares:4", "grid:15"])
def test_malformed_or_too_many_segments_are_422_saying_the_form(client, digit_png, segments):
    answer = post_image(client, "/v1/attribution/feature-ablation", digit_png, format="json", segments=segments)
    assert answer.status_code == 422
    assert "grid:N" in answer.text


def test_more_masks_than_the_limit_is_422(client, digit_png):
    answer = post_image(client, "/v1/attribution/rise", digit_png, format="json", masks=2001)
    assert answer.status_code == 422
    assert "masks" in answer.text


def test_black_box_batch_over_the_work_limit_is_413(client, mnist_test):
    images = mnist_test[0][:6].astype(np.float32) / 255
    answer = client.post(
        "/v1/attribution/rise/batch",
        content=npy_body(images),
        params={"masks": 2000},
        headers={"content-type": "application/x-npy"},
    )
    assert answer.status_code == 413


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    models = link_shipped_models(tmp_path_factory.mktemp("example") / "models")
    assert main([str(EXAMPLE), "--name", NAME, "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    with serving(models) as test_client:
        yield test_client, models


def example_probabilities(images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(EXAMPLE), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: images.astype(np.float32)})[0]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_feature_ablation_of_the_imported_example_equals_a_loop_over_its_file(imported, digit_png):
    client, models = imported
    answer = post_image(client, "/v1/attribution/feature-ablation", digit_png, format="json", model=NAME)
    assert answer.status_code == 200, answer.text
    manifest = read_document(models / IMPORTED_DIR / NAME / "manifest.json", ImportedModel)
    image = upload_input(digit_png, manifest, max_pixels=10**6).reshape(1, 1, 28, 28).astype(np.float32)
    black = -np.asarray(manifest.preprocessing.mean, dtype=np.float32) / np.asarray(manifest.preprocessing.std)
    base = example_probabilities(image)[0]
    target = int(base.argmax())
    expected = np.zeros((28, 28))
    cell = np.arange(28) * 7 // 28
    for row in range(7):
        for col in range(7):
            inside = (cell[:, None] == row) & (cell[None, :] == col)
            ablated = np.where(inside, black.reshape(-1)[0], image)
            expected[inside] = base[target] - example_probabilities(ablated)[0, target]
    assert answer.json()["target"] == target
    assert np.abs(np.asarray(answer.json()["values"]) - expected).max() < 1e-5


@pytest.mark.parametrize("method", ["rise", "kernel-shap"])
def test_black_box_method_explains_the_imported_example(imported, digit_png, method):
    client, _ = imported
    answer = post_image(client, f"/v1/attribution/{method}", digit_png, format="json", model=NAME, **BLACK_BOX[method])
    assert answer.status_code == 200, answer.text
    assert answer.json()["shape"] == [28, 28]
    assert np.abs(np.asarray(answer.json()["values"])).max() > 0
