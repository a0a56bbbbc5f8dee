"""The dataset analyses of an imported model served over HTTP: the MNIST example imported with its shipped analysis
(``make import-example``: ``--analysis examples/models/mnist-cnn-analysis``) checked against a brute-force loop over
the real test split, an analysis of a flat (unlabelled) folder served for its layer-wide parts, and the top images'
deconvolutions against the deconvolution route, on the example and on a model with an op without a backward rule
(Erf) on part of its layers' paths."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from service.api.render import NPY
from service.contract import IMPORTED_DIR, ImportedModel, read_document
from service.importer import main
from service.pictures.grids import to_uint8
from tests.api.test_imported_deconvolution import with_erf
from tests.helpers import ROOT, decode_png, encode, link_shipped_models
from tests.importer.builders import save
from tests.importer.over_http import npy_body, serving
from training.stream_analysis import analyze_images

EXAMPLE = ROOT / "examples" / "models" / "mnist-cnn.onnx"
ANALYSIS = ROOT / "examples" / "models" / "mnist-cnn-analysis"
NAME = "mnist-cnn"
FLAT = "mnist-flat"
FLAT_IMAGES = 500
ERF = "erf"
ERF_IMAGES = 20


def import_example(models: Path, name: str, *extra: str) -> int:
    return main([str(EXAMPLE), "--name", name, "--preprocess", "mnist", "--models-dir", str(models), *extra])


@pytest.fixture(scope="module")
def models(tmp_path_factory, mnist_test) -> Path:
    """The shipped models, the example imported with its analysis, and the example imported again as ``FLAT``
    with an analysis of a flat folder of the first FLAT_IMAGES test images."""
    folder = link_shipped_models(tmp_path_factory.mktemp("imported-statistics") / "models")
    assert import_example(folder, NAME, "--analysis", str(ANALYSIS)) == 0
    assert import_example(folder, FLAT) == 0
    flat = tmp_path_factory.mktemp("flat") / "flat"
    flat.mkdir()
    for index in range(FLAT_IMAGES):
        Image.fromarray(mnist_test[0][index]).save(flat / f"{index:05d}.png")
    analyze_images(folder, FLAT, flat, batch_size=128, plots=True, progress=False)
    erf = save(with_erf(), tmp_path_factory.mktemp("erf") / "erf.onnx")
    assert main([str(erf), "--name", ERF, "--resize", "16", "--models-dir", str(folder)]) == 0
    photos = tmp_path_factory.mktemp("photos") / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for index in range(ERF_IMAGES):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(photos / f"{index:05d}.png")
    analyze_images(folder, ERF, photos, batch_size=8, plots=False, progress=False)
    return folder


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def brute_force(models, mnist_test) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every exposed layer's per-image activation as the analysis defines it (the L2 norm of each channel's map,
    a unit's absolute value), and the probabilities, over the 10,000 test images: a plain loop over onnxruntime."""
    folder = models / "imported" / NAME
    session = ort.InferenceSession(str(folder / "exposed.onnx"), providers=["CPUExecutionProvider"])
    layers = [output.name for output in session.get_outputs()]
    norms: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    images = mnist_test[0].astype(np.float32) / 255.0
    for start in range(0, len(images), 500):
        maps = session.run(layers, {"input": images[start : start + 500, None]})
        for layer, values in zip(layers, maps, strict=True):
            if values.ndim == 4:
                values = np.sqrt((values.astype(np.float64) ** 2).sum(axis=(2, 3)))
            norms[layer].append(np.abs(values))
    everything = {layer: np.concatenate(parts) for layer, parts in norms.items()}
    return everything, everything["probabilities"]


