"""The gradient attribution methods of imported models over HTTP, on the real app: the shipped example
(examples/models/mnist-cnn.onnx) and a torchvision resnet18 (random weights, 64x64, ImageNet normalisation), each
map against Captum's on the PyTorch original fed the input the service prepared from the upload; the batch route
against the single one; a model with an op outside the backward rules' set (Erf); the cost and memory limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from captum.attr import (
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from onnx import helper
from torch import nn

from service.attribution import METHODS
from service.contract import IMPORTED_DIR, ImportedModel, read_document
from service.images.preprocessing import upload_input
from service.importer import main
from tests.graphs.test_against_captum_torchvision import (
    assert_correlated,
    mnist_example,
    onnx_tensor_of,
    torchvision_model,
)
from tests.helpers import ROOT, decode_png, encode, link_shipped_models
from tests.importer.builders import save, tiny_classifier
from tests.importer.frameworks import export_torch
from tests.importer.over_http import npy_body, serving

EXAMPLE = ROOT / "examples" / "models" / "mnist-cnn.onnx"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SIDE = 64
STEPS, SAMPLES, NOISE = 8, 4, 0.15
RELATIVE = 1e-4


@dataclass(frozen=True)
class Subject:
    """An imported model, its PyTorch original, an upload, the module Grad-CAM reads and occlusion's square."""

    name: str
    original: Callable[[], nn.Module]
    upload: bytes
    module: str
    patch: int
    stride: int


SUBJECTS = {
    "mnist-cnn": Subject(
        "mnist-cnn", mnist_example, (ROOT / "examples" / "digit-3.png").read_bytes(), "features.10", 4, 2
    ),
    "resnet18": Subject(
        "resnet18",
        torchvision_model("resnet18"),
        encode(np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)),
        "layer3",
        16,
        8,
    ),
}


