"""The shipped models answer byte for byte the same with the example network imported beside them as without it:
two services on the real app, one on the shipped models alone and one with ``mnist-cnn`` imported (as
``CONVLENS_TESTS_WITH_IMPORTED_EXAMPLE=1`` runs every test), asked the same requests."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.helpers import EXAMPLE_NAME, ROOT, encode, import_example, link_shipped_models
from tests.importer.over_http import serving

# Uploads of a digit, each (path, query): every shipped route family a model's presence could reach.
UPLOADS = [
    ("/v1/classify", {}),
    ("/v1/classify", {"model": "classifier", "preprocess": "mnist", "top": "3"}),
    ("/v1/activations/conv2", {}),
    ("/v1/activations/conv1", {"format": "png", "labels": "true"}),
    ("/v1/activations/conv1/3", {}),
    ("/v1/active-filters/conv2", {"rule": "dataset"}),
    ("/v1/inspect", {}),
    ("/v1/deconvolution/conv1/3", {}),
    ("/v1/attribution/saliency", {"format": "json"}),
    ("/v1/attribution/saliency", {"format": "png"}),
    ("/v1/attribution/occlusion", {"format": "json"}),
    ("/v1/invariance", {"transform": "rotate"}),
    ("/v1/invariance", {"transform": "scale", "format": "png"}),
    ("/v1/autoencoder/reconstruct", {}),
]
GETS = [
    "/v1/models/classifier",
    "/v1/models/autoencoder",
    "/v2/models/classifier",
    "/v1/statistics",
    "/v1/filters/conv1/weights",
]


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """(the shipped models alone, the same with the example imported), both serving."""
    alone = link_shipped_models(tmp_path_factory.mktemp("alone") / "models")
    beside = import_example(link_shipped_models(tmp_path_factory.mktemp("beside") / "models"))
    with serving(alone) as plain, serving(beside) as with_example:
        yield plain, with_example


@pytest.fixture(scope="module")
def digit(mnist_test) -> bytes:
    return encode(mnist_test[0][0])


def both(services, method: str, path: str, **request) -> tuple:
    return tuple(client.request(method, path, **request) for client in services)


def uploads_id(case: tuple[str, dict]) -> str:
    path, params = case
    return path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


@pytest.mark.parametrize("case", UPLOADS, ids=uploads_id)
def test_an_upload_on_a_shipped_model_answers_the_same_bytes(services, digit, case):
    path, params = case
    alone, beside = both(services, "POST", path, params=params, content=digit, headers={"content-type": "image/png"})
    assert alone.status_code == 200, alone.text
    assert beside.content == alone.content


@pytest.mark.parametrize("path", GETS)
def test_a_shipped_models_document_is_the_same_bytes(services, path):
    alone, beside = both(services, "GET", path)
    assert alone.status_code == 200, alone.text
    assert beside.content == alone.content


def test_a_npy_batch_classifies_to_the_same_bytes(services, mnist_test):
    buffer = io.BytesIO()
    np.save(buffer, mnist_test[0][:16].astype(np.float32) / 255)
    headers = {"content-type": "application/octet-stream"}
    alone, beside = both(services, "POST", "/v1/classify/batch", content=buffer.getvalue(), headers=headers)
    assert alone.status_code == 200 and beside.content == alone.content


def test_a_v2_inference_on_the_classifier_answers_the_same_bytes(services):
    body = (ROOT / "examples" / "v2-infer.json").read_bytes()
    headers = {"content-type": "application/json"}
    alone, beside = both(services, "POST", "/v2/models/classifier/infer", content=body, headers=headers)
    assert alone.status_code == 200 and beside.content == alone.content


def test_the_models_list_is_the_shipped_entries_unchanged_then_the_imported_one(services):
    alone, beside = (response.json()["models"] for response in both(services, "GET", "/v1/models"))
    assert beside[: len(alone)] == alone and [model["name"] for model in beside[len(alone) :]] == [EXAMPLE_NAME]


def test_the_v2_repository_index_is_the_shipped_entries_unchanged_then_the_imported_one(services):
    alone, beside = (response.json() for response in both(services, "POST", "/v2/repository/index"))
    assert beside[: len(alone)] == alone and [entry["name"] for entry in beside[len(alone) :]] == [EXAMPLE_NAME]


def test_the_v2_server_metadata_is_the_same_bytes(services):
    alone, beside = both(services, "GET", "/v2")
    assert alone.status_code == 200 and beside.content == alone.content
