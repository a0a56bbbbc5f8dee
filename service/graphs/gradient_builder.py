"""One backward-graph builder for any forward ONNX model the op rules cover (service.graphs.vjp).

``gradient_graph(model, seed, wrt)`` returns a model that runs the forward pass and the backward pass in one
onnxruntime run: its inputs are the forward model's inputs and a seed tensor of the seeded tensor's shape (the
vector of the vector-Jacobian product: a one-hot over the logits differentiates one class's logit), its outputs
the forward tensors asked for and, for each tensor in ``wrt`` (the input, any named layer), the gradient of
Σ seed·seeded tensor with respect to it. Only the nodes on a path from a ``wrt`` tensor to the seeded one are
differentiated, in reverse topological order, gradients reaching a tensor along several paths (residual Adds,
a tensor read by two branches) summed; nodes no output needs are dropped. A ``wrt`` tensor off that path but a
view (Transpose, Reshape, ...) of a tensor on it, as tf2onnx's NHWC layer outputs are of the NCHW tensors the next
layers read, gets that tensor's gradient through the same view. A node on that path whose op has no
rule raises UnsupportedOp naming its op type and node.

With ``predicted_from`` (a tensor of class scores, such as the probabilities), an all-zero row of the seed stands
for "this image's predicted class": the graph replaces it by the one-hot of that tensor's first maximum along its
last axis, and returns the seed it used (``seed_used``), so a method needs no forward run to find its target.

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
from service.graphs.vjp.emit import Dim, attributes

MIN_OPSET = 17
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}

__all__ = ["RULES", "GradientGraph", "Rules", "UnsupportedOp", "gradient_graph", "unsupported_op"]


@dataclass(frozen=True)
class GradientGraph:
    """The forward-and-backward model and the names to feed and read: ``seed_input`` (the seed's input),
    ``gradients`` (each wrt tensor's gradient output), ``outputs`` (the forward tensors asked for) and, with
    ``predicted_from``, ``seed_used`` (the seed each image's gradient was taken with)."""

    model: onnx.ModelProto
    seed_input: str
    gradients: dict[str, str]
    outputs: tuple[str, ...]
    seed_used: str | None = None


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
    wrt = list(wrt) or _inputs(prepared)
    views = _views(prepared.graph, seed, wrt)
    _, nodes = _paths(prepared.graph, seed, [views[name][0] if name in views else name for name in wrt], types)
    for node in nodes:
        if node.op_type not in RULES_BY_OP:
            return UnsupportedOp(node.op_type, node.name or node.output[0])
    return None


def _inputs(model: onnx.ModelProto) -> list[str]:
    initializers = {init.name for init in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def _summed(e: Emitter, contributions: list[str]) -> str:
    return contributions[0] if len(contributions) == 1 else e.op("Sum", *contributions)


VIEWS = {"Transpose", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"}  # ops that only move units


def _views(graph: onnx.GraphProto, seed: str, wrt: Sequence[str]) -> dict[str, tuple[str, list[onnx.NodeProto]]]:
    """For each wrt tensor the seed does not depend on but that is a view (VIEWS, one after another) of a tensor
    it does depend on: that tensor and the view nodes from it, in order. A converter's side outputs are such views:
    tf2onnx returns a Keras layer's NHWC output as a Transpose of the NCHW tensor the next layer reads."""
    producer = {out: node for node in graph.node for out in node.output}
    needed = {seed}
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            needed.update(node.input)
    views = {}
    for name in wrt:
        tensor, chain = name, []
        while tensor not in needed and tensor in producer and producer[tensor].op_type in VIEWS:
            chain.append(producer[tensor])
            tensor = producer[tensor].input[0]
        if chain and tensor in needed:
            views[name] = (tensor, chain[::-1])
    return views


def _viewed(e: Emitter, node: onnx.NodeProto, grad: str) -> str:
    """The view ``node`` applied to ``grad``, the gradient of its input: the gradient of its output."""
    if node.op_type == "Transpose":
        perm = attributes(node).get("perm")
        return e.op("Transpose", grad, **({} if perm is None else {"perm": perm}))
    if node.op_type == "Identity":
        return grad
    return e.op("Reshape", grad, e.op("Shape", node.output[0]))


def _name_output(e: Emitter, tensor: str, name: str, renamed: dict[str, str]) -> None:
    """Make the backward tensor ``tensor`` available as ``name``: renamed where a backward node made it under a
    fresh name (not the seed used, not an earlier output's name; an Identity would copy it: 0.7 ms of the shipped
    classifier's 64-image run for conv1's gradient), else an Identity of it. ``renamed`` maps each renamed tensor
    to its new name."""
    if not tensor.startswith("grad/") or not any(tensor in node.output for node in e.nodes):
        e.op("Identity", tensor, name=name)
        return
    for node in e.nodes:
        for names in (node.input, node.output):
            for i, value in enumerate(names):
                if value == tensor:
                    names[i] = name
    renamed[tensor] = name


def _predicted_seed(e: Emitter, seed_input: str, scores: str, name: str) -> str:
    """``seed_input`` with each all-zero row (over the last axis) replaced by the one-hot of the first maximum
    of ``scores`` along its last axis; the result is named ``name``."""
    shape = e.shapes.get(scores)
    if not shape or not isinstance(shape[-1], int):
        raise ValueError(f"predicted_from {scores!r} needs a static size along its last axis")
    predicted = e.op(
        "OneHot",
        e.op("ArgMax", scores, axis=-1, keepdims=0),
        e.const(np.array(shape[-1], np.int64)),
        e.const(np.array([0, 1], e.dtype)),
        axis=-1,
    )
    magnitude = e.op("ReduceSum", e.op("Abs", seed_input), e.ints([-1]), keepdims=1)  # axes an input at any opset
    unset = e.op("Equal", magnitude, e.const(0.0))
    return e.op("Where", unset, predicted, seed_input, name=name)


def gradient_graph(
    model: onnx.ModelProto,
    seed: str,
    wrt: Sequence[str] = (),
    outputs: Sequence[str] = (),
    rules: Rules = "gradient",
    predicted_from: str | None = None,
) -> GradientGraph:
    """The model running ``model`` forward and backward from ``seed`` (a tensor name: the logits, the class
    probabilities, a layer) to the tensors ``wrt`` (default: the model's inputs), returning the forward
    tensors ``outputs`` and one gradient per ``wrt`` tensor (named ``<tensor>_grad``); with ``predicted_from``,
    all-zero seed rows seed each image's predicted class (``<seed>_seed_used`` returns the seeds used); see the
    module's docstring. UnsupportedOp when a node on the path has no rule; ValueError for an unknown tensor or
    variant."""
    if rules not in RULES:
        raise ValueError(f"unknown rules {rules!r}; one of {', '.join(RULES)}")
    model = _prepared(model)
    graph = model.graph
    shapes, types = _value_infos(model)
    wrt = list(wrt) or _inputs(model)
    known = set(shapes) | {out for node in graph.node for out in node.output}
    for name in (seed, *wrt, *outputs, *([predicted_from] if predicted_from else [])):
        if name not in known:
            raise ValueError(f"the model has no tensor named {name!r}")
    views = _views(graph, seed, wrt)
    on_path, path_nodes = _paths(graph, seed, [views[name][0] if name in views else name for name in wrt], types)
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
    seed_used = _predicted_seed(e, seed_input, predicted_from, f"{seed}_seed_used") if predicted_from else None
    contributions: dict[str, list[str]] = {seed: [seed_used or seed_input]}
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

    gradients: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for name in wrt:
        gradients[name] = f"{name}_grad"
        source, chain = views.get(name, (name, []))
        found = contributions.get(source)
        grad = _summed(e, found) if found else e.zeros_like(source)
        grad = renamed.get(grad, grad)  # a gradient already named as an earlier wrt tensor's
        for node in chain:
            grad = _viewed(e, node, grad)
        _name_output(e, grad, gradients[name], renamed)

    graph_outputs = [*outputs, *gradients.values(), *([seed_used] if seed_used else [])]
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
        [info(name, name) for name in outputs]
        + [info(gradients[name], name) for name in wrt]
        + ([info(seed_used, seed)] if seed_used else []),
        initializers,
    )
    result = helper.make_model(built, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    onnx.checker.check_model(result)
    return GradientGraph(result, seed_input, gradients, tuple(outputs), seed_used)


def _pruned(nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> list[onnx.NodeProto]:
    """The nodes some output needs, in their order."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    return kept[::-1]
