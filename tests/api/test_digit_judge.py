"""digit_like, digit_like_score and digit_like_threshold on /v1/classify, /v1/classify/batch and /v1/inspect."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from tests.api.conftest import MODELS
from tests.helpers import encode, post_image

FIELDS = ("digit_like", "digit_like_score", "digit_like_threshold")


def npy(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, images)
    return buffer.getvalue()


def test_classify_judges_a_real_digit_digit_like(client, digit_png):
    answer = post_image(client, "/v1/classify", digit_png).json()
    threshold = json.loads((MODELS / "statistics.json").read_text())["digit_judge"]["threshold"]
    assert answer["digit_like"] is True and answer["digit_like_threshold"] == threshold
    assert answer["digit_like_score"] <= threshold


def test_classify_judges_noise_not_digit_like(client):
    noise = (np.random.default_rng(3).random((28, 28)) * 255).astype(np.uint8)
    answer = post_image(client, "/v1/classify", encode(noise), preprocess="none").json()
    assert answer["digit_like"] is False and answer["digit_like_score"] > answer["digit_like_threshold"]


def test_the_batch_judges_each_item(client, mnist_test):
    noise = (np.random.default_rng(4).random((2, 28, 28)) * 255).astype(np.uint8)
    images = np.concatenate([mnist_test[0][:3], noise])
    response = client.post("/v1/classify/batch", content=npy(images), headers={"content-type": "application/x-npy"})
    results = response.json()["results"]
    assert [item["digit_like"] for item in results] == [True, True, True, False, False]
    single = post_image(client, "/v1/classify", encode(mnist_test[0][1]), preprocess="none").json()
    assert results[1]["digit_like_score"] == pytest.approx(single["digit_like_score"], rel=1e-5)


def test_inspect_carries_the_judgement(client, digit_png):
    answer = post_image(client, "/v1/inspect", digit_png).json()
    assert answer["digit_like"] is True and isinstance(answer["digit_like_score"], float)


def test_inspect_judges_and_classifies_as_classify_does_to_the_bit(client, mnist_test):
    noise = (np.random.default_rng(6).random((28, 28)) * 255).astype(np.uint8)
    for image in (mnist_test[0][0], mnist_test[0][1], noise):
        inspected = post_image(client, "/v1/inspect", encode(image), preprocess="none").json()
        classified = post_image(client, "/v1/classify", encode(image), preprocess="none").json()
        assert {field: inspected[field] for field in classified if field != "model"} == {
            field: classified[field] for field in classified if field != "model"
        }


def test_without_the_calibration_digit_like_is_null(tmp_path, digit_png):
    for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx"):
        os.symlink(MODELS / name, tmp_path / name)
    with TestClient(create_app(Settings(model_dir=tmp_path))) as client:
        for url in ("/v1/classify", "/v1/inspect"):
            answer = post_image(client, url, digit_png).json()
            assert all(answer[field] is None for field in FIELDS)
        batch = client.post("/v1/classify/batch", files=[("image", ("a.png", digit_png, "image/png"))]).json()
        assert all(batch["results"][0][field] is None for field in FIELDS)


def test_micro_batching_answers_the_same_judgement(digit_png):
    from tests.api.conftest import make_client

    with make_client() as plain, make_client(micro_batching=True) as batched:
        expected = post_image(plain, "/v1/classify", digit_png).json()
        assert post_image(batched, "/v1/classify", digit_png).json() == expected
