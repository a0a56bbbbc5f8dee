"""The builder's attribution maps (service.attribution.any_model on gradient_graph sessions) against Captum on the
PyTorch originals: torchvision resnet18, mobilenet_v3_small, squeezenet1_1, efficientnet_b0 and densenet121
(random weights, eval mode, exported at 64x64 by the importer tests' exporter) and the shipped MNIST example
(examples/models/mnist-cnn.onnx, its PyTorch source with the file's own weights).

Saliency agrees within 1e-4 of Captum's largest entry; every map (saliency, gradient × input, integrated gradients,
SmoothGrad, guided backprop, the deconvnet, Grad-CAM on a named block, occlusion) correlates at least 0.999 with
Captum's. Integrated gradients uses the service's trapezoid weights (summing to 1), Captum's the same points
weighted 1/steps: Captum's map times steps/(steps-1) is compared. SmoothGrad's Captum side is Captum's Saliency
averaged over the same noisy copies the builder's side runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from PIL import Image
from torch import nn

from service.attribution.any_model import (
    GradientRunner,
    grad_cam,
    gradient_x_input,
    integrated_gradients,
    occlusion,
    one_hot,
    saliency,
    smoothgrad,
)
from service.graphs.gradient_builder import gradient_graph, unsupported_op
from tests.importer.frameworks import export_torch

ROOT = Path(__file__).resolve().parents[2]
RELATIVE = 1e-4
CORRELATION = 0.999
BATCH = 2
STEPS = 6
SAMPLES = 3


class ReluModuleDenseNet(nn.Module):
    """torchvision's DenseNet with its last ReLU as a module: DenseNet.forward applies ``F.relu``, which Captum's
    GuidedBackprop and Deconvolution do not see (they override nn.ReLU modules), while the builder's variants
    rectify every Relu node of the graph. Same function, same modules, same weights."""

    def __init__(self, densenet: torchvision.models.DenseNet) -> None:
        super().__init__()
        self.features, self.relu, self.classifier = densenet.features, nn.ReLU(), densenet.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(self.relu(self.features(x)), 1)
        return self.classifier(torch.flatten(pooled, 1))


def mnist_example() -> nn.Module:
    """examples/train_mnist_cnn.py's network holding the shipped ONNX file's weights."""
    spec = importlib.util.spec_from_file_location("train_mnist_cnn", ROOT / "examples" / "train_mnist_cnn.py")
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    model = source.MnistCnn()
    proto = onnx.load(str(ROOT / "examples" / "models" / "mnist-cnn.onnx"))
    state = {init.name: torch.from_numpy(onnx.numpy_helper.to_array(init).copy()) for init in proto.graph.initializer}
    missing = model.load_state_dict(state, strict=False).missing_keys
    assert all(key.endswith("num_batches_tracked") for key in missing), missing
    return model.eval()


@dataclass(frozen=True)
class Architecture:
    """How to get the PyTorch original, its input (channels, side), its classes, and the module Grad-CAM reads."""

    original: Callable[[], nn.Module]
    channels: int
    side: int
    classes: int
    layer: str
    window: int  # occlusion's square side; its stride is half of it
    captum_view: Callable[[nn.Module], nn.Module] = lambda model: model


def torchvision_model(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return getattr(torchvision.models, name)(weights=None).eval()

    return build


ARCHITECTURES = {
    "resnet18": Architecture(torchvision_model("resnet18"), 3, 64, 1000, "layer3", 16),
    "mobilenet_v3_small": Architecture(torchvision_model("mobilenet_v3_small"), 3, 64, 1000, "features.8", 16),
    "squeezenet1_1": Architecture(torchvision_model("squeezenet1_1"), 3, 64, 1000, "features.12", 16),
    "efficientnet_b0": Architecture(torchvision_model("efficientnet_b0"), 3, 64, 1000, "features.6", 16),
    "densenet121": Architecture(
        torchvision_model("densenet121"), 3, 64, 1000, "features.denseblock3", 16, ReluModuleDenseNet
    ),
    "mnist-example": Architecture(mnist_example, 1, 28, 10, "features.10", 4),
}


def digit(label: int) -> np.ndarray:
    """examples/digit-<label>.png as a (28, 28) float array in 0..255."""
    return np.asarray(Image.open(ROOT / "examples" / f"digit-{label}.png").convert("L"), np.float32)


def onnx_tensor_of(proto: onnx.ModelProto, module_path: str) -> str:
    """The ONNX tensor a module's output became: the last node torch.onnx.export named under the module's path
    (``layer3.1`` -> ``/layer3/layer3.1/...``, ``features.denseblock3`` -> ``/features/denseblock3/...``)."""
    scopes: list[str] = []
    for part in module_path.split("."):  # a Sequential's numbered child is scoped "<parent>.<index>"
        scopes.append(f"{scopes[-1]}.{part}" if part.isdigit() and scopes else part)
    prefix = "/" + "/".join(scopes) + "/"
    return [node for node in proto.graph.node if node.name.startswith(prefix)][-1].output[0]


@dataclass
class Case:
    """One architecture exported once, its builder sessions and its inputs."""

    name: str
    architecture: Architecture
    model: nn.Module
    proto: onnx.ModelProto
    layer_tensor: str
    exact: GradientRunner  # gradients w.r.t. the input and the Grad-CAM layer, the layer's activations
    variants: dict[str, GradientRunner]
    images: np.ndarray
    targets: np.ndarray

    @property
    def seeds(self) -> np.ndarray:
        return one_hot(self.targets, self.architecture.classes)


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    name, architecture = request.param, ARCHITECTURES[request.param]
    model = architecture.original()
    if name == "mnist-example":
        proto = onnx.load(str(ROOT / "examples" / "models" / "mnist-cnn.onnx"))
    else:
        path = tmp_path_factory.mktemp(name) / f"{name}.onnx"
        proto = onnx.load(str(export_torch(model, path, architecture.side, architecture.channels)))
    assert unsupported_op(proto, "logits") is None
    layer_tensor = onnx_tensor_of(proto, architecture.layer)
    exact = GradientRunner(gradient_graph(proto, "logits", ["input", layer_tensor], outputs=[layer_tensor]), "input")
    variants = {
        rules: GradientRunner(gradient_graph(proto, "logits", ["input"], rules=rules), "input")
        for rules in ("guided", "deconvnet")
    }
    rng = np.random.default_rng(1)
    if name == "mnist-example":  # two of the example digits, each attributed to its own label
        targets = np.array([3, 7])
        images = np.stack([digit(label) for label in targets])[:, None] / 255
    else:
        images = rng.normal(size=(BATCH, architecture.channels, architecture.side, architecture.side))
        targets = rng.integers(0, architecture.classes, BATCH)
    return Case(name, architecture, model, proto, layer_tensor, exact, variants, images.astype(np.float32), targets)


def captum(case: Case, attribution, *args, **kwargs) -> np.ndarray:
    """Captum's ``attribution`` class on the PyTorch original, attributing the images' targets."""
    view = case.architecture.captum_view(case.model)
    result = attribution(view, *args).attribute(
        torch.from_numpy(case.images), target=torch.from_numpy(case.targets), **kwargs
    )
    return result.detach().numpy()


def assert_correlated(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    correlation = np.corrcoef(actual.ravel(), expected.ravel())[0, 1]
    assert correlation >= CORRELATION, f"correlation {correlation:.6f}"


def test_saliency_equals_captum_within_1e_4_relative(case: Case) -> None:
    expected = captum(case, Saliency, abs=False)
    actual = saliency(case.exact, case.images, case.seeds)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RELATIVE * np.abs(expected).max())
    assert_correlated(actual, expected)


def test_gradient_x_input_correlates_with_captum(case: Case) -> None:
    assert_correlated(gradient_x_input(case.exact, case.images, case.seeds), captum(case, InputXGradient))


def test_integrated_gradients_correlate_with_captum_s_trapezoid_rule(case: Case) -> None:
    expected = captum(case, IntegratedGradients, baselines=0.0, n_steps=STEPS, method="riemann_trapezoid")
    actual = integrated_gradients(case.exact, case.images, case.seeds, STEPS)
    assert_correlated(actual, expected * STEPS / (STEPS - 1))
    np.testing.assert_allclose(actual, expected * STEPS / (STEPS - 1), rtol=0, atol=1e-3 * np.abs(expected).max())


def test_smoothgrad_correlates_with_captum_s_saliency_on_the_same_noisy_copies(case: Case) -> None:
    noise = np.random.default_rng(2).normal(0, 0.15, (SAMPLES, *case.images.shape[1:])).astype(np.float32)
    saliency_map = Saliency(case.model)
    expected = np.mean(
        [
            saliency_map.attribute(
                torch.from_numpy(case.images + field), target=torch.from_numpy(case.targets), abs=False
            ).numpy()
            for field in noise
        ],
        axis=0,
    )
    assert_correlated(smoothgrad(case.exact, case.images, case.seeds, noise), expected)


@pytest.mark.parametrize(("rules", "method"), [("guided", GuidedBackprop), ("deconvnet", Deconvolution)])
def test_rule_variant_correlates_with_captum(case: Case, rules: str, method) -> None:
    expected = captum(case, method)
    actual = case.variants[rules].gradient(case.images, case.seeds)
    assert_correlated(actual, expected)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RELATIVE * np.abs(expected).max())


def test_grad_cam_on_a_named_block_correlates_with_captum_s_layer_grad_cam(case: Case) -> None:
    layer = case.model.get_submodule(case.architecture.layer)
    expected = captum(case, LayerGradCam, layer, relu_attributions=True)[:, 0]
    actual = grad_cam(case.exact, case.images, case.seeds, case.layer_tensor)
    assert actual.max() > 0, "a Grad-CAM map that is zero everywhere shows nothing"
    assert_correlated(actual, expected)


def test_occlusion_through_onnx_forward_runs_correlates_with_captum(case: Case) -> None:
    side = case.architecture.window
    forward = ort.InferenceSession(case.proto.SerializeToString(), providers=["CPUExecutionProvider"])

    def scores(images: np.ndarray) -> np.ndarray:
        return forward.run(["logits"], {"input": images})[0]

    channels = case.architecture.channels
    with torch.no_grad():
        expected = captum(
            case,
            Occlusion,
            sliding_window_shapes=(channels, side, side),
            strides=(channels, side // 2, side // 2),
            perturbations_per_eval=32,
        )
    actual = occlusion(scores, case.images, case.targets, (side, side), (side // 2, side // 2))
    np.testing.assert_allclose(expected, expected[:, :1].repeat(channels, axis=1))  # every channel the same
    assert_correlated(actual, expected[:, 0])
