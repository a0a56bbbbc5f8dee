"""Dataset statistics, top images and conv1 weights over HTTP, on the shipped models and statistics."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import numpy_helper
from PIL import Image

from service.api.app import create_app
from service.api.settings import Settings
from service.pictures.grids import tile, to_uint8
from tests.api.conftest import MODELS
from tests.helpers import decode_png, encode, post_image

LAYERS = {"conv1": 32, "conv2": 64, "pool": 64}
RULES = ("image-mean", "dataset-mean", "filter-label-mean")
SUMMARY = ("min", "q1", "median", "q3", "max", "mean", "std")


@pytest.fixture(scope="module")
def summary(client):
    response = client.get("/v1/statistics")
    assert response.status_code == 200, response.text
    return response.json()


def plot(client, url, **params) -> Image.Image:
    image = decode_png(client.get(url, params={**params, "format": "png"}))
    assert 400 <= image.width <= 1600 and 250 <= image.height <= 1000, image.size
    return image


def test_the_summary_says_what_the_statistics_were_computed_from(summary, manifest):
    assert summary["model"] == "classifier"
    assert summary["model_sha256"] == manifest["models"]["classifier"]["sha256"]
    assert summary["split"] == "test" and summary["images"] == 10_000 == sum(summary["label_counts"])
    assert summary["accuracy"] == pytest.approx(manifest["models"]["classifier"]["metrics"]["test_accuracy"])
    assert [(layer["layer"], layer["filters"]) for layer in summary["layers"]] == list(LAYERS.items())
    assert all(
        layer["dataset_threshold"] > 0 and set(layer["never_active"]) == set(RULES) for layer in summary["layers"]
    )


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("rule", RULES)
def test_active_filter_counts_per_digit_and_filter(client, summary, layer, rule):
    body = client.get(f"/v1/statistics/active-filters/{layer}", params={"rule": rule}).json()
    counts = np.array(body["counts"])
    assert body["layer"] == layer and body["rule"] == rule and body["labels"] == list(range(10))
    assert body["images"] == summary["label_counts"]
    assert counts.shape == (10, LAYERS[layer])
    assert (counts >= 0).all() and (counts <= np.array(body["images"])[:, None]).all()
    assert body["never_active"] == np.flatnonzero(counts.sum(axis=0) == 0).tolist()
    thresholds = {layer["layer"]: layer["dataset_threshold"] for layer in summary["layers"]}
    assert body["dataset_threshold"] == (thresholds[layer] if rule == "dataset-mean" else None)
    assert (body["filter_label_means"] is not None) == (rule == "filter-label-mean")


def test_the_papers_rule_is_the_default_and_a_label_selects_one_row(client):
    everything = client.get("/v1/statistics/active-filters/conv2").json()
    assert everything["rule"] == "image-mean"
    one = client.get("/v1/statistics/active-filters/conv2", params={"label": 3}).json()
    assert one["labels"] == [3] and one["images"] == [everything["images"][3]]
    assert one["counts"] == [everything["counts"][3]]


def test_on_average_some_but_not_all_filters_are_active_per_image(client, summary):
    for layer, filters in LAYERS.items():
        counts = np.array(client.get(f"/v1/statistics/active-filters/{layer}").json()["counts"])
        per_image = counts.sum() / summary["images"]
        assert 1 < per_image < filters - 1


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("label", [None, 0, 9])
def test_norm_distribution_of_every_filter(client, summary, layer, label):
    params = {} if label is None else {"label": label}
    body = client.get(f"/v1/statistics/norms/{layer}", params=params).json()
    assert body["label"] == label
    assert body["images"] == (summary["images"] if label is None else summary["label_counts"][label])
    assert [f["filter"] for f in body["filters"]] == list(range(LAYERS[layer]))
    values = np.array([[f[name] for name in SUMMARY] for f in body["filters"]])
    low, q1, median, q3, high, mean, std = values.T
    assert (low <= q1).all() and (q1 <= median).all() and (median <= q3).all() and (q3 <= high).all()
    assert (low <= mean + 1e-6).all() and (mean <= high + 1e-6).all() and (std >= 0).all()
    assert low.min() >= 0


def test_the_dataset_threshold_is_the_mean_of_the_filters_means(client):
    body = client.get("/v1/statistics/norms/conv1").json()
    assert body["dataset_threshold"] == pytest.approx(np.mean([f["mean"] for f in body["filters"]]), rel=1e-5)


def test_confusion_matrix_and_training_history(client, manifest):
    classifier = manifest["models"]["classifier"]
    body = client.get("/v1/statistics/confusion-matrix").json()
    assert body["matrix"] == classifier["metrics"]["confusion_matrix"]
    assert np.trace(body["matrix"]) / body["images"] == pytest.approx(body["accuracy"])
    history = client.get("/v1/statistics/training-history").json()
    assert history["model"] == "classifier" and history["history"] == classifier["history"]
    assert history["epochs"] == classifier["training"]["epochs"]
    autoencoder = client.get("/v1/statistics/training-history", params={"model": "autoencoder"}).json()
    assert autoencoder["history"] == manifest["models"]["autoencoder"]["history"]


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("rule", RULES)
def test_active_filter_heatmaps_are_pngs(client, layer, rule):
    plot(client, f"/v1/statistics/active-filters/{layer}", rule=rule)
    plot(client, f"/v1/statistics/active-filters/{layer}", rule=rule, label=7)


@pytest.mark.parametrize("layer", LAYERS)
def test_norm_box_plots_are_pngs(client, layer):
    everything = plot(client, f"/v1/statistics/norms/{layer}")
    one = plot(client, f"/v1/statistics/norms/{layer}", label=4)
    assert everything.tobytes() != one.tobytes()


@pytest.mark.parametrize(
    "url",
    [
        "/v1/statistics/confusion-matrix",
        "/v1/statistics/training-history",
        "/v1/statistics/training-history?model=autoencoder",
    ],
)
def test_confusion_matrix_and_history_plots_are_pngs(client, url):
    plot(client, url)


@pytest.mark.parametrize("layer", LAYERS)
def test_top_images_are_the_test_images_where_the_filter_norm_is_largest(client, mnist_test, layer):
    images, labels = mnist_test
    body = client.get(f"/v1/filters/{layer}/5/top-images").json()
    rows = body["images"]
    assert [row["rank"] for row in rows] == list(range(1, 10))
    norms = [row["norm"] for row in rows]
    assert norms == sorted(norms, reverse=True)
    assert [row["label"] for row in rows] == labels[[row["index"] for row in rows]].tolist()
    strongest = rows[0]
    live = post_image(client, f"/v1/active-filters/{layer}", encode(images[strongest["index"]]), preprocess="none")
    assert live.json()["norms"][5] == pytest.approx(strongest["norm"], rel=1e-5)


def test_top_images_png_puts_the_images_beside_their_projections(client, mnist_test):
    images, _ = mnist_test
    rows = client.get("/v1/filters/conv2/5/top-images").json()["images"]
    unlabelled = {"format": "png", "labels": "false"}
    panel = np.array(decode_png(client.get("/v1/filters/conv2/5/top-images", params={**unlabelled, "scale": 1})))
    grid = 3 * 28 + 2
    assert panel.shape == (grid, 2 * grid + 4)
    assert np.array_equal(panel[:grid, :grid], tile(images[[row["index"] for row in rows]], columns=3, pad_value=128))
    projection = post_image(
        client, "/v1/deconvolution/conv2/5", encode(images[rows[0]["index"]]), preprocess="none", format="json"
    ).json()["values"]
    assert np.abs(panel[:28, grid + 4 : grid + 4 + 28].astype(int) - to_uint8(np.array(projection))).max() <= 1
    assert decode_png(client.get("/v1/filters/conv2/5/top-images", params=unlabelled)).size == (704, 344)


def test_conv1_weights_are_the_onnx_kernels(client):
    body = client.get("/v1/filters/conv1/weights").json()
    model = onnx.load(str(MODELS / "classifier.onnx"))
    kernels = [numpy_helper.to_array(init) for init in model.graph.initializer if tuple(init.dims) == (32, 1, 3, 3)]
    assert len(kernels) == 1
    assert body["shape"] == [32, 3, 3]
    assert np.allclose(body["kernels"], kernels[0][:, 0], atol=1e-7)
    image = decode_png(client.get("/v1/filters/conv1/weights", params={"format": "png", "labels": "false"}))
    assert image.size == ((6 * 3 + 5) * 16,) * 2


def test_threshold_dataset_uses_the_layers_dataset_threshold(client, summary, digit_png):
    thresholds = {layer["layer"]: layer["dataset_threshold"] for layer in summary["layers"]}
    for layer in LAYERS:
        body = post_image(client, f"/v1/active-filters/{layer}", digit_png, threshold="dataset").json()
        assert body["threshold_rule"] == "dataset"
        assert body["threshold"] == pytest.approx(thresholds[layer], rel=1e-6)
        assert body["active"] == [k for k, n in enumerate(body["norms"]) if n > body["threshold"]]


def test_threshold_dataset_is_for_the_l2_norm_only(client, digit_png):
    response = post_image(client, "/v1/active-filters/conv1", digit_png, threshold="dataset", norm="l1")
    assert response.status_code == 422
    assert "norm=l2" in response.json()["error"]


@pytest.mark.parametrize(
    "url, status, message",
    [
        ("/v1/statistics/norms/dense1", 404, "no statistics for layer 'dense1'; layers: conv1, conv2, pool"),
        ("/v1/statistics/active-filters/conv9", 404, "no statistics for layer 'conv9'; layers: conv1, conv2, pool"),
        ("/v1/filters/conv9/0/top-images", 404, "no statistics for layer 'conv9'; layers: conv1, conv2, pool"),
        ("/v1/statistics/norms/conv1?label=10", 422, "label 10 is not a class of this model: labels are 0-9"),
        ("/v1/statistics/active-filters/conv1?label=-1", 422, "label: Input should be greater than or equal to 0"),
        (
            "/v1/statistics/active-filters/conv1?rule=most",
            422,
            "rule: Input should be 'image-mean', 'dataset-mean' or 'filter-label-mean'",
        ),
        ("/v1/filters/conv1/32/top-images", 422, "filter 32 is out of range: layer 'conv1' has filters 0-31"),
    ],
)
def test_errors_say_what_to_change(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert response.json() == {"status": status, "error": message}


def test_an_unknown_model_is_a_404_listing_every_served_model(client):
    response = client.get("/v1/statistics/training-history?model=vgg")
    served = ", ".join(model["name"] for model in client.get("/v1/models").json()["models"])
    assert response.status_code == 404
    assert response.json()["error"] == f"unknown model 'vgg'; available: {served}"
    assert served.startswith("classifier, autoencoder")


def _model_dir(tmp_path, with_statistics: bool):
    """A model folder with the shipped models, and optionally a copy of the shipped statistics."""
    for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx"):
        os.symlink(MODELS / name, tmp_path / name)
    if with_statistics:
        shutil.copy(MODELS / "statistics.json", tmp_path)
        for arrays in MODELS.glob("*.npz"):  # top images, optimized inputs, digit judge
            shutil.copy(arrays, tmp_path)
        shutil.copytree(MODELS / "plots", tmp_path / "plots")
    return tmp_path


STATISTICS_URLS = [
    "/v1/statistics",
    "/v1/statistics/active-filters/conv1",
    "/v1/statistics/norms/conv2?format=png",
    "/v1/filters/pool/3/top-images",
    "/v1/statistics/confusion-matrix?format=png",
]


def test_without_statistics_the_service_starts_and_says_how_to_make_them(tmp_path, digit_png):
    with TestClient(create_app(Settings(model_dir=_model_dir(tmp_path, False)))) as client:
        assert client.get("/readyz").status_code == 200
        for url in STATISTICS_URLS:
            response = client.get(url)
            assert response.status_code == 503
            assert "python -m training analyze" in response.json()["error"]
        response = post_image(client, "/v1/active-filters/conv1", digit_png, threshold="dataset")
        assert response.status_code == 503 and "python -m training analyze" in response.json()["error"]
        assert client.get("/v1/statistics/confusion-matrix").status_code == 200
        assert client.get("/v1/filters/conv1/weights").status_code == 200


def test_a_changed_statistics_file_is_refused_with_its_checksum(tmp_path):
    directory = _model_dir(tmp_path, True)
    target = directory / "plots" / "norms-conv1.png"
    target.write_bytes(target.read_bytes() + b"\0")
    with TestClient(create_app(Settings(model_dir=directory))) as client:
        response = client.get("/v1/statistics")
        assert response.status_code == 503
        assert f"{target} has SHA-256" in response.json()["error"]


def test_statistics_of_another_classifier_are_refused(tmp_path):
    directory = _model_dir(tmp_path, True)
    stats = json.loads((directory / "statistics.json").read_text())
    stats["model_sha256"] = "0" * 64
    (directory / "statistics.json").write_text(json.dumps(stats))
    with TestClient(create_app(Settings(model_dir=directory))) as client:
        error = client.get("/v1/statistics/norms/conv1").json()["error"]
        assert "computed from another classifier" in error and "python -m training analyze" in error