def test_the_example_top_images_equal_a_brute_force_ranking_for_filters_of_every_layer(client, brute_force):
    norms, _ = brute_force
    for layer, values in norms.items():
        channels = values.shape[1]
        for k in sorted({0, channels // 2, channels - 1}):
            answer = client.get(f"/v1/filters/{layer}/{k}/top-images", params={"model": NAME})
            assert answer.status_code == 200, answer.text
            served = [row["index"] for row in answer.json()["images"]]
            expected = np.lexsort((np.arange(len(values)), -values[:, k]))[:9]
            assert served == expected.tolist(), (layer, k)


def test_the_example_summary_gives_the_test_split_and_the_brute_force_accuracy(client, brute_force, mnist_test):
    _, probabilities = brute_force
    summary = client.get("/v1/statistics", params={"model": NAME}).json()
    assert summary["images"] == 10_000 and summary["labelled"]
    assert summary["label_counts"] == np.bincount(mnist_test[1], minlength=10).tolist()
    assert summary["accuracy"] == pytest.approx(float((probabilities.argmax(axis=1) == mnist_test[1]).mean()))


def test_the_example_dataset_threshold_is_the_brute_force_mean_norm(client, brute_force):
    norms, _ = brute_force
    summary = client.get("/v1/statistics", params={"model": NAME}).json()
    thresholds = {layer["layer"]: layer["dataset_threshold"] for layer in summary["layers"]}
    assert set(thresholds) == set(norms)
    for layer, values in norms.items():
        assert thresholds[layer] == pytest.approx(values.mean(), rel=1e-6), layer


def test_threshold_dataset_on_active_filters_applies_the_example_analysis(client, mnist_test):
    layer = "features.6.Relu"
    summary = client.get("/v1/statistics", params={"model": NAME}).json()
    expected = next(entry["dataset_threshold"] for entry in summary["layers"] if entry["layer"] == layer)
    answer = client.post(
        f"/v1/active-filters/{layer}",
        params={"model": NAME, "threshold": "dataset"},
        content=encode(mnist_test[0][0]),
        headers={"content-type": "image/png"},
    ).json()
    assert answer["threshold"] == pytest.approx(expected)
    assert answer["active"] == [k for k, norm in enumerate(answer["norms"]) if norm > expected]


def test_the_example_active_filter_counts_and_plots_are_served(client):
    counts = client.get("/v1/statistics/active-filters/features.10.Relu", params={"model": NAME}).json()
    assert len(counts["counts"]) == 10 and len(counts["counts"][0]) == 64
    plot = client.get("/v1/statistics/norms/features.10.Relu", params={"model": NAME, "format": "png"})
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    top = client.get("/v1/filters/features.10.Relu/5/top-images", params={"model": NAME, "format": "png"})
    assert top.status_code == 200 and top.content.startswith(b"\x89PNG")


def test_an_unlabelled_analysis_serves_its_layer_wide_parts(client, brute_force):
    summary = client.get("/v1/statistics", params={"model": FLAT}).json()
    assert summary["images"] == FLAT_IMAGES and not summary["labelled"] and summary["label_counts"] is None
    norms = client.get("/v1/statistics/norms/features.2.Relu", params={"model": FLAT}).json()
    expected = brute_force[0]["features.2.Relu"][:FLAT_IMAGES]
    assert [row["max"] for row in norms["filters"]] == pytest.approx(expected.max(axis=0).tolist(), rel=1e-6)
    top = client.get("/v1/filters/logits/3/top-images", params={"model": FLAT}).json()["images"]
    assert [row["label"] for row in top] == [-1] * 9
    logits = brute_force[0]["logits"][:FLAT_IMAGES, 3]
    assert [row["index"] for row in top] == np.argsort(-logits, kind="stable")[:9].tolist()


@pytest.mark.parametrize(
    ("path", "label"),
    [("/v1/statistics/active-filters/features.2.Relu", None), ("/v1/statistics/norms/features.2.Relu", 3)],
)
def test_per_class_results_of_an_unlabelled_analysis_are_a_404_saying_it_had_no_labels(client, path, label):
    answer = client.get(path, params={"model": FLAT, **({} if label is None else {"label": label})})
    assert answer.status_code == 404 and "had no labels" in answer.json()["error"]


def test_the_importer_refuses_an_analysis_of_another_model(tmp_path):
    assert import_example(tmp_path / "models", "other-name", "--analysis", str(ANALYSIS)) == 2
    assert not (tmp_path / "models" / "imported" / "other-name").exists()


def test_a_label_beyond_the_imported_models_classes_is_a_422(client):
    answer = client.get("/v1/statistics/norms/features.2.Relu", params={"model": NAME, "label": 10})
    assert answer.status_code == 422 and "labels are 0-9" in answer.json()["error"]


def npy_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content), allow_pickle=False)


def erf_layer(models: Path, op_type: str) -> str:
    manifest = read_document(models / IMPORTED_DIR / ERF / "manifest.json", ImportedModel)
    return next(spec.name for spec in manifest.layers if spec.op_type == op_type)


