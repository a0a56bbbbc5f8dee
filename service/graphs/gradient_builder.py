"""One backward-graph builder for any forward ONNX model the op rules cover (service.graphs.vjp).

``gradient_graph(model, seed, wrt)`` returns a model that runs the forward pass and the backward pass in one
onnxruntime run: its inputs are the forward model's inputs and a seed tensor of the seeded tensor's shape (the
vector of the vector-Jacobian product: a one-hot over the logits differentiates one class's logit), its outputs
the forward tensors asked for and, for each tensor in ``wrt`` (the input, any named layer), the gradient of
Σ seed·seeded tensor with respect to it. Only the nodes on a path from a ``wrt`` tensor to the seeded one are
differentiated, in reverse topological order, gradients reaching a tensor along several paths (residual Adds,
a tensor read by two branches) summed; nodes no output needs are dropped. A node on that path whose op has no
rule raises UnsupportedOp naming its op type and node.

Rule variants (``rules``): ``gradient`` (exact), ``guided`` (guided backpropagation) and ``deconvnet``
(Zeiler & Fergus), which differ only at Relu (service.graphs.vjp.elementwise).

Models below opset 17 are converted to 17 first (onnx.version_converter), so the backward nodes' forms
(ScatterElements with its add reduction, ReduceSum's axes input) hold for every model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference, version_converter

from service.graphs.vjp import MULTI_OUTPUT, NO_GRADIENT, RULES, RULES_BY_OP, Emitter, Rules, UnsupportedOp
from service.graphs.vjp.emit import Dim

MIN_OPSET = 17
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}

__all__ = ["RULES", "GradientGraph", "Rules", "UnsupportedOp", "gradient_graph", "unsupported_op"]


@dataclass(frozen=True)
class GradientGraph:
    """The forward-and-backward model and the names to feed and read: ``seed_input`` (the seed's input),
    ``gradients`` (each wrt tensor's gradient output) and ``outputs`` (the forward tensors asked for)."""

    model: onnx.ModelProto
    seed_input: str
    gradients: dict[str, str]
    outputs: tuple[str, ...]


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _prepared(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model at opset MIN_OPSET or later, with inferred shapes."""
    if _opset(model) < MIN_OPSET:
        model = version_converter.convert_version(model, MIN_OPSET)
    return shape_inference.infer_shapes(model, data_prop=True)


def _value_infos(model: onnx.ModelProto) -> tuple[dict[str, list[Dim] | None], dict[str, int]]:
    shapes: dict[str, list[Dim] | None] = {}
    types: dict[str, int] = {}
    graph = model.graph
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = info.type.tensor_type
        types[info.name] = tensor_type.elem_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param if d.HasField("dim_param") else None)
                for d in tensor_type.shape.dim
            ]
    for init in graph.initializer:
        shapes[init.name], types[init.name] = list(init.dims), init.data_type
    return shapes, types


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return constants


def _paths(
    graph: onnx.GraphProto, seed: str, wrt: Sequence[str], types: dict[str, int]
) -> tuple[set[str], list[onnx.NodeProto]]:
    """The float tensors on a path from a wrt tensor to the seed, and the nodes producing them, in order."""
    reached = set(wrt)
    for node in graph.node:
        if node.op_type not in NO_GRADIENT and reached.intersection(node.input):
            reached.update(out for out in node.output if out and types.get(out, onnx.TensorProto.FLOAT) in FLOATS)
    needed = {seed}
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            needed.update(node.input)
    on_path = reached & needed
    nodes = [node for node in graph.node if on_path.intersection(node.output) and on_path.intersection(node.input)]
    return on_path, nodes


def unsupported_op(model: onnx.ModelProto, seed: str, wrt: Sequence[str] = ()) -> UnsupportedOp | None:
    """The first node on the differentiated path without a rule (as the error gradient_graph would raise), or
    None when every one has a rule."""
    prepared = _prepared(model)
    _, types = _value_infos(prepared)
    _, nodes = _paths(prepared.graph, seed, wrt or _inputs(prepared), types)
    for node in nodes:
        if node.op_type not in RULES_BY_OP:
            return UnsupportedOp(node.op_type, node.name or node.output[0])
    return None


def _inputs(model: onnx.ModelProto) -> list[str]:
    initializers = {init.name for init in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def _summed(e: Emitter, contributions: list[str]) -> str:
    return contributions[0] if len(contributions) == 1 else e.op("Sum", *contributions)


def gradient_graph(
    model: onnx.ModelProto,
    seed: str,
    wrt: Sequence[str] = (),
    outputs: Sequence[str] = (),
    rules: Rules = "gradient",
) -> GradientGraph:
    """The model running ``model`` forward and backward from ``seed`` (a tensor name: the logits, the class
    probabilities, a layer) to the tensors ``wrt`` (default: the model's inputs), returning the forward
    tensors ``outputs`` and one gradient per ``wrt`` tensor (named ``<tensor>_grad``); see the module's
    docstring. UnsupportedOp when a node on the path has no rule; ValueError for an unknown tensor or variant."""
    if rules not in RULES:
        raise ValueError(f"unknown rules {rules!r}; one of {', '.join(RULES)}")
    model = _prepared(model)
    graph = model.graph
    shapes, types = _value_infos(model)
    wrt = list(wrt) or _inputs(model)
    known = set(shapes) | {out for node in graph.node for out in node.output}
    for name in (seed, *wrt, *outputs):
        if name not in known:
            raise ValueError(f"the model has no tensor named {name!r}")
    on_path, path_nodes = _paths(graph, seed, wrt, types)
    for node in path_nodes:
        if node.op_type not in RULES_BY_OP:
            raise UnsupportedOp(node.op_type, node.name or node.output[0])

    on_path_ids = {id(node) for node in path_nodes}
    forward, path_copies = [], []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        forward.append(copy)
        if id(node) in on_path_ids:
            path_copies.append(copy)
            if copy.op_type == "MaxPool" and (len(copy.output) < 2 or not copy.output[1]):
                del copy.output[1:]
                copy.output.append(f"{copy.output[0]}/switches")

    dtype = helper.tensor_dtype_to_np_dtype(types.get(seed, onnx.TensorProto.FLOAT))
    e = Emitter(np.dtype(dtype), rules, shapes, types, _constants(graph))
    seed_input = f"{seed}_seed"
    contributions: dict[str, list[str]] = {seed: [seed_input]}
    for node in reversed(path_copies):
        grads = [_summed(e, contributions[out]) if contributions.get(out) else None for out in node.output]
        if all(g is None for g in grads):
            continue
        wanted = [name in on_path for name in node.input]
        rule = RULES_BY_OP[node.op_type]
        results = rule(e, node, grads if node.op_type in MULTI_OUTPUT else grads[0], wanted)
        for name, grad, want in zip(node.input, results, wanted, strict=False):
            if want and grad is not None:
                contributions.setdefault(name, []).append(grad)

    gradients = {}
    for name in wrt:
        gradients[name] = f"{name}_grad"
        found = contributions.get(name)
        e.op("Identity", _summed(e, found) if found else e.zeros_like(name), name=gradients[name])

    graph_outputs = [*outputs, *gradients.values()]
    nodes = _pruned([*forward, *e.nodes], graph_outputs)
    used = {name for node in nodes for name in node.input}
    initializers = [init for init in [*graph.initializer, *e.initializers] if init.name in used]
    elem_type = types.get(seed, onnx.TensorProto.FLOAT)

    def info(name: str, shape_of: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, types.get(shape_of, elem_type), shapes.get(shape_of))

    built = helper.make_graph(
        nodes,
        f"{graph.name}_gradient",
        [i for i in graph.input if i.name not in {init.name for init in graph.initializer}] + [info(seed_input, seed)],
        [info(name, name) for name in outputs] + [info(gradients[name], name) for name in wrt],
        initializers,
    )
    result = helper.make_model(built, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    onnx.checker.check_model(result)
    return GradientGraph(result, seed_input, gradients, tuple(outputs))


def _pruned(nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> list[onnx.NodeProto]:
    """The nodes some output needs, in their order."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    return kept[::-1]
