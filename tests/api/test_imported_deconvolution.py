"""Deconvolution of an imported model over HTTP (``/v1/deconvolution/...?model=NAME``) against Captum's
``Deconvolution`` on the PyTorch original: the shipped example (examples/train_mnist_cnn.py with the file's weights)
and torchvision's resnet18 (random weights, exported at 64x64). Captum attributes Σ A_k ⊙ layer_k (the filter's
own activation map as the weights, a constant) with the ReLU modules' backward signals rectified: the paper's
projection of map k."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torchvision
from captum.attr import Deconvolution
from onnx import helper
from torch import nn

from service.contract import IMPORTED_DIR, ImportedModel, read_document
from service.images.preprocessing import upload_input
from service.importer import main
from tests.graphs.test_against_captum_torchvision import mnist_example, onnx_tensor_of
from tests.helpers import ROOT, decode_png, encode, post_image
from tests.importer.builders import save, tiny_classifier
from tests.importer.frameworks import export_torch
from tests.importer.over_http import serving

CORRELATION = 0.999
EXAMPLE = ROOT / "examples" / "models" / "mnist-cnn.onnx"
SIDE = 64


class FilterSeeded(nn.Module):
    """``body``'s output weighted by the constant ``seed`` and summed over each channel: (N, C), so that Captum's
    target k attributes Σ seed_k ⊙ body(x)_k."""

    def __init__(self, body: nn.Module, seed: torch.Tensor) -> None:
        super().__init__()
        self.body, self.seed = body, seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.body(x) * self.seed).flatten(2).sum(-1)


def captum_projection(body: nn.Module, image: np.ndarray, filter: int) -> np.ndarray:
    """Captum's Deconvolution of map ``filter`` of ``body``'s output for one (C, H, W) image."""
    x = torch.from_numpy(image[None].copy())
    with torch.no_grad():
        maps = body(x.clone())
    seed = torch.zeros_like(maps)
    seed[:, filter] = maps[:, filter]
    return Deconvolution(FilterSeeded(body, seed)).attribute(x, target=filter).detach().numpy()[0]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("deconvolution")
    models = folder / "models"
    assert main([str(EXAMPLE), "--name", "mnist-cnn", "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    export_torch(resnet, folder / "resnet18.onnx", SIDE)
    assert main([str(folder / "resnet18.onnx"), "--name", "resnet18", "--models-dir", str(models)]) == 0
    assert main([str(save(with_erf(), folder / "erf.onnx")), "--name", "erf", "--models-dir", str(models)]) == 0
    return folder


def with_erf() -> onnx.ModelProto:
    """The importer tests' tiny classifier with an Erf (an op the gradient builder has no rule for) after its ReLU."""
    model = tiny_classifier(("N", 3, 16, 16))
    pool = next(node for node in model.graph.node if node.op_type == "GlobalAveragePool")
    pool.input[0] = "erf_out"
    model.graph.node.insert(
        list(model.graph.node).index(pool), helper.make_node("Erf", ["relu_out"], ["erf_out"], name="/erf/Erf")
    )
    return model


@pytest.fixture(scope="module")
def client(folder):
    with serving(folder / "models") as test_client:
        yield test_client


def manifest(folder: Path, name: str) -> ImportedModel:
    return read_document(folder / "models" / IMPORTED_DIR / name / "manifest.json", ImportedModel)


@pytest.fixture(scope="module")
def digit() -> bytes:
    return (ROOT / "examples" / "digit-7.png").read_bytes()


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(np.random.default_rng(3).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))


def projection_json(client, name: str, layer: str, filter: int, image: bytes) -> np.ndarray:
    response = post_image(client, f"/v1/deconvolution/{layer}/{filter}", image, model=name, format="json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["layer"], body["filter"]) == (name, layer, filter)
    return np.array(body["values"], np.float32)


@pytest.mark.parametrize(("layer", "depth", "filter"), [("features.2.Relu", 3, 5), ("features.10.Relu", 11, 17)])
def test_example_projection_correlates_with_captum_deconvolution(client, folder, digit, layer, depth, filter):
    image = upload_input(digit, manifest(folder, "mnist-cnn"), max_pixels=10**6)[0]
    expected = captum_projection(mnist_example().features[:depth], image, filter)
    actual = projection_json(client, "mnist-cnn", layer, filter, digit)
    assert actual.shape == (1, 28, 28)
    assert correlation(actual, expected) >= CORRELATION


def test_resnet18_projection_through_residual_blocks_correlates_with_captum(client, folder, photo):
    proto = onnx.load(str(folder / "resnet18.onnx"))
    node = next(n.name for n in proto.graph.node if n.output[0] == onnx_tensor_of(proto, "layer2"))
    layer = next(spec.name for spec in manifest(folder, "resnet18").layers if spec.node == node)
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    body = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1, resnet.layer2)
    image = upload_input(photo, manifest(folder, "resnet18"), max_pixels=10**6)[0]
    expected = captum_projection(body, image, 9)
    actual = projection_json(client, "resnet18", layer, 9, photo)
    assert actual.shape == (3, SIDE, SIDE)
    assert correlation(actual, expected) >= CORRELATION


def test_npy_answer_is_the_json_projection(client, digit):
    response = client.post(
        "/v1/deconvolution/features.6.Relu/3",
        params={"model": "mnist-cnn"},
        content=digit,
        headers={"content-type": "image/png", "accept": "application/x-npy"},
    )
    assert response.status_code == 200, response.text
    values = np.load(io.BytesIO(response.content))
    assert np.allclose(values, projection_json(client, "mnist-cnn", "features.6.Relu", 3, digit), atol=1e-6)


