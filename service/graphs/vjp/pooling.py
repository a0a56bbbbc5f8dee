"""Vector-Jacobian rules of pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, ReduceMean, ReduceSum.

MaxPool's gradient goes through the forward pass's own switches, its Indices output (the builder asks the forward
node for it): each window's first maximum as onnxruntime resolves ties. Windows that tile the input (kernel equal
to stride, no padding, no ceil_mode) scatter with MaxUnpool (float32, onnxruntime's fast kernel); overlapping ones
(a unit chosen by two windows gets both gradients), padded, dilated or ceil_mode ones and other float types with
ScatterElements' add reduction. AveragePool's gradient is a
ConvTranspose of g, divided per window by the window's divisor, with a one-channel kernel of ones over every
(image, channel) plane.
"""

from __future__ import annotations

import numpy as np
import onnx

from service.graphs.vjp.emit import Emitter, UnsupportedOp, attributes
from service.graphs.vjp.linear import _spatial, conv_pads, transposed_pads

Grads = list[str | None]


def max_pool(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g scattered to each window's switch (the forward Indices), summed where windows share one."""
    a = attributes(node)
    if a.get("storage_order", 0):
        raise UnsupportedOp("MaxPool", node.name, "storage_order 1 (column-major indices) is not supported")
    x, indices = node.input[0], node.output[1]
    kernel = list(a["kernel_shape"])
    strides = a.get("strides", [1] * len(kernel))
    plain = (
        kernel == list(strides)
        and set(a.get("dilations", [1])) == {1}
        and not any(a.get("pads", [0]))
        and not a.get("ceil_mode", 0)
        and a.get("auto_pad", "NOTSET") in ("NOTSET", "VALID")
    )
    if plain and e.dtype == np.float32:
        unpooled = e.op("MaxUnpool", g, indices, e.op("Shape", x), kernel_shape=kernel, strides=strides)
        e.unpooled[unpooled] = (g, node)
        return [unpooled]
    flat = e.ints([-1])
    scattered = e.op(
        "ScatterElements",
        e.op("Reshape", e.zeros_like(x), flat),
        e.op("Reshape", indices, flat),
        e.op("Reshape", g, flat),
        axis=0,
        reduction="add",
    )
    return [e.op("Reshape", scattered, e.op("Shape", x))]


def _divisors(
    spatial: list[int],
    out: list[int],
    kernel: list[int],
    strides: list[int],
    begins: list[int],
    ends: list[int],
    include_pad: bool,
) -> np.ndarray:
    """Each output position's divisor: its window's size within the padded input (``include_pad``) or within the
    input alone, as onnxruntime counts them (a ceil_mode window past the end pads counts only up to them)."""
    per_axis = []
    for size, o, k, s, b, p in zip(spatial, out, kernel, strides, begins, ends, strict=True):
        start = np.arange(o) * s - b
        end = np.minimum(start + k, size + p)
        per_axis.append(end - start if include_pad else np.minimum(end, size) - np.maximum(start, 0))
    divisor = per_axis[0]
    for counts in per_axis[1:]:
        divisor = np.multiply.outer(divisor, counts)
    return divisor


def average_pool(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g / each window's divisor, spread back over the window (a ConvTranspose with a kernel of ones)."""
    a = attributes(node)
    kernel = list(a["kernel_shape"])
    n = len(kernel)
    if set(a.get("dilations", [1])) != {1}:
        raise UnsupportedOp("AveragePool", node.name, "dilations are not supported")
    strides = a.get("strides", [1] * n)
    x, y = node.input[0], node.output[0]
    spatial, out = _spatial(e, x, node), _spatial(e, y, node)
    begins, ends = conv_pads(node, spatial, kernel)
    include_pad = bool(a.get("count_include_pad", 0)) and a.get("auto_pad", "NOTSET") in ("NOTSET", "")
    divisor = _divisors(spatial, out, kernel, strides, begins, ends, include_pad)
    scaled = e.op("Mul", g, e.const((1.0 / divisor).astype(e.dtype)))
    planes = e.op("Reshape", scaled, e.ints([-1, 1, *out]))
    transposed_ends, output_padding = transposed_pads(spatial, out, kernel, strides, [1] * n, begins)
    spread = e.op(
        "ConvTranspose",
        planes,
        e.const(np.ones((1, 1, *kernel), e.dtype)),
        strides=strides,
        pads=begins + transposed_ends,
        output_padding=output_padding,
    )
    return [e.op("Reshape", spread, e.op("Shape", x))]


def global_average_pool(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g / (the number of spatial positions), broadcast over them."""
    x = node.input[0]
    return [e.op("Expand", e.op("Mul", g, _inverse_count(e, x, node.output[0])), e.op("Shape", x))]


def _inverse_count(e: Emitter, x: str, y: str) -> str:
    """Size(y) / Size(x): the inverse of how many input units each output averages."""
    size = e.static_shape(x), e.static_shape(y)
    if size[0] is not None and size[1] is not None:
        return e.const(float(np.prod(size[1])) / float(np.prod(size[0])))
    to = e.elem_types.get(x, onnx.TensorProto.FLOAT)
    return e.op("Div", e.op("Cast", e.op("Size", y), to=to), e.op("Cast", e.op("Size", x), to=to))


def _reduced_axes(e: Emitter, node: onnx.NodeProto) -> list[int] | None:
    """The node's reduced axes (None: all of them)."""
    a = attributes(node)
    if "axes" in a:
        return list(a["axes"])
    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in e.constants:
            raise UnsupportedOp(node.op_type, node.name, "its axes must be a constant")
        axes = [int(v) for v in e.constants[node.input[1]].reshape(-1)]
        return axes or (None if not a.get("noop_with_empty_axes", 0) else [])
    return [] if a.get("noop_with_empty_axes", 0) else None


def _spread(e: Emitter, node: onnx.NodeProto, g: str) -> str:
    """g broadcast back over the reduced axes of ``node``'s input."""
    x = node.input[0]
    axes = _reduced_axes(e, node)
    if axes == []:
        return g
    if not attributes(node).get("keepdims", 1) and axes is not None:
        g = e.op("Unsqueeze", g, e.ints(axes))
    return e.op("Expand", g, e.op("Shape", x))


def reduce_sum(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g broadcast back over the reduced axes."""
    return [_spread(e, node, g)] + [None] * (len(node.input) - 1)


def reduce_mean(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g / (the number of reduced units), broadcast back over the reduced axes."""
    if _reduced_axes(e, node) == []:
        return [g] + [None] * (len(node.input) - 1)
    scaled = e.op("Mul", g, _inverse_count(e, node.input[0], node.output[0]))
    return [_spread(e, node, scaled)] + [None] * (len(node.input) - 1)
