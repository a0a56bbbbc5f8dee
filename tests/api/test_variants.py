"""The service on the shipped models plus a tiny sweep's variants: it lists and serves them side by side, compares
one digit's projections across them, and verifies their files like the main models'."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from service.contract import VARIANTS_DIR
from service.pictures.labels import ROW_GAP, ROW_LABEL_HEIGHT
from service.runtime.registry import ModelLoadError, load_registry, verify_model_files
from tests.helpers import decode_png, link_shipped_models, post_image

VARIANTS = ("relu-adam", "relu-sgd", "tanh-adam", "tanh-sgd")


def model_dir_with(target: Path, variants: Path) -> Path:
    """``target`` holding the shipped models (symlinked) and ``variants`` as its variants folder."""
    link_shipped_models(target)
    (target / VARIANTS_DIR).symlink_to(variants, target_is_directory=True)
    return target


@pytest.fixture(scope="module")
def variant_client(tiny_sweep, tmp_path_factory):
    model_dir = model_dir_with(tmp_path_factory.mktemp("served") / "models", tiny_sweep)
    with TestClient(create_app(Settings(model_dir=model_dir))) as test_client:
        yield test_client


def test_models_lists_the_variants_with_their_configuration_and_metrics(variant_client):
    listed = {model["name"]: model for model in variant_client.get("/v1/models").json()["models"]}
    assert list(listed) == ["classifier", "autoencoder", *VARIANTS]
    tanh_sgd = listed["tanh-sgd"]
    assert (tanh_sgd["training"]["activation"], tanh_sgd["training"]["optimizer"]) == ("tanh", "sgd")
    assert 0 < tanh_sgd["metrics"]["test_accuracy"] <= 1
    assert variant_client.get("/v1/models/relu-adam").json()["training"]["optimizer"] == "adam"


def test_two_variants_classify_the_same_digit(variant_client, digit_png):
    for name in ("relu-adam", "tanh-sgd"):
        answer = post_image(variant_client, "/v1/classify", digit_png, model=name).json()
        assert answer["model"] == name
        assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-4


@pytest.mark.parametrize(
    "path", ["/v1/activations/conv2", "/v1/active-filters/conv2", "/v1/deconvolution/pool/3", "/v1/inspect"]
)
def test_every_image_endpoint_serves_a_variant(variant_client, digit_png, path):
    response = post_image(variant_client, path, digit_png, model="tanh-sgd", format="json")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tanh-sgd"


def test_compare_png_has_one_labelled_tile_per_classifier(variant_client, digit_png):
    image = decode_png(post_image(variant_client, "/v1/compare/deconvolution/conv1/5", digit_png))
    count = 1 + len(VARIANTS)
    assert image.size == (count * 28 * 8 + (count - 1) * ROW_GAP, 28 * 8 + ROW_LABEL_HEIGHT)
    two = decode_png(
        post_image(variant_client, "/v1/compare/deconvolution/conv2/7", digit_png, models="relu-adam,tanh-sgd", scale=4)
    )
    assert two.size == (2 * 28 * 4 + ROW_GAP, 28 * 4 + ROW_LABEL_HEIGHT)


def test_compare_json_matches_each_model_s_own_projection(variant_client, digit_png):
    compared = post_image(
        variant_client, "/v1/compare/deconvolution/conv2/7", digit_png, models="classifier,tanh-sgd", format="json"
    ).json()
    assert [entry["model"] for entry in compared["models"]] == ["classifier", "tanh-sgd"]
    for entry in compared["models"]:
        alone = post_image(
            variant_client, "/v1/deconvolution/conv2/7", digit_png, model=entry["model"], format="json"
        ).json()
        np.testing.assert_allclose(entry["values"], alone["values"], rtol=1e-6)


@pytest.mark.parametrize(
    "models, status, says",
    [
        ("relu-adam", 422, "python -m training sweep"),
        ("relu-adam,autoencoder", 422, "only classifiers"),
        ("relu-adam,nope", 404, "unknown model 'nope'"),
    ],
)
def test_compare_refuses_fewer_than_two_classifiers(variant_client, digit_png, models, status, says):
    response = post_image(variant_client, "/v1/compare/deconvolution/conv1/0", digit_png, models=models)
    assert response.status_code == status and says in response.json()["error"]


def test_compare_without_variants_says_how_to_train_them(client, digit_png):
    response = post_image(client, "/v1/compare/deconvolution/conv1/0", digit_png)
    assert response.status_code == 422
    assert "got 1 (classifier)" in response.json()["error"] and "python -m training sweep" in response.json()["error"]


def test_a_tampered_variant_stops_start_up(tiny_sweep, tmp_path):
    variants = tmp_path / "variants"
    shutil.copytree(tiny_sweep / "relu-adam", variants / "relu-adam")
    with open(variants / "relu-adam" / "classifier.onnx", "r+b") as onnx_file:
        onnx_file.seek(-1, 2)
        last = onnx_file.read(1)
        onnx_file.seek(-1, 2)
        onnx_file.write(bytes([last[0] ^ 1]))
    model_dir = model_dir_with(tmp_path / "models", variants)
    for check in (verify_model_files, load_registry):
        with pytest.raises(ModelLoadError, match="relu-adam/classifier.onnx has SHA-256"):
            check(model_dir)


def test_variants_without_their_onnx_files_are_skipped_with_one_informational_line(tiny_sweep, tmp_path, caplog):
    variants = tmp_path / "variants"
    for name in ("tanh-sgd", "relu-adam"):
        (variants / name).mkdir(parents=True)
        shutil.copy(tiny_sweep / name / "manifest.json", variants / name)
    model_dir = model_dir_with(tmp_path / "models", variants)
    with caplog.at_level("INFO", logger="convlens.registry"):
        verify_model_files(model_dir)
        assert list(load_registry(model_dir).models) == ["classifier", "autoencoder"]
    lines = [record for record in caplog.records if record.name == "convlens.registry"]
    assert len(lines) == 1 and lines[0].levelname == "INFO"
    assert "2 of 2 variants" in lines[0].getMessage() and "python -m training sweep" in lines[0].getMessage()


def test_a_variants_statistics_are_served_with_model(variant_client):
    served = variant_client.get("/v1/statistics", params={"model": "tanh-sgd"}).json()
    shipped = variant_client.get("/v1/statistics").json()
    assert served["model"] == "tanh-sgd"
    assert served["model_sha256"] == variant_client.get("/v1/models/tanh-sgd").json()["sha256"]
    assert served["model_sha256"] != shipped["model_sha256"]
    counts = variant_client.get("/v1/statistics/active-filters/conv2", params={"model": "tanh-sgd"}).json()
    assert len(counts["counts"]) == 10 and len(counts["counts"][0]) == 64


def test_a_variants_dataset_threshold_is_its_own(variant_client, digit_png):
    own = variant_client.get("/v1/statistics", params={"model": "tanh-sgd"}).json()
    threshold = next(layer["dataset_threshold"] for layer in own["layers"] if layer["layer"] == "conv2")
    answer = post_image(
        variant_client, "/v1/active-filters/conv2", digit_png, model="tanh-sgd", threshold="dataset"
    ).json()
    assert answer["threshold"] == pytest.approx(threshold)


def test_a_variants_top_images_are_its_own(variant_client):
    response = variant_client.get("/v1/filters/conv2/5/top-images", params={"model": "relu-sgd"})
    assert response.status_code == 200 and len(response.json()["images"]) == 9
    assert (
        decode_png(
            variant_client.get("/v1/filters/conv2/5/top-images", params={"model": "relu-sgd", "format": "png"})
        ).size[0]
        > 0
    )


def test_a_variants_plots_are_not_drawn_so_png_is_404_pointing_to_json(variant_client):
    response = variant_client.get("/v1/statistics/norms/conv2", params={"model": "tanh-sgd", "format": "png"})
    assert response.status_code == 404 and "format=json" in response.json()["error"]


def test_a_model_without_statistics_is_404_listing_those_with(variant_client):
    response = variant_client.get("/v1/statistics", params={"model": "autoencoder"})
    assert response.status_code == 404
    assert response.json()["error"].startswith(
        "no dataset statistics for model 'autoencoder'; statistics exist for: classifier"
    )
