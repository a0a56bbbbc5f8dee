"""Batch classification: many images in one request, in order, equal to one-by-one classification."""

import io

import numpy as np
import pytest

from service.api.schemas import BatchClassification
from tests.api.conftest import make_client
from tests.helpers import encode, post_image


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def post_npy(client, data: bytes, content_type: str = "application/x-npy"):
    return client.post("/v1/classify/batch", content=data, headers={"content-type": content_type})


def test_npy_batch_keeps_input_order_and_equals_single_classification(client, mnist_test):
    images, labels = mnist_test[0][:20], mnist_test[1][:20]
    body = post_npy(client, npy(images)).json()
    assert body["count"] == 20 and body["model"] == "classifier"
    singles = [post_image(client, "/v1/classify", encode(image)).json() for image in images]
    assert [r["digit"] for r in body["results"]] == [s["digit"] for s in singles]
    assert np.allclose([r["probabilities"] for r in body["results"]], [s["probabilities"] for s in singles], atol=1e-6)
    assert np.mean(np.array([r["digit"] for r in body["results"]]) == labels) >= 0.95


def test_batch_json_is_the_response_models_own_serialisation(client, mnist_test):
    response = post_npy(client, npy(mnist_test[0][:20]))
    assert BatchClassification.model_validate_json(response.content).model_dump_json().encode() == response.content


def test_float32_npy_in_unit_range_gives_the_same_answer_as_uint8(client, mnist_test):
    images = mnist_test[0][:8]
    as_uint8 = post_npy(client, npy(images), "application/octet-stream").json()
    as_float = post_npy(client, npy((images / 255.0).astype(np.float32)[..., None])).json()
    assert np.allclose(
        [r["probabilities"] for r in as_uint8["results"]], [r["probabilities"] for r in as_float["results"]], atol=1e-6
    )


def test_repeated_multipart_image_fields_are_classified_in_order(client, mnist_test):
    images = mnist_test[0][:5]
    files = [("image", (f"{i}.png", encode(image), "image/png")) for i, image in enumerate(images)]
    body = client.post("/v1/classify/batch", files=files).json()
    assert [r["digit"] for r in body["results"]] == [int(d) for d in mnist_test[1][:5]]


def test_more_images_than_the_limit_is_413(mnist_test):
    with make_client(max_batch_images=3) as small:
        response = post_npy(small, npy(mnist_test[0][:4]))
        assert response.status_code == 413
        assert response.json()["error"] == "4 images in one request; the limit is 3: split the batch"


def test_a_header_claiming_a_billion_images_is_refused_before_allocating(client):
    data = npy(np.zeros((1, 28, 28), np.uint8)).replace(b"(1, 28, 28)", b"(1000000000, 28, 28)")
    assert post_npy(client, data).status_code == 413


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x93NUMPY garbage", "not a valid .npy file"),
        (npy(np.zeros((2, 32, 32), np.uint8)), "is not (N, 28, 28)"),
        (npy(np.zeros((2, 28, 28), np.int64)), "is not uint8"),
        (npy(np.full((2, 28, 28), 3.0, np.float32)), "in [0, 1]"),
        (npy(np.zeros((0, 28, 28), np.uint8)), "no images"),
        (npy(np.zeros((2, 28, 28), np.uint8))[:-10], "promises"),
    ],
)
def test_malformed_npy_is_400_saying_what_is_wrong(client, data, fragment):
    response = post_npy(client, data)
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_batch_with_an_image_content_type_is_415(client, digit_png):
    response = post_image(client, "/v1/classify/batch", digit_png)
    assert response.status_code == 415 and "application/x-npy" in response.json()["error"]
