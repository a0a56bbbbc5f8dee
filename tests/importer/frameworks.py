"""The frameworks' own forward passes for the importer's tests: every intermediate tensor of a torchvision model,
found by the exposed layer's name."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import fx, nn
from torchvision.models.feature_extraction import NodePathTracer

from service.contract import ImportedModel

# A functional call inside a module's forward (not a module of its own) as torch.onnx.export names its node (op
# type) and as torch.fx names it (function).
FUNCTIONS = {"Add": "add", "Relu": "relu", "GlobalAveragePool": "adaptive_avg_pool2d", "Mul": "mul"}


def export_torch(model: nn.Module, path: Path, size: int, channels: int = 3) -> Path:
    """``model`` in inference mode as ONNX: the TorchScript exporter (``dynamo=False``), whose node names carry the
    module path (``/layer1/layer1.0/conv1/Conv``), BatchNorm kept as its own node, a dynamic batch."""
    model.eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, channels, size, size),),
        str(path),
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
        training=torch.onnx.TrainingMode.PRESERVE,
    )
    return path


def framework_name(layer: str, model: nn.Module) -> str:
    """The torch.fx qualified name of the computation an exposed layer shows.

    The importer names a layer after its ONNX node, e.g. ``layer1.0.conv1.Conv``: the module path, then the op. When
    that path (less a call count such as ``relu_1``, the second call of ``relu``) is a leaf module, the layer is that
    module's output and torch.fx names it by the path (``layer1.0.relu_1``). Otherwise the op is a function called in
    the forward of the module at that path (``layer1.0.Add`` is the residual ``+`` in ``layer1.0``'s forward), which
    torch.fx names by the module path and the function, with the same call count (``layer1.0.add``)."""
    path, _, op = layer.rpartition(".")
    module_path = re.sub(r"_\d+$", "", path)
    try:
        module = model.get_submodule(module_path)
    except AttributeError:
        module = None
    if module is not None and path and not list(module.children()):
        return path
    op, _, call = op.partition("_")
    name = FUNCTIONS[op] + (f"_{call}" if call else "")
    return f"{path}.{name}" if path else name


class Recorder(fx.Interpreter):
    """Runs a traced model and keeps a copy of every node's output (copied at once, so that a later in-place op,
    such as ``ReLU(inplace=True)`` or ``+=``, does not change what was recorded)."""

    def __init__(self, module: fx.GraphModule, names: dict[fx.Node, str]) -> None:
        super().__init__(module)
        self.names = names
        self.values: dict[str, np.ndarray] = {}

    def run_node(self, node: fx.Node):
        result = super().run_node(node)
        if isinstance(result, torch.Tensor) and node in self.names:
            self.values[self.names[node]] = result.detach().clone().numpy()
        return result


def intermediate_outputs(model: nn.Module, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of ``model``'s forward on ``images`` by its torch.fx qualified name (no module is a leaf but
    torch.nn's own: torchvision's blocks are traced through)."""
    model.eval()
    tracer = NodePathTracer()
    graph = tracer.trace(model)
    traced = fx.GraphModule(tracer.root, graph)
    recorder = Recorder(
        traced, {node: tracer.node_to_qualname[node] for node in traced.graph.nodes if node in tracer.node_to_qualname}
    )
    with torch.no_grad():
        recorder.run(torch.from_numpy(images))
    return recorder.values


def exposed_against_framework(
    manifest: ImportedModel, exposed: dict[str, np.ndarray], framework: dict[str, np.ndarray], model: nn.Module
) -> dict[str, float]:
    """Max |exposed - framework| per feature-map layer (the logits and probabilities are checked on their own)."""
    deltas = {}
    for layer in manifest.layers:
        if layer.name in (manifest.logits, manifest.probabilities):
            continue
        expected = framework[framework_name(layer.name, model)]
        assert exposed[layer.name].shape == expected.shape, layer.name
        deltas[layer.name] = float(np.abs(exposed[layer.name] - expected).max())
    return deltas
