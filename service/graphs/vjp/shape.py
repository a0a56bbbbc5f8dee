"""Vector-Jacobian rules of the ops that move units without changing them: Reshape, Flatten, Squeeze, Unsqueeze,
Transpose, Concat, Split, Slice and Pad (constant mode). Each gradient puts g's units back where they came from;
units the forward op dropped get zero."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from service.graphs.vjp.emit import Emitter, UnsupportedOp, attributes

Grads = list[str | None]


def reshape_back(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g reshaped to the input's shape (Reshape, Flatten, Squeeze, Unsqueeze)."""
    return [e.op("Reshape", g, e.op("Shape", node.input[0]))] + [None] * (len(node.input) - 1)


def transpose(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g transposed by the inverse permutation."""
    perm = attributes(node).get("perm")
    if perm is None:
        rank = e.rank(node.input[0])
        if rank is None:
            raise UnsupportedOp("Transpose", node.name, "a Transpose without perm needs its input's rank")
        perm = list(reversed(range(rank)))
    return [e.op("Transpose", g, perm=[int(i) for i in np.argsort(perm)])]


def _size_along(e: Emitter, tensor: str, axis: int) -> str:
    return e.op("Gather", e.op("Shape", tensor), e.ints([axis]), axis=0)


def concat(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g split along the axis into the inputs' sizes, each input its own part."""
    axis = attributes(node)["axis"]
    sizes = e.op("Concat", *(_size_along(e, x, axis) for x in node.input), axis=0)
    parts = e.op("Split", g, sizes, outputs=len(node.input), axis=axis)
    parts = parts if isinstance(parts, list) else [parts]
    return [part if want else None for part, want in zip(parts, wanted, strict=True)]


def split(e: Emitter, node: onnx.NodeProto, grads: list[str | None], wanted: list[bool]) -> Grads:
    """The outputs' gradients concatenated along the axis (zeros for an output with none)."""
    axis = attributes(node).get("axis", 0)
    parts = [g if g is not None else e.zeros_like(y) for g, y in zip(grads, node.output, strict=True)]
    return [e.op("Concat", *parts, axis=axis)] + [None] * (len(node.input) - 1)


def _constant_ints(e: Emitter, node: onnx.NodeProto, index: int) -> list[int] | None:
    if len(node.input) <= index or not node.input[index]:
        return None
    if node.input[index] not in e.constants:
        raise UnsupportedOp(node.op_type, node.name, f"its input {node.input[index]!r} must be a constant")
    return [int(v) for v in e.constants[node.input[index]].reshape(-1)]


def slice_(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g put back at the sliced positions, zero elsewhere: Pad for unit steps, ScatterElements per axis for
    others (constant starts, ends, axes and steps; static sizes along the sliced axes)."""
    x = node.input[0]
    starts, ends = _constant_ints(e, node, 1), _constant_ints(e, node, 2)
    shape = e.shapes.get(x)
    if shape is None:
        raise UnsupportedOp("Slice", node.name, "its input's rank is unknown")
    rank = len(shape)
    axes = [a % rank for a in (_constant_ints(e, node, 3) or list(range(len(starts))))]
    steps = _constant_ints(e, node, 4) or [1] * len(axes)
    positions = {}
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        if not isinstance(shape[axis], int):
            raise UnsupportedOp("Slice", node.name, f"axis {axis} of its input has no static size")
        positions[axis] = (range(shape[axis])[slice(start, end, step)], step, shape[axis])
    grads: Grads = [None] * len(node.input)
    if all(step == 1 for _, step, _ in positions.values()):
        pads = [0] * 2 * rank
        for axis, (kept, _, size) in positions.items():
            first = kept.start if len(kept) else 0
            pads[axis], pads[rank + axis] = first, size - first - len(kept)
        grads[0] = e.op("Pad", g, e.ints(pads))
        return grads
    for axis, (kept, _, size) in positions.items():
        index_shape = [1] * rank
        index_shape[axis] = len(kept)
        indices = e.op("Expand", e.const(np.array(list(kept), np.int64).reshape(index_shape)), e.op("Shape", g))
        target_shape = e.op("ScatterElements", e.op("Shape", g), e.ints([axis]), e.ints([size]), axis=0)
        zeros = e.op("ConstantOfShape", target_shape, value=numpy_helper.from_array(np.zeros(1, e.dtype)))
        g = e.op("ScatterElements", zeros, indices, g, axis=axis)
    grads[0] = g
    return grads


def pad(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """Constant mode: g with the padding cut off (a Pad by the negated pads; negative pads, crops, become zero
    padding)."""
    a = attributes(node)
    if a.get("mode", "constant") != "constant":
        raise UnsupportedOp("Pad", node.name, f"mode {a['mode']!r} is not supported (constant is)")
    if "pads" in a:
        raise UnsupportedOp("Pad", node.name, "opset 13 or later is expected (pads as an input)")
    negated = e.op("Neg", node.input[1])
    axes = [node.input[3]] if len(node.input) > 3 and node.input[3] else []
    return [e.op("Pad", g, negated, "", *axes)] + [None] * (len(node.input) - 1)