def with_erf(path: Path) -> Path:
    """The importer tests' tiny classifier with an Erf (no backward rule) between its ReLU and its pooling."""
    model = tiny_classifier(("N", 3, 16, 16))
    nodes = list(model.graph.node)
    pool = next(node for node in nodes if node.op_type == "GlobalAveragePool")
    pool.input[0] = "erf_out"
    nodes.insert(nodes.index(pool), helper.make_node("Erf", ["relu_out"], ["erf_out"], name="/erf/Erf"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return save(model, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gradients")
    models = link_shipped_models(folder / "models")
    assert main([str(EXAMPLE), "--name", "mnist-cnn", "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    resnet = export_torch(SUBJECTS["resnet18"].original(), folder / "resnet18.onnx", SIDE)
    imagenet = ["--mean", ",".join(map(str, IMAGENET_MEAN)), "--std", ",".join(map(str, IMAGENET_STD))]
    assert main([str(resnet), "--name", "resnet18", "--resize", str(SIDE), *imagenet, "--models-dir", str(models)]) == 0
    assert (
        main([str(with_erf(folder / "erf.onnx")), "--name", "erf", "--resize", "16", "--models-dir", str(models)]) == 0
    )
    return models


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


def manifest_of(models: Path, name: str) -> ImportedModel:
    return read_document(models / IMPORTED_DIR / name / "manifest.json", ImportedModel)


@dataclass
class Served:
    """A subject as served: its manifest, the input the service prepares from its upload, its PyTorch original."""

    subject: Subject
    manifest: ImportedModel
    image: np.ndarray  # (1, C, H, W)
    model: nn.Module

    @property
    def black(self) -> np.ndarray:
        mean, std = np.asarray(self.manifest.preprocessing.mean), np.asarray(self.manifest.preprocessing.std)
        return np.broadcast_to(-mean / std, (self.image.shape[1],)).astype(np.float32).reshape(1, -1, 1, 1)

    def captum(self, attribution, target: int, *args, **kwargs) -> np.ndarray:
        result = attribution(self.model, *args).attribute(torch.from_numpy(self.image), target=target, **kwargs)
        return result.detach().numpy()


@pytest.fixture(scope="module", params=list(SUBJECTS))
def served(request, models) -> Served:
    subject = SUBJECTS[request.param]
    manifest = manifest_of(models, subject.name)
    spec = manifest.input
    image = upload_input(subject.upload, manifest, max_pixels=10**6).reshape(1, spec.channels, spec.height, spec.width)
    return Served(subject, manifest, image.astype(np.float32), subject.original())


def ask(client, served: Served, method: str, **params) -> dict:
    response = client.post(
        f"/v1/attribution/{method}",
        params={"model": served.subject.name, "format": "json", **params},
        content=served.subject.upload,
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def values(answer: dict) -> np.ndarray:
    return np.array(answer["values"], dtype=np.float32)


def test_saliency_equals_captum_s_within_1e_4_relative(client, served):
    answer = ask(client, served, "saliency")
    expected = served.captum(Saliency, answer["target"], abs=False)[0]
    np.testing.assert_allclose(values(answer), expected, rtol=0, atol=RELATIVE * np.abs(expected).max())
    assert_correlated(values(answer), expected)


def test_saliency_of_a_chosen_class_is_captum_s_for_that_class(client, served):
    answer = ask(client, served, "saliency", target=5)
    assert answer["target"] == 5
    assert_correlated(values(answer), served.captum(Saliency, 5, abs=False)[0])


def test_gradient_x_input_correlates_with_captum_s(client, served):
    answer = ask(client, served, "gradient-x-input")
    assert_correlated(values(answer), served.captum(InputXGradient, answer["target"])[0])


def test_guided_backprop_correlates_with_captum_s(client, served):
    answer = ask(client, served, "guided-backprop")
    assert_correlated(values(answer), served.captum(GuidedBackprop, answer["target"])[0])


def test_integrated_gradients_from_black_correlate_with_captum_s_trapezoid_rule(client, served):
    answer = ask(client, served, "integrated-gradients", steps=STEPS)
    expected = served.captum(
        IntegratedGradients,
        answer["target"],
        baselines=torch.from_numpy(served.black),
        n_steps=STEPS,
        method="riemann_trapezoid",
    )[0]
    assert_correlated(values(answer), expected * STEPS / (STEPS - 1))


def test_smoothgrad_is_captum_s_saliency_over_noise_scaled_to_the_input_range(client, served):
    answer = ask(client, served, "smoothgrad", samples=SAMPLES, noise=NOISE, seed=3)
    std = np.broadcast_to(np.asarray(served.manifest.preprocessing.std), (served.image.shape[1],))
    fields = np.random.default_rng(3).normal(0, NOISE, (SAMPLES, *served.image.shape[1:])) / std[:, None, None]
    saliency = Saliency(served.model)
    expected = np.mean(
        [
            saliency.attribute(
                torch.from_numpy((served.image + field).astype(np.float32)), target=answer["target"], abs=False
            ).numpy()[0]
            for field in fields
        ],
        axis=0,
    )
    assert_correlated(values(answer), expected)


def exposed_layer(models: Path, served: Served) -> str:
    """The exposed layer showing the output of the subject's Grad-CAM module."""
    tensor = onnx_tensor_of(
        onnx.load(str(models / IMPORTED_DIR / served.subject.name / served.manifest.source.file)), served.subject.module
    )
    return next(layer.name for layer in served.manifest.layers if layer.tensor == tensor)


def test_grad_cam_on_a_named_layer_correlates_with_captum_s_layer_grad_cam(client, served, models):
    answer = ask(client, served, "grad-cam", layer=exposed_layer(models, served))
    module = served.model.get_submodule(served.subject.module)
    expected = served.captum(LayerGradCam, answer["target"], module, relu_attributions=True)[0, 0]
    assert values(answer).max() > 0 and answer["signed"] is False
    assert_correlated(values(answer), expected)
    assert np.array(answer["pixels"]).shape == served.image.shape[2:]


def test_occlusion_correlates_with_captum_s_on_the_probabilities(client, served):
    patch, stride = served.subject.patch, served.subject.stride
    answer = ask(client, served, "occlusion", patch=patch, stride=stride)
    channels = served.image.shape[1]
    with torch.no_grad():
        expected = Occlusion(nn.Sequential(served.model, nn.Softmax(dim=1))).attribute(
            torch.from_numpy(served.image),
            target=answer["target"],
            sliding_window_shapes=(channels, patch, patch),
            strides=(channels, stride, stride),
            baselines=torch.from_numpy(served.black),
        )
    assert_correlated(np.array(answer["pixels"]), expected.numpy()[0, 0])


def test_grad_cam_defaults_to_the_last_spatial_layer(client, served):
    answer = ask(client, served, "grad-cam")
    spatial = [layer.name for layer in served.manifest.layers if len(layer.shape) == 4 and min(layer.shape[2:]) > 1]
    assert answer["parameters"]["layer"] == spatial[-1]


def test_an_unknown_grad_cam_layer_is_a_4xx_naming_the_spatial_layers(client, served):
    response = client.post(
        "/v1/attribution/grad-cam",
        params={"model": served.subject.name, "layer": "nowhere"},
        content=served.subject.upload,
        headers={"content-type": "image/png"},
    )
    assert 400 <= response.status_code < 500 and "spatial layers:" in response.json()["error"]


def test_the_heat_map_is_drawn_over_the_upload_at_the_model_s_input_size(client, served):
    response = client.post(
        "/v1/attribution/saliency",
        params={"model": served.subject.name, "scale": 2, "labels": "false"},
        content=served.subject.upload,
        headers={"content-type": "image/png"},
    )
    height, width = served.image.shape[2:]
    assert decode_png(response).size == (width * 2, height * 2)


@pytest.mark.parametrize("method", ["saliency", "grad-cam", "integrated-gradients", "occlusion"])
def test_the_batch_answers_each_image_as_the_single_route(client, served, method):
    params = {"steps": STEPS} if method == "integrated-gradients" else {}
    single = ask(client, served, method, **params)
    other = np.flip(served.image, axis=-1).copy()
    response = client.post(
        f"/v1/attribution/{method}/batch",
        params={"model": served.subject.name, **params},
        content=npy_body(np.concatenate([served.image, other])),
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    first = response.json()["results"][0]
    assert response.json()["count"] == 2 and first["target"] == single["target"]
    np.testing.assert_allclose(
        np.array(first["values"]), values(single), rtol=0, atol=1e-5 * np.abs(values(single)).max()
    )


def brute_force_areas(models: Path, served: Served, pixels: np.ndarray, target: int) -> tuple[float, float]:
    """Deletion and insertion areas by a loop over the user's file: the pixels by |map|, 1/32 of them per step set
    to the normalised black (deletion) or copied onto it (insertion)."""
    session = ort.InferenceSession(
        str(models / IMPORTED_DIR / served.subject.name / served.manifest.source.file),
        providers=["CPUExecutionProvider"],
    )
    image, black = served.image[0], served.black[0]
    order = np.argsort(-np.abs(pixels).ravel(), kind="stable")
    count = order.size
    curves = {"deletion": [], "insertion": []}
    for moved in np.round(np.linspace(0, count, 33)).astype(int):
        mask = np.zeros(count, bool)
        mask[order[:moved]] = True
        mask = mask.reshape(image.shape[1:])
        for name, (on, off) in {"deletion": (black, image), "insertion": (image, black)}.items():
            probe = np.where(mask, np.broadcast_to(on, image.shape), np.broadcast_to(off, image.shape))
            logits = session.run(None, {"input": probe[None].astype(np.float32)})[0][0]
            curves[name].append(np.exp(logits[target] - logits.max()) / np.exp(logits - logits.max()).sum())
    fractions = np.linspace(0, 1, 33)
    return np.trapezoid(curves["deletion"], fractions), np.trapezoid(curves["insertion"], fractions)


def test_faithfulness_areas_equal_a_brute_force_loop_over_the_user_s_file(client, served, models):
    answer = ask(client, served, "saliency", faithfulness="true")
    pixels = values(answer).sum(axis=0)
    deletion, insertion = brute_force_areas(models, served, pixels, answer["target"])
    assert answer["faithfulness"]["deletion_auc"] == pytest.approx(deletion, abs=1e-4)
    assert answer["faithfulness"]["insertion_auc"] == pytest.approx(insertion, abs=1e-4)


def test_a_covered_model_lists_the_gradient_methods_and_their_routes(client):
    capabilities = client.get("/v1/models/resnet18").json()["capabilities"]
    assert capabilities["attribution_methods"] == list(METHODS)
    assert capabilities["no_gradients"] is None and "POST /v1/attribution/grad-cam/batch" in capabilities["endpoints"]


def colour_square() -> bytes:
    return encode(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8))


@pytest.mark.parametrize("method", ["saliency", "grad-cam", "integrated-gradients"])
def test_a_gradient_method_on_a_model_with_an_op_without_a_rule_is_a_422_naming_op_and_node(client, method):
    response = client.post(
        f"/v1/attribution/{method}",
        params={"model": "erf"},
        content=colour_square(),
        headers={"content-type": "image/png"},
    )
    error = response.json()["error"]
    assert response.status_code == 422
    assert "op 'Erf' at node '/erf/Erf' has no backward rule" in error and "occlusion" in error


def test_a_model_with_an_op_without_a_rule_still_serves_the_forward_routes(client):
    for path, params in (("/v1/classify", {}), ("/v1/attribution/occlusion", {"patch": 4, "stride": 2})):
        response = client.post(
            path, params={"model": "erf", **params}, content=colour_square(), headers={"content-type": "image/png"}
        )
        assert response.status_code == 200, (path, response.text)


@pytest.mark.parametrize("method", ["eigen-cam", "score-cam", "ablation-cam"])
def test_a_model_with_an_op_without_a_rule_still_serves_the_forward_only_cams(client, method):
    response = client.post(
        f"/v1/attribution/{method}",
        params={"model": "erf", "format": "json"},
        content=colour_square(),
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    assert np.array(response.json()["values"]).ndim == 2 and response.json()["signed"] is False


def test_a_model_with_an_op_without_a_rule_lists_what_stops_its_gradients(client):
    capabilities = client.get("/v1/models/erf").json()["capabilities"]
    served = ["score-cam", "eigen-cam", "ablation-cam", "occlusion", "rise", "kernel-shap", "feature-ablation"]
    assert capabilities["attribution_methods"] == served
    assert "op 'Erf' at node '/erf/Erf'" in capabilities["no_gradients"]
    assert "saliency" in capabilities["attribution_needs_gradients"]
    assert "POST /v1/attribution/saliency" not in capabilities["endpoints"]


def test_too_much_backward_work_is_a_413_naming_the_limit(models):
    with serving(models, max_gradient_work=500) as limited:
        batch = np.zeros((8, 1, 28, 28), np.float32)
        response = limited.post(
            "/v1/attribution/integrated-gradients/batch",
            params={"model": "mnist-cnn", "steps": 64},
            content=npy_body(batch),
            headers={"content-type": "application/octet-stream"},
        )
        assert response.status_code == 413 and "CONVLENS_MAX_GRADIENT_WORK is 500" in response.json()["error"]
        single = limited.post(
            "/v1/attribution/saliency",
            params={"model": "mnist-cnn", "format": "json"},
            content=SUBJECTS["mnist-cnn"].upload,
            headers={"content-type": "image/png"},
        )
        assert single.status_code == 200, single.text


def test_a_backward_graph_over_the_memory_budget_is_a_503_naming_the_budget(models, client):
    registry = client.app.state.registry
    budget = registry.shipped_bytes + sum(
        model.memory_bytes - model.gradient_bytes for model in registry.imported.values()
    )
    with serving(models, models_memory_bytes=budget + 1024) as tight:
        response = tight.post(
            "/v1/attribution/saliency",
            params={"model": "mnist-cnn"},
            content=SUBJECTS["mnist-cnn"].upload,
            headers={"content-type": "image/png"},
        )
        assert response.status_code == 503 and "CONVLENS_MODELS_MEMORY_BYTES" in response.json()["error"]
        classify = tight.post(
            "/v1/classify",
            params={"model": "mnist-cnn"},
            content=SUBJECTS["mnist-cnn"].upload,
            headers={"content-type": "image/png"},
        )
        assert classify.status_code == 200