@pytest.mark.parametrize(("layer", "k"), [("features.2.Relu", 5), ("features.10.Relu", 17)])
def test_each_top_image_s_projection_is_the_deconvolution_route_s_of_that_image(client, mnist_test, layer, k):
    rows = client.get(f"/v1/filters/{layer}/{k}/top-images", params={"model": NAME}).json()["images"]
    projections = npy_of(
        client.get(f"/v1/filters/{layer}/{k}/top-images", params={"model": NAME}, headers={"accept": NPY})
    )
    assert projections.shape == (9, 1, 28, 28)
    for row, projection in zip(rows, projections, strict=True):
        image = encode(mnist_test[0][row["index"]])
        expected = npy_of(
            client.post(
                f"/v1/deconvolution/{layer}/{k}",
                params={"model": NAME, "preprocess": "none"},
                content=image,
                headers={"content-type": "image/png", "accept": NPY},
            )
        )
        np.testing.assert_allclose(projection, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_the_example_top_images_png_puts_each_image_beside_its_projection(client, mnist_test):
    layer, k = "features.10.Relu", 17
    rows = client.get(f"/v1/filters/{layer}/{k}/top-images", params={"model": NAME}).json()["images"]
    answer = client.get(
        f"/v1/filters/{layer}/{k}/top-images", params={"model": NAME, "format": "png", "labels": "false", "scale": 1}
    )
    panel = np.array(decode_png(answer))
    grid = 3 * 28 + 2
    assert answer.headers["x-projections"] == "deconvnet" and panel.shape == (grid, 2 * grid + 4)
    assert np.array_equal(panel[:28, :28], mnist_test[0][rows[0]["index"]])
    projection = npy_of(
        client.get(f"/v1/filters/{layer}/{k}/top-images", params={"model": NAME}, headers={"accept": NPY})
    )[0, 0]
    assert np.abs(panel[:28, grid + 4 : grid + 32].astype(int) - to_uint8(projection)).max() <= 1


def test_a_layer_behind_an_op_without_a_rule_keeps_its_top_images_alone_saying_why(client, models):
    layer = erf_layer(models, "GlobalAveragePool")
    answer = client.get(f"/v1/filters/{layer}/0/top-images", params={"model": ERF, "format": "png", "scale": 1})
    assert answer.status_code == 200 and answer.headers["x-projections"].startswith("none:")
    assert "Erf" in answer.headers["x-projections"] and "/erf/Erf" in answer.headers["x-projections"]
    projections = client.get(f"/v1/filters/{layer}/0/top-images", params={"model": ERF}, headers={"accept": NPY})
    assert projections.status_code == 422 and "/erf/Erf" in projections.json()["error"]


def test_a_layer_before_the_op_without_a_rule_gets_its_projections(client, models):
    layer = erf_layer(models, "Relu")
    answer = client.get(f"/v1/filters/{layer}/0/top-images", params={"model": ERF, "format": "png"})
    assert answer.status_code == 200 and answer.headers["x-projections"] == "deconvnet"


def test_the_example_quality_table_is_served_for_every_method_it_serves_without_curves(client, models):
    from training.quality_table import QUALITY_IMAGES, imported_methods, quality_sample

    answer = client.get("/v1/statistics/attribution", params={"model": NAME}).json()
    quality = answer["quality"]
    assert quality["images"] == QUALITY_IMAGES
    assert quality["indices"] == quality_sample(10_000).tolist()
    served = client.app.state.registry.imported[NAME]
    assert [row["method"] for row in quality["methods"]] == list(imported_methods(served))
    assert answer["fractions"] is None and answer["methods"] == []


def test_the_example_quality_table_s_saliency_sparseness_is_the_batch_route_s_mean(client, models, mnist_test):
    from service.studies.analysed_models import analysed_model
    from training.quality_table import quality_sample

    example = analysed_model(models, NAME)
    inputs = np.stack([example.preprocess(mnist_test[0][i]) for i in quality_sample(10_000)])
    response = client.post(
        "/v1/attribution/saliency/batch",
        params={"model": NAME, "metrics": "sparseness"},
        content=npy_body(inputs),
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    expected = np.mean([item["metrics"]["sparseness"] for item in response.json()["results"]])
    table = client.get("/v1/statistics/attribution", params={"model": NAME}).json()["quality"]
    row = next(row for row in table["methods"] if row["method"] == "saliency")
    cell = next(cell for cell in row["metrics"] if cell["metric"] == "sparseness")
    assert cell["mean"] == pytest.approx(expected, abs=1e-6)


def test_the_example_quality_figure_is_served_as_the_shipped_png(client):
    response = client.get("/v1/statistics/attribution", params={"model": NAME, "format": "png", "figure": "quality"})
    assert response.status_code == 200
    assert response.content == (ANALYSIS / "plots" / "explanation-quality.png").read_bytes()


def test_an_imported_analysis_without_a_quality_table_says_how_to_add_one(client):
    response = client.get("/v1/statistics/attribution", params={"model": FLAT})
    assert response.status_code in (404, 503)
    assert "--only" in response.json()["error"]
