"""The classifier as a PyTorch module with an ONNX file's own weights, for Captum's attribution methods."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from service.attribution import ClassifierWeights

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU}


class TorchClassifier(nn.Module):
    """conv1 → act1 → conv2 → act2 → pool → NHWC flatten → dense1 → act3 → output (logits, or softmax).

    Each activation is its own module (Captum's GuidedBackprop hooks nn.ReLU modules, and LayerGradCam is given
    act1, act2 and pool to see the layer outputs the ONNX graph exposes as conv1, conv2 and pool).
    """

    def __init__(self, weights: ClassifierWeights, softmax: bool = False) -> None:
        super().__init__()
        act = ACTIVATIONS[weights.activation]
        self.conv1, self.act1 = nn.Conv2d(1, 32, 3), act()
        self.conv2, self.act2 = nn.Conv2d(32, 64, 3), act()
        self.pool = nn.MaxPool2d(2)
        self.dense1, self.act3 = nn.Linear(9216, 128), act()
        self.output = nn.Linear(128, 10)
        self.softmax = softmax
        with torch.no_grad():
            for conv, kernel, bias in (
                (self.conv1, weights.conv1_kernel, weights.conv1_bias),
                (self.conv2, weights.conv2_kernel, weights.conv2_bias),
            ):
                conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
                conv.bias.copy_(torch.from_numpy(bias.copy()))
            for dense, kernel, bias in (
                (self.dense1, weights.dense1_kernel, weights.dense1_bias),
                (self.output, weights.output_kernel, weights.output_bias),
            ):
                dense.weight.copy_(torch.from_numpy(kernel.T.copy()))
                dense.bias.copy_(torch.from_numpy(bias.copy()))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))
        flat = pooled.permute(0, 2, 3, 1).reshape(len(x), -1)
        logits = self.output(self.act3(self.dense1(flat)))
        return torch.softmax(logits, dim=1) if self.softmax else logits


def as_input(images: np.ndarray) -> torch.Tensor:
    """(N,28,28) numpy images as a (N,1,28,28) tensor that requires gradients."""
    return torch.from_numpy(images[:, None].copy()).requires_grad_()
