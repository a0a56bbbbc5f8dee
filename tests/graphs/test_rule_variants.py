"""The builder on a small PyTorch CNN exported to ONNX against torch autograd and Captum on the original: saliency
(the exact gradient), guided backpropagation (Captum's GuidedBackprop) and the deconvnet (Captum's
Deconvolution). The network holds a residual block with BatchNorm, a depthwise convolution, max and average
pooling, a Concat of two branches, HardSwish and a squeeze-and-excitation Mul."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from captum.attr import Deconvolution, GuidedBackprop, Saliency
from torch import nn

from service.graphs.gradient_builder import gradient_graph

RELATIVE = 1e-4
torch.manual_seed(0)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce, self.relu = nn.Conv2d(channels, 4, 1), nn.ReLU()
        self.expand, self.gate = nn.Conv2d(4, channels, 1), nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.relu(self.reduce(x.mean(dim=(2, 3), keepdim=True)))))
        return x * scale


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1 = (
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.conv2, self.bn2, self.relu2 = (
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(x + self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))


class SmallCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stem_relu = nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU()
        self.residual = Residual(8)
        self.depthwise, self.depthwise_relu = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU()
        self.max_pool, self.average_pool = nn.MaxPool2d(2), nn.AvgPool2d(3, stride=2, padding=1)
        self.branch, self.branch_act = nn.Conv2d(8, 6, 1), nn.Hardswish()
        self.excite = SqueezeExcite(14)
        self.head = nn.Linear(14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.residual(self.stem_relu(self.stem(x)))
        pooled = self.max_pool(self.depthwise_relu(self.depthwise(x)))
        x = torch.cat([pooled, self.branch_act(self.branch(self.average_pool(x)))], dim=1)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.excite(x), 1), 1))


@pytest.fixture(scope="module")
def network() -> tuple[nn.Module, onnx.ModelProto]:
    model = SmallCnn()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_(1, 0.2)
    model.eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 16, 16),),
        buffer,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}},
        dynamo=False,
        opset_version=17,
    )
    return model, onnx.load_from_string(buffer.getvalue())


def builder_map(model: onnx.ModelProto, images: np.ndarray, targets: np.ndarray, rules: str) -> np.ndarray:
    built = gradient_graph(model, "logits", ["input"], rules=rules)
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    seeds = np.eye(10, dtype=np.float32)[targets]
    return session.run([built.gradients["input"]], {"input": images, built.seed_input: seeds})[0]


CAPTUM = {"gradient": lambda m: Saliency(m), "guided": GuidedBackprop, "deconvnet": Deconvolution}


@pytest.mark.parametrize("rules", list(CAPTUM))
def test_builder_map_equals_captum_on_the_pytorch_original(network, rules: str) -> None:
    model, proto = network
    images = np.random.default_rng(1).normal(size=(4, 1, 16, 16)).astype(np.float32)
    targets = np.array([0, 3, 7, 9])
    kwargs = {"abs": False} if rules == "gradient" else {}
    expected = CAPTUM[rules](model).attribute(torch.from_numpy(images), target=torch.from_numpy(targets), **kwargs)
    actual = builder_map(proto, images, targets, rules)
    np.testing.assert_allclose(actual, expected.detach().numpy(), rtol=0, atol=RELATIVE * float(expected.abs().max()))


def test_variants_differ_on_this_network(network) -> None:
    _, proto = network
    images = np.random.default_rng(2).normal(size=(2, 1, 16, 16)).astype(np.float32)
    maps = {rules: builder_map(proto, images, np.array([1, 2]), rules) for rules in CAPTUM}
    assert not np.allclose(maps["gradient"], maps["guided"])
    assert not np.allclose(maps["guided"], maps["deconvnet"])
