"""Every feature map of an imported classifier as a named graph output: pure ONNX graph work.

A feature map is a 4-D float node output made by a convolution, an activation, a normalisation, a pooling or a
residual Add (an Add of two computed tensors, not of a constant). The swish pattern ``x * sigmoid(x)`` counts as one
activation, its Mul; its gate (the Sigmoid feeding only that Mul) is left out. Each one becomes a graph output under
a readable name (the tensor is renamed where it is made and read): the node's name where it has one
(``/layer1/layer1.0/conv1/Conv`` becomes ``layer1.0.conv1.Conv``: leading slashes dropped, a scope that repeats its
parent's prefix collapsed, other characters outside ``[A-Za-z0-9_.-]`` replaced by ``_``), else
``<op type>_<node index>``; a clash gets ``_2``, ``_3``... in graph order, so the same file always gives the same
names.

The classifier's own output is kept. When it holds logits, a Softmax over the last axis adds ``probabilities``;
when it holds probabilities and a Softmax makes them, that Softmax's 2-D input is exposed as ``logits``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

CONVOLUTIONS = {"Conv", "ConvTranspose", "ConvInteger", "DeformConv"}
ACTIVATIONS = {
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Mish",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Softplus",
    "Softsign",
    "ThresholdedRelu",
    "Clip",
}
NORMALISATIONS = {
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "LpNormalization",
    "LRN",
    "MeanVarianceNormalization",
}
POOLINGS = {"MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
GATES = {"Sigmoid", "HardSigmoid"}
# Ops that pass a classifier's output through unchanged in value (looking back from the output for a Softmax).
SHAPE_ONLY = {"Identity", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Cast"}
LOGITS = "logits"
PROBABILITIES = "probabilities"


@dataclass(frozen=True)
class ExposedLayer:
    """One exposed output: its readable name, the op that made it, its shape (batch None), the node and tensor."""

    name: str
    op_type: str
    shape: tuple[int | None, ...]
    node: str
    tensor: str


@dataclass(frozen=True)
class Exposed:
    """The copy with every layer as an output, its layers in graph order (logits and probabilities last), and
    which of its outputs hold the logits (None when the file has none to show) and the probabilities."""

    model: onnx.ModelProto
    layers: list[ExposedLayer]
    logits: str | None
    probabilities: str


def readable_name(node: onnx.NodeProto, index: int) -> str:
    """The node's name made readable and safe (see the module docstring), or ``<op type>_<index>`` without one."""
    if not node.name.strip("/ "):
        return f"{node.op_type}_{index}"
    merged: list[str] = []
    for part in (part for part in node.name.split("/") if part):
        if merged and part.startswith(merged[-1] + "."):
            merged[-1] = part
        else:
            merged.append(part)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", ".".join(merged)).strip("_") or f"{node.op_type}_{index}"


def _constants(model: onnx.ModelProto) -> set[str]:
    """Tensors whose value does not depend on the input: initializers and Constant nodes' outputs."""
    found = {init.name for init in model.graph.initializer}
    found |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    return found


def _is_feature_op(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto], constants: set[str]) -> bool:
    """Whether ``node`` is one of the ops whose output counts as a layer (shape aside)."""
    op = node.op_type
    if op in CONVOLUTIONS or op in ACTIVATIONS or op in NORMALISATIONS or op in POOLINGS:
        return True
    if op == "Add":
        return len(node.input) == 2 and not any(name in constants for name in node.input)
    if op == "Mul":
        return _swish_gate(node, producers) is not None
    return False


def _swish_gate(mul: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> onnx.NodeProto | None:
    """The Sigmoid (or HardSigmoid) of ``x`` when ``mul`` is ``x * gate(x)``; else None."""
    if len(mul.input) != 2:
        return None
    for gated, other in (mul.input, reversed(mul.input)):
        gate = producers.get(gated)
        if gate is not None and gate.op_type in GATES and gate.input[0] == other:
            return gate
    return None


def _gates(model: onnx.ModelProto, producers: dict[str, onnx.NodeProto]) -> set[str]:
    """Outputs of the Sigmoids that only gate a swish Mul: not layers of their own."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    gates = set()
    for node in model.graph.node:
        if node.op_type == "Mul" and (gate := _swish_gate(node, producers)) is not None:
            if all(
                user.op_type == "Mul" and _swish_gate(user, producers) is gate for user in consumers[gate.output[0]]
            ):
                gates.add(gate.output[0])
    return gates


def probe_shapes(model: onnx.ModelProto, tensors: list[str], batch: np.ndarray) -> dict[str, tuple[int, ...]]:
    """The shape and float-ness of each tensor on one real forward pass (onnxruntime, all of them as outputs):
    what shape inference leaves unknown, onnxruntime knows. Tensors that are not float are left out."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {output.name for output in probe.graph.output}
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in tensors if name not in present)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs() if output.name in set(tensors)]
    values = session.run(names, {session.get_inputs()[0].name: batch})
    return {name: value.shape for name, value in zip(names, values) if np.issubdtype(value.dtype, np.floating)}


