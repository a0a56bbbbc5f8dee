"""Imported models served over HTTP next to the shipped ones (the example ``mnist-cnn`` imported into a copy of
the models folder): what they answer, what they refuse with a 422 naming what they can do, the model repository
extension and the limits (the shipped models' answers beside it: ``test_shipped_beside_imported.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.importer import main
from tests.helpers import EXAMPLE_NAME as NAME
from tests.helpers import EXAMPLE_ONNX as EXAMPLE
from tests.helpers import encode, import_example, link_shipped_models
from tests.importer.builders import save, tiny_classifier
from tests.importer.over_http import npy_body, serving


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = link_shipped_models(tmp_path_factory.mktemp("imported") / "models")
    return import_example(folder)


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def digit(mnist_test) -> bytes:
    return encode(mnist_test[0][0])


def post(client, path: str, data: bytes, **params):
    return client.post(path, params=params, content=data, headers={"content-type": "image/png"})


def test_the_models_list_has_the_imported_model_after_the_shipped_ones(client):
    listed = [(model["name"], model["kind"]) for model in client.get("/v1/models").json()["models"]]
    assert listed == [("classifier", "shipped"), ("autoencoder", "shipped"), (NAME, "imported")]


def test_the_model_detail_gives_input_preprocessing_labels_layers_and_capabilities(client):
    detail = client.get(f"/v1/models/{NAME}").json()
    assert detail["input"]["layout"] == "nchw" and detail["preprocessing"]["kind"] == "mnist"
    assert detail["labels"] == [str(digit) for digit in range(10)]
    assert detail["layer_details"][0] == {
        "name": "features.0.Conv",
        "op_type": "Conv",
        "shape": [None, 16, 28, 28],
        "node": "/features/features.0/Conv",
    }
    assert "POST /v1/classify" in detail["capabilities"]["endpoints"]
    assert "saliency" in detail["capabilities"]["attribution_methods"]
    assert detail["capabilities"]["no_gradients"] is None
    assert detail["cost"] >= 1 and detail["memory_bytes"] > EXAMPLE.stat().st_size


def test_classify_answers_the_label_and_every_class_under_top_by_default(client, digit, mnist_test):
    answer = post(client, "/v1/classify", digit, model=NAME).json()
    assert answer["digit"] == mnist_test[1][0] and answer["label"] == str(mnist_test[1][0])
    assert [entry["index"] for entry in answer["top"]] == list(np.argsort(answer["probabilities"])[::-1])
    assert answer["digit_like"] is None


def test_top_lists_that_many_classes_most_probable_first(client, digit):
    top = post(client, "/v1/classify", digit, model=NAME, top=3).json()["top"]
    probabilities = [entry["probability"] for entry in top]
    assert len(top) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_top_past_the_number_of_classes_is_a_422_saying_the_range(client, digit):
    response = post(client, "/v1/classify", digit, model=NAME, top=11)
    assert response.status_code == 422 and "between 1 and 10" in response.json()["error"]


def test_a_batch_of_files_classifies_as_each_file_alone(client, mnist_test):
    files = [("image", (f"{i}.png", encode(image), "image/png")) for i, image in enumerate(mnist_test[0][:3])]
    batch = client.post("/v1/classify/batch", params={"model": NAME}, files=files).json()["results"]
    singles = [post(client, "/v1/classify", encode(image), model=NAME).json() for image in mnist_test[0][:3]]
    assert np.allclose([r["probabilities"] for r in batch], [s["probabilities"] for s in singles], atol=1e-6)


def test_a_npy_batch_in_another_shape_than_the_models_input_is_a_400_naming_it(client):
    body = npy_body(np.zeros((2, 28, 28), np.float32))
    response = client.post(
        "/v1/classify/batch", params={"model": NAME}, content=body, headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 400 and "(N, 1, 28, 28)" in response.json()["error"]


def test_active_filters_are_the_maps_above_the_layers_mean_norm(client, digit):
    answer = post(client, "/v1/active-filters/features.2.Relu", digit, model=NAME).json()
    norms = np.array(answer["norms"])
    assert len(norms) == 16 and answer["threshold"] == pytest.approx(norms.mean(), rel=1e-6)
    assert answer["active"] == [int(i) for i in np.flatnonzero(norms > norms.mean())]


def test_one_feature_map_is_that_channel_of_the_layer(client, digit):
    layer = np.array(post(client, "/v1/activations/features.2.Relu", digit, model=NAME).json()["values"])
    one = post(client, "/v1/activations/features.2.Relu/5", digit, model=NAME).json()
    assert np.array_equal(np.array(one["values"]), layer[5])


def test_a_grid_with_top_shows_the_most_active_maps_and_names_them(client, digit):
    norms = post(client, "/v1/active-filters/features.6.Relu", digit, model=NAME).json()["norms"]
    response = post(client, "/v1/activations/features.6.Relu", digit, model=NAME, format="png", top=4)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert [int(c) for c in response.headers["x-channels"].split(",")] == list(np.argsort(norms)[::-1][:4])


def test_inspect_shows_every_feature_map_layer(client, digit, models):
    answer = post(client, "/v1/inspect", digit, model=NAME).json()
    detail = client.get(f"/v1/models/{NAME}").json()
    assert [layer["layer"] for layer in answer["layers"]] == [
        layer["name"] for layer in detail["layer_details"] if len(layer["shape"]) == 4
    ]
    assert answer["reconstruction"] is None and answer["label"] == str(answer["digit"])


def test_v2_metadata_lists_the_input_and_every_layer_as_an_output(client):
    metadata = client.get(f"/v2/models/{NAME}").json()
    detail = client.get(f"/v1/models/{NAME}").json()
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert [output["name"] for output in metadata["outputs"]] == detail["layers"]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/v1/statistics/confusion-matrix", "confusion matrix"),
        ("/v1/statistics/training-history", "training history"),
    ],
)
def test_a_shipped_model_route_is_a_422_naming_what_the_model_can_do(client, path, says):
    response = client.get(path, params={"model": NAME})
    assert response.status_code == 422
    assert says in response.json()["error"] and "POST /v1/classify" in response.json()["error"]


def test_occlusion_of_the_mnist_example_fills_its_black_and_explains_the_digit(client, digit, mnist_test):
    answer = post(client, "/v1/attribution/occlusion", digit, model=NAME, format="json").json()
    assert answer["target"] == mnist_test[1][0] and answer["parameters"] == {"patch": 4, "stride": 2}
    assert np.array(answer["values"]).shape == (13, 13) and np.array(answer["pixels"]).shape == (28, 28)
    assert np.array(answer["values"])[0, 0] == 0  # the corner square is black already: nothing changes


def test_statistics_of_an_imported_model_without_its_analysis_are_a_404_naming_the_command(client):
    response = client.get("/v1/statistics", params={"model": NAME})
    assert response.status_code == 404
    assert f"python -m training analyze --images DATASET_DIR --model {NAME}" in response.json()["error"]


def test_the_repository_index_lists_every_model_ready(client):
    index = client.post("/v2/repository/index").json()
    assert {entry["name"]: entry["state"] for entry in index} == {
        "classifier": "READY",
        "autoencoder": "READY",
        NAME: "READY",
    }


def test_load_and_unload_without_explicit_model_control_are_the_protocols_400(client):
    for action in ("load", "unload"):
        response = client.post(f"/v2/repository/models/{NAME}/{action}")
        assert response.status_code == 400 and "CONVLENS_MODEL_CONTROL" in response.json()["error"]


def test_explicit_control_unloads_and_loads_an_imported_model(models, digit):
    with serving(models, model_control="explicit") as control:
        assert control.post(f"/v2/repository/models/{NAME}/unload").status_code == 200
        assert post(control, "/v1/classify", digit, model=NAME).status_code == 404
        states = {entry["name"]: entry for entry in control.post("/v2/repository/index").json()}
        assert states[NAME] == {"name": NAME, "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"}
        assert control.post(f"/v2/repository/models/{NAME}/load").status_code == 200
        assert post(control, "/v1/classify", digit, model=NAME).status_code == 200


def test_a_shipped_model_cannot_be_unloaded(models):
    with serving(models, model_control="explicit") as control:
        response = control.post("/v2/repository/models/classifier/unload")
    assert response.status_code == 400 and "shipped model" in response.json()["error"]


def test_the_repository_routes_need_the_api_key_when_keys_are_set(models):
    with serving(models, api_keys=["s3cret"]) as keyed:
        assert keyed.post("/v2/repository/index").status_code == 401
        assert keyed.post("/v2/repository/index", headers={"x-api-key": "s3cret"}).status_code == 200


def test_a_model_past_the_memory_budget_is_not_served_and_the_index_says_why(models):
    with serving(models, models_memory_bytes=2_000_000) as tight:
        entry = next(e for e in tight.post("/v2/repository/index").json() if e["name"] == NAME)
        assert entry["state"] == "UNAVAILABLE" and "CONVLENS_MODELS_MEMORY_BYTES" in entry["reason"]


def test_models_past_the_cap_are_not_served(models):
    with serving(models, max_imported_models=0) as capped:
        assert [model["name"] for model in capped.get("/v1/models").json()["models"]] == ["classifier", "autoencoder"]


def test_a_colour_model_classifies_an_rgb_photo_of_any_size(tmp_path):
    models = link_shipped_models(tmp_path / "models")
    source = save(tiny_classifier(("N", 3, 32, 32)), tmp_path / "colour.onnx")
    assert main([str(source), "--name", "colour", "--models-dir", str(models)]) == 0
    photo = encode(np.random.default_rng(0).integers(0, 256, (45, 80, 3), dtype=np.uint8))
    with serving(models) as colour:
        answer = post(colour, "/v1/classify", photo, model="colour")
    assert answer.status_code == 200 and len(answer.json()["probabilities"]) == len(answer.json()["top"])
