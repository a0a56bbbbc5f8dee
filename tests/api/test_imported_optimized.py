"""Optimized inputs of an imported model computed on request over HTTP (``/v1/filters/.../optimized?model=NAME``,
``/v1/classes/{class}/optimized?model=NAME``) against the same ascent in PyTorch autograd on the PyTorch original
of the shipped example (examples/train_mnist_cnn.py with the file's weights).

The rule, as docs/your-own-model.md states it: pixels sigmoid(v), the model's input (pixels - mean) / std; v drawn
by numpy's default_rng(seed) as normal(0, 0.5) float32, then the jitter integers(-2, 3, (steps, 2)) (2 px per 28),
zero in the last round(steps / 6) steps; Adam (learning rate 0.2, betas 0.9 and 0.999, epsilon 1e-8) on
-objective of the rolled pixels; every 8th exploring step the pixels blurred 3x3 with their edges repeated, clipped
to [1e-4, 1 - 1e-4] and taken back to v by the logit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional

from service.api.middleware.work_cost import request_cost
from service.importer import main
from tests.api.test_imported_deconvolution import with_erf
from tests.graphs.test_against_captum_torchvision import mnist_example
from tests.helpers import ROOT, decode_png
from tests.importer.builders import save
from tests.importer.frameworks import export_torch
from tests.importer.over_http import serving

EXAMPLE = ROOT / "examples" / "models" / "mnist-cnn.onnx"
SIDE = 64
# float32: onnxruntime's and PyTorch's kernels round differently; measured at most 7e-7 up to 64 steps. Longer ascents
# may part (0.04 at 128 steps of class 7): a rounding difference flips a max-pooling switch or a ReLU, and the two
# paths then climb apart.
PIXEL_TOLERANCE = 1e-5


def torch_ascent(objective: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], steps: int, seed: int):
    """The documented ascent in PyTorch autograd: the pixels (C, H, W) and the random start's pixels."""
    rng = np.random.default_rng(seed)
    start = rng.normal(0.0, 0.5, (1, *shape)).astype(np.float32)
    jitter = max(1, round(2 * min(shape[1:]) / 28))
    shifts = rng.integers(-jitter, jitter + 1, (steps, 2))
    explore = steps - round(steps / 6)
    shifts[explore:] = 0
    v = torch.tensor(start, requires_grad=True)
    adam = torch.optim.Adam([v], lr=0.2, betas=(0.9, 0.999), eps=1e-8)
    blur = torch.full((shape[0], 1, 3, 3), 1 / 9)
    for step in range(steps):
        adam.zero_grad()
        shown = torch.roll(torch.sigmoid(v), shifts=(int(shifts[step, 0]), int(shifts[step, 1])), dims=(2, 3))
        (-objective(shown).sum()).backward()
        adam.step()
        if step < explore and step % 8 == 7:
            with torch.no_grad():
                padded = functional.pad(torch.sigmoid(v), (1, 1, 1, 1), mode="replicate")
                smoothed = functional.conv2d(padded, blur, groups=shape[0]).clamp(1e-4, 1 - 1e-4)
                v.copy_(torch.log(smoothed / (1 - smoothed)))
    return torch.sigmoid(v).detach().numpy()[0], 1 / (1 + np.exp(-start[0]))