def _softmax_input(model: onnx.ModelProto, output: str, producers: dict[str, onnx.NodeProto]) -> str | None:
    """The input of the Softmax that makes ``output`` (through shape-only ops), or None when no Softmax does."""
    tensor = output
    while (node := producers.get(tensor)) is not None:
        if node.op_type == "Softmax":
            return node.input[0]
        if node.op_type not in SHAPE_ONLY:
            return None
        tensor = node.input[0]
    return None


def outputs_logits_by_graph(model: onnx.ModelProto) -> bool:
    """Whether the classifier's output holds logits: no Softmax makes it."""
    producers = {out: node for node in model.graph.node for out in node.output}
    return _softmax_input(model, model.graph.output[0].name, producers) is None


def expose_layers(model: onnx.ModelProto, batch: np.ndarray, outputs_logits: bool) -> Exposed:
    """A copy of ``model`` (one input, one (N, classes) output) with every feature map, the logits and the
    probabilities as outputs; ``batch`` is one real input, used for the shapes."""
    producers = {out: node for node in model.graph.node for out in node.output}
    constants = _constants(model)
    gates = _gates(model, producers)
    candidates = [
        (index, node)
        for index, node in enumerate(model.graph.node)
        if _is_feature_op(node, producers, constants) and node.output[0] not in gates
    ]
    output = model.graph.output[0].name
    softmax_input = _softmax_input(model, output, producers)
    probed = probe_shapes(
        model, [node.output[0] for _, node in candidates] + [output, *filter(None, [softmax_input])], batch
    )

    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    taken = {name for node in model.graph.node for name in (*node.input, *node.output)}
    taken |= {value.name for value in (*model.graph.input, *model.graph.output)}

    def unique(name: str) -> str:
        chosen, count = name, 1
        while chosen in taken:
            count += 1
            chosen = f"{name}_{count}"
        taken.add(chosen)
        return chosen

    renamed: dict[str, str] = {}

    def add_output(source: str, name: str, op_type: str, node_name: str) -> ExposedLayer:
        shape = (None, *probed[source][1:])
        renamed[source] = name
        exposed.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return ExposedLayer(name, op_type, shape, node_name, source)

    layers = []
    for index, node in candidates:
        tensor = node.output[0]
        if tensor == output or len(probed.get(tensor, ())) != 4:
            continue
        layers.append(add_output(tensor, unique(readable_name(node, index)), node.op_type, node.name))

    output_node = producers.get(output)
    output_layer = ExposedLayer(
        output,
        output_node.op_type if output_node else "Identity",
        (None, *probed[output][1:]),
        output_node.name if output_node else "",
        output,
    )
    if outputs_logits:
        logits, probabilities = output, unique(PROBABILITIES)
        exposed.graph.node.append(helper.make_node("Softmax", [output], [probabilities], name=probabilities, axis=-1))
        exposed.graph.output.append(
            helper.make_tensor_value_info(probabilities, TensorProto.FLOAT, list(output_layer.shape))
        )
        layers += [
            output_layer,
            ExposedLayer(probabilities, "Softmax", output_layer.shape, probabilities, probabilities),
        ]
    else:
        logits, probabilities = None, output
        if softmax_input is not None and len(probed.get(softmax_input, ())) == 2:
            softmax = producers[softmax_input] if softmax_input in producers else None
            logits = unique(LOGITS)
            layers.append(
                add_output(
                    softmax_input, logits, softmax.op_type if softmax else "Identity", softmax.name if softmax else ""
                )
            )
        layers.append(output_layer)
    _rename(exposed.graph, renamed)
    return Exposed(exposed, layers, logits, probabilities)


def _rename(graph: onnx.GraphProto, renamed: dict[str, str]) -> None:
    """Give each exposed tensor its readable name, where its node makes it and wherever a node reads it (no extra
    node: an Identity per layer would cost a copy per run and can keep onnxruntime from fusing)."""
    for node in graph.node:
        for names in (node.input, node.output):
            for position, name in enumerate(names):
                if name in renamed:
                    names[position] = renamed[name]
    for value in graph.value_info:
        if value.name in renamed:
            value.name = renamed[value.name]