def test_png_is_the_projection_min_max_scaled_in_the_inputs_size(client, digit):
    values = projection_json(client, "mnist-cnn", "features.6.Relu", 3, digit)[0]
    picture = np.asarray(
        decode_png(post_image(client, "/v1/deconvolution/features.6.Relu/3", digit, model="mnist-cnn", scale=1))
    )
    expected = np.rint((values - values.min()) / (values.max() - values.min()) * 255)
    assert picture.shape == (28, 28) and np.abs(picture - expected).max() <= 1


def test_colour_model_png_is_rgb_in_the_inputs_size(client, photo):
    response = post_image(client, "/v1/deconvolution/layer1.0.conv1.Conv/2", photo, model="resnet18", scale=2)
    assert decode_png(response).mode == "RGB" and decode_png(response).size == (2 * SIDE, 2 * SIDE)


def test_grid_tiles_every_filter_of_a_layer_projected(client, digit):
    response = post_image(client, "/v1/deconvolution/features.2.Relu", digit, model="mnist-cnn", scale=1)
    assert decode_png(response).size == (4 * 28 + 3, 4 * 28 + 3)  # 16 filters, 4 x 4 tiles, 1 px gaps


def test_grid_of_a_wide_layer_shows_its_64_most_active_filters(client, photo):
    response = post_image(client, "/v1/deconvolution/layer4.1.relu_1.Relu", photo, model="resnet18", scale=1)
    assert decode_png(response).mode == "RGB"
    assert len(response.headers["X-Channels"].split(",")) == 64


def test_filter_out_of_range_is_a_422_naming_the_range(client, digit):
    response = post_image(client, "/v1/deconvolution/features.2.Relu/16", digit, model="mnist-cnn")
    assert response.status_code == 422 and "layer 'features.2.Relu' has filters 0-15" in response.json()["error"]


def test_unknown_layer_is_a_404_listing_the_layers(client, digit):
    response = post_image(client, "/v1/deconvolution/conv9/0", digit, model="mnist-cnn")
    assert response.status_code == 404 and "features.2.Relu" in response.json()["error"]


def test_a_layer_behind_an_op_without_a_rule_is_a_422_naming_the_op_and_node(client, folder):
    layer = next(spec.name for spec in manifest(folder, "erf").layers if spec.op_type == "GlobalAveragePool")
    picture = encode(np.zeros((16, 16, 3), np.uint8))
    response = post_image(client, f"/v1/deconvolution/{layer}/0", picture, model="erf")
    assert response.status_code == 422
    assert "Erf" in response.json()["error"] and "/erf/Erf" in response.json()["error"]


def test_the_models_capabilities_list_deconvolution_among_its_routes(client):
    capabilities = client.get("/v1/models/mnist-cnn").json()["capabilities"]
    assert "POST /v1/deconvolution/{layer}/{filter}" in capabilities["endpoints"]
    assert "deconvolution" not in capabilities["not_applicable"]


EARLY, LATE = "features.2.Relu", "features.10.Relu"


def memory_of(client, name: str = "mnist-cnn") -> int:
    return client.get(f"/v1/models/{name}").json()["memory_bytes"]


def deconvolve(client, layer: str, image: bytes):
    return post_image(client, f"/v1/deconvolution/{layer}/0", image, model="mnist-cnn", format="json")


@pytest.fixture(scope="module")
def session_bytes(folder, digit) -> tuple[int, int, int]:
    """The example's memory before any backward graph, and what its EARLY and LATE deconvnet graphs add."""
    with serving(folder / "models") as fresh:
        base = memory_of(fresh)
        assert deconvolve(fresh, EARLY, digit).status_code == 200
        early = memory_of(fresh) - base
        assert deconvolve(fresh, LATE, digit).status_code == 200
        late = memory_of(fresh) - base - early
    return base, early, late


def test_deconvolution_backward_graphs_count_in_the_model_s_memory(session_bytes):
    _, early, late = session_bytes
    assert early > 0 and late > 0


def test_past_max_backward_graphs_the_least_recently_used_gives_its_bytes_back(folder, digit, session_bytes):
    base, early, late = session_bytes
    with serving(folder / "models", max_backward_graphs=1) as capped:
        assert deconvolve(capped, EARLY, digit).status_code == 200
        assert deconvolve(capped, LATE, digit).status_code == 200
        assert memory_of(capped) == base + late
        assert deconvolve(capped, EARLY, digit).status_code == 200
        assert memory_of(capped) == base + early


def test_a_deconvolution_over_the_memory_budget_is_a_503_naming_the_budget(folder, digit, session_bytes):
    base, early, _ = session_bytes
    with serving(folder / "models") as probe:
        others = probe.app.state.registry.shipped_bytes + sum(
            model.memory_bytes for model in probe.app.state.registry.imported.values()
        )
    with serving(folder / "models", models_memory_bytes=others + early - 1) as tight:
        response = deconvolve(tight, EARLY, digit)
        assert response.status_code == 503 and "CONVLENS_MODELS_MEMORY_BYTES" in response.json()["error"]
        assert memory_of(tight) == base


def test_a_backward_graph_that_fits_only_alone_evicts_the_model_s_older_ones(folder, digit, session_bytes):
    base, early, late = session_bytes
    with serving(folder / "models") as probe:
        others = probe.app.state.registry.shipped_bytes + sum(
            model.memory_bytes for model in probe.app.state.registry.imported.values()
        )
    with serving(folder / "models", models_memory_bytes=others + max(early, late)) as tight:
        assert deconvolve(tight, EARLY, digit).status_code == 200
        assert deconvolve(tight, LATE, digit).status_code == 200
        assert memory_of(tight) == base + late