def filter_mean(body: nn.Module, filter: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The mean activation of map ``filter`` of ``body`` on [0, 1] pixels (the example's mean 0, std 1)."""
    return lambda pixels: body(pixels)[:, filter].mean(dim=(1, 2))


def value(objective: Callable[[torch.Tensor], torch.Tensor], pixels: np.ndarray) -> float:
    with torch.no_grad():
        return float(objective(torch.from_numpy(pixels[None].astype(np.float32)))[0])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("optimized")
    models = folder / "models"
    assert main([str(EXAMPLE), "--name", "mnist-cnn", "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    torch.manual_seed(0)
    export_torch(torchvision.models.resnet18(weights=None).eval(), folder / "resnet18.onnx", SIDE)
    assert main([str(folder / "resnet18.onnx"), "--name", "resnet18", "--models-dir", str(models)]) == 0
    assert main([str(save(with_erf(), folder / "erf.onnx")), "--name", "erf", "--models-dir", str(models)]) == 0
    return folder


@pytest.fixture(scope="module")
def client(folder):
    with serving(folder / "models") as test_client:
        yield test_client


def optimized(client, path: str, **params) -> dict:
    response = client.get(path, params={"format": "json", **params})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("layer", "depth", "filter"), [("features.6.Relu", 7, 3), ("features.10.Relu", 11, 20)])
def test_a_filters_input_is_the_same_ascent_in_pytorch_autograd(client, layer, depth, filter):
    answer = optimized(client, f"/v1/filters/{layer}/{filter}/optimized", model="mnist-cnn", steps=24, seed=4)
    expected, _ = torch_ascent(filter_mean(mnist_example().features[:depth], filter), (1, 28, 28), 24, 4)
    assert answer["shape"] == [1, 28, 28] and (answer["steps"], answer["seed"]) == (24, 4)
    assert np.abs(np.array(answer["values"]) - expected).max() <= PIXEL_TOLERANCE


def test_a_classs_input_is_the_same_ascent_in_pytorch_autograd(client):
    answer = optimized(client, "/v1/classes/7/optimized", model="mnist-cnn", steps=64, seed=1)
    expected, _ = torch_ascent(lambda pixels: mnist_example()(pixels)[:, 7], (1, 28, 28), 64, 1)
    assert answer["layer"] == "logits" and answer["index"] == 7
    assert np.abs(np.array(answer["values"]) - expected).max() <= PIXEL_TOLERANCE


def test_the_optimized_input_excites_its_filter_far_more_than_its_random_start(client):
    answer = optimized(client, "/v1/filters/features.10.Relu/5/optimized", model="mnist-cnn")
    objective = filter_mean(mnist_example().features[:11], 5)
    _, start = torch_ascent(objective, (1, 28, 28), 1, 0)
    reached, started = value(objective, np.array(answer["values"])), value(objective, start)
    assert reached >= 3 * started and reached >= started + 1
    assert answer["objective"] == pytest.approx(reached, abs=1e-4)
    assert answer["start_objective"] == pytest.approx(started, abs=1e-4)


def test_the_same_seed_gives_the_same_input_and_another_seed_another(client):
    path = "/v1/filters/features.6.Relu/3/optimized"
    first, again = (optimized(client, path, model="mnist-cnn", steps=8, seed=2)["values"] for _ in range(2))
    other = optimized(client, path, model="mnist-cnn", steps=8, seed=3)["values"]
    assert first == again and first != other


def test_a_colour_models_input_is_rgb_in_its_input_size_and_range(client):
    answer = optimized(client, "/v1/filters/layer1.0.conv1.Conv/4/optimized", model="resnet18", steps=4)
    values = np.array(answer["values"])
    assert values.shape == (3, SIDE, SIDE) and 0 <= values.min() and values.max() <= 1
    response = client.get(
        "/v1/filters/layer1.0.conv1.Conv/4/optimized", params={"model": "resnet18", "steps": 4, "scale": 2, "labels": 0}
    )
    picture = decode_png(response)
    assert picture.mode == "RGB" and picture.size == (2 * SIDE, 2 * SIDE)
    assert np.abs(np.asarray(picture)[::2, ::2] - np.rint(values.transpose(1, 2, 0) * 255)).max() <= 1


def test_the_grid_tiles_every_filter_of_a_layer(client):
    response = client.get(
        "/v1/filters/features.2.Relu/optimized", params={"model": "mnist-cnn", "steps": 4, "scale": 1}
    )
    assert decode_png(response).size == (4 * 28 + 3, 4 * 28 + 3)


def test_steps_over_the_limit_is_a_422_naming_the_setting(client):
    response = client.get("/v1/classes/3/optimized", params={"model": "mnist-cnn", "steps": 257})
    assert response.status_code == 422 and "CONVLENS_MAX_OPTIMIZE_STEPS" in response.json()["error"]


def test_an_ascent_over_the_time_limit_is_a_413_naming_its_estimate_and_the_setting(folder):
    with serving(folder / "models", max_optimize_seconds=0.05) as client:
        response = client.get("/v1/filters/layer4.1.relu_1.Relu/optimized", params={"model": "resnet18"})
    assert response.status_code == 413
    assert "CONVLENS_MAX_OPTIMIZE_SECONDS=0.05" in response.json()["error"]
    assert "128 steps x 512 inputs" in response.json()["error"]


def test_a_class_out_of_range_is_a_422_naming_the_classes(client):
    response = client.get("/v1/classes/10/optimized", params={"model": "mnist-cnn"})
    assert response.status_code == 422 and "classes 0-9" in response.json()["error"]


def test_a_model_with_an_op_without_a_rule_is_a_422_naming_the_op_and_node(client):
    response = client.get("/v1/classes/0/optimized", params={"model": "erf"})
    assert response.status_code == 422
    assert "Erf" in response.json()["error"] and "/erf/Erf" in response.json()["error"]


def test_admission_weighs_an_ascent_by_its_steps_and_inputs(client):
    cost = client.get("/v1/models/mnist-cnn").json()["cost"]

    def weighed(path: str, query: bytes) -> int:
        scope = {"app": client.app, "path": path, "query_string": query, "headers": []}
        return request_cost(scope, b"", 64, 100, 100)

    assert weighed("/v1/filters/features.2.Relu/3/optimized", b"model=mnist-cnn&steps=10") == 4 * 10 * cost
    assert weighed("/v1/filters/features.2.Relu/optimized", b"model=mnist-cnn") == 4 * 128 * 16 * cost
    assert weighed("/v1/filters/conv1/3/optimized", b"model=classifier&steps=10") == 1
