"""POST /v1/invariance and GET /v1/statistics/invariance over HTTP, on the shipped classifier and real test digits."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from service.runtime.registry import LoadedModel
from service.studies.invariance import transformed
from tests.api.conftest import MODELS
from tests.helpers import decode_png, encode, post_image

LAYERS = ("conv1", "conv2", "pool", "dense1")


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(MODELS / "classifier.onnx"), providers=["CPUExecutionProvider"])


def one_by_one(session, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer of each image, one onnxruntime run per image (the brute-force reference)."""
    names = [*LAYERS, "output"]
    runs = [session.run(names, {"input": image.reshape(1, 28, 28, 1).astype(np.float32)}) for image in images]
    return {name: np.concatenate([run[i] for run in runs]) for i, name in enumerate(names)}


def shifted_right(image: np.ndarray, pixels: int) -> np.ndarray:
    """``image`` moved ``pixels`` right (left when negative), zero-filled; independent of the service."""
    out = np.zeros_like(image)
    if pixels >= 0:
        out[:, pixels:] = image[:, : 28 - pixels]
    else:
        out[:, :pixels] = image[:, -pixels:]
    return out


def test_shift_x_over_http_equals_a_loop_of_single_classifications(client, mnist_test, session):
    image = mnist_test[0][0]
    answer = post_image(client, "/v1/invariance", encode(image), transform="shift-x", preprocess="none").json()
    digit = image.astype(np.float32) / 255.0
    amounts = [int(a) for a in answer["amounts"]]
    assert amounts == list(range(-8, 9)) and answer["unit"] == "px"
    reference = one_by_one(session, np.stack([digit] + [shifted_right(digit, a) for a in amounts]))
    assert answer["target"] == int(reference["output"][0].argmax()) == mnist_test[1][0]
    np.testing.assert_allclose(answer["probability"], reference["output"][1:, answer["target"]], atol=1e-5)
    assert answer["predicted"] == reference["output"][1:].argmax(axis=1).tolist()
    for layer in LAYERS:
        flat = reference[layer].reshape(len(reference[layer]), -1)
        expected = np.linalg.norm(flat[1:] - flat[0], axis=1)
        np.testing.assert_allclose(answer["distance"][layer], expected, rtol=1e-4, atol=1e-4)
    assert answer["distance"]["conv1"][8] == 0.0  # the amount 0 is the original itself


def test_rotate_over_http_equals_a_loop_of_single_classifications(client, mnist_test, session):
    image = mnist_test[0][3]
    params = {"transform": "rotate", "from": -90, "to": 90, "steps": 7, "target": 3, "preprocess": "none"}
    answer = post_image(client, "/v1/invariance", encode(image), **params).json()
    assert answer["amounts"] == [-90, -60, -30, 0, 30, 60, 90] and answer["target"] == 3
    digit = image.astype(np.float32) / 255.0
    reference = one_by_one(session, np.concatenate([digit[None], transformed(digit, "rotate", answer["amounts"])]))
    np.testing.assert_allclose(answer["probability"], reference["output"][1:, 3], atol=1e-5)
    assert answer["predicted"] == reference["output"][1:].argmax(axis=1).tolist()
    flat = reference["dense1"]
    np.testing.assert_allclose(answer["distance"]["dense1"], np.linalg.norm(flat[1:] - flat[0], axis=1), rtol=1e-4)


def test_the_answer_carries_each_transformed_input_as_a_png(client, digit_png):
    answer = post_image(client, "/v1/invariance", digit_png, transform="scale", steps=5).json()
    assert len(answer["inputs"]) == len(answer["amounts"]) == 5
    assert all(url.startswith("data:image/png;base64,") for url in answer["inputs"])


def test_all_amounts_run_as_one_onnxruntime_batch(client, digit_png, monkeypatch):
    calls = []
    original = LoadedModel.run

    def counted(self, images, outputs):
        calls.append(len(images.reshape(-1, 28, 28)))
        return original(self, images, outputs)

    monkeypatch.setattr(LoadedModel, "run", counted)
    response = post_image(client, "/v1/invariance", digit_png, transform="rotate", steps=33)
    assert response.status_code == 200
    assert calls == [33]  # the 33 rotations, 0 degrees among them: the original itself
    response = post_image(client, "/v1/invariance", digit_png, transform="rotate", steps=32)
    assert response.status_code == 200
    assert calls == [33, 33]  # the original and its 32 rotations, none of them 0 degrees


def test_png_draws_the_three_panels_over_the_transformed_inputs(client, digit_png):
    image = decode_png(post_image(client, "/v1/invariance", digit_png, transform="shift-y", format="png"))
    assert image.size == (900, 286) and image.mode == "RGB"
    pixels = np.asarray(image)
    for panel in range(3):  # every panel has ink
        assert (pixels[40:170, panel * 300 + 50 : panel * 300 + 280] < 200).any()


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"transform": "shear"}, 404, "unknown transform 'shear'; transforms: shift-x, shift-y, rotate, scale"),
        ({"transform": "shift-x", "from": -20}, 422, "shift-x accepts amounts from -14 to 14 px, got from=-20 to=8"),
        (
            {"transform": "rotate", "to": 270},
            422,
            "rotate accepts amounts from -180 to 180 degrees, got from=-60 to=270",
        ),
        ({"transform": "scale", "from": 0}, 422, "scale accepts amounts from 0.25 to 3 factor, got from=0 to=1.5"),
        ({"steps": 65}, 422, "steps must be between 2 and 64, got 65"),
        ({"target": 10}, 422, "target must be a class 0-9, got 10"),
        ({"model": "autoencoder"}, 422, "model 'autoencoder' does not classify"),
    ],
)
def test_bad_requests_say_what_to_change(client, digit_png, params, status, message):
    response = post_image(client, "/v1/invariance", digit_png, **params)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_the_statistics_average_the_curves_over_test_images(client):
    answer = client.get("/v1/statistics/invariance").json()
    assert answer["images"] == 1000 and answer["split"] == "test" and answer["label"] is None
    by_name = {t["transform"]: t for t in answer["transforms"]}
    assert set(by_name) == {"shift-x", "shift-y", "rotate", "scale"}
    rotate = by_name["rotate"]
    assert len(rotate["amounts"]) == 17 and len(rotate["digits"]) == 10
    assert sum(group["images"] for group in rotate["digits"]) == 1000
    middle = rotate["amounts"].index(0.0)
    assert all(rotate["all"]["distance"][layer][middle] == 0.0 for layer in LAYERS)
    assert rotate["all"]["accuracy"][middle] > 0.98  # unrotated: the classifier's own accuracy
    assert rotate["all"]["accuracy"][0] < rotate["all"]["accuracy"][middle]  # 60 degrees off hurts
    assert rotate["all"]["distance"]["conv1"][0] > rotate["all"]["distance"]["conv1"][middle + 1] > 0


def test_one_transform_and_one_digit(client):
    answer = client.get("/v1/statistics/invariance", params={"transform": "scale", "label": 4}).json()
    assert [t["transform"] for t in answer["transforms"]] == ["scale"] and answer["label"] == 4
    assert len(answer["transforms"][0]["digits"]) == 1


def test_the_statistics_plots_are_pngs(client):
    decode_png(client.get("/v1/statistics/invariance", params={"transform": "rotate", "format": "png"}))
    decode_png(client.get("/v1/statistics/invariance", params={"transform": "shift-x", "label": 7, "format": "png"}))


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"transform": "shear"}, 404, "unknown transform 'shear'"),
        ({"format": "png"}, 422, "format=png draws one transform: add transform="),
        ({"label": 10}, 422, "label"),
    ],
)
def test_statistics_errors_say_what_to_change(client, params, status, message):
    response = client.get("/v1/statistics/invariance", params=params)
    assert response.status_code == status
    assert message in response.json()["error"]
