"""Vector-Jacobian rules of the linear layers: Conv, Gemm, MatMul and BatchNormalization in inference mode.

A convolution's input gradient is its transposed convolution with the same kernel: at stride 1 with a constant
kernel and more than one input channel a Conv with the kernel flipped and its channel axes swapped per group
(onnxruntime runs Conv in its blocked layout, faster than ConvTranspose), otherwise a ConvTranspose whose pads and
output_padding give back the input's exact size (strides that drop trailing rows, auto_pad).
"""

from __future__ import annotations

import numpy as np
import onnx

from service.graphs.vjp.emit import Emitter, UnsupportedOp, attributes

Grads = list[str | None]


def conv_pads(node: onnx.NodeProto, spatial: list[int] | None, kernel: list[int]) -> tuple[list[int], list[int]]:
    """The (begin, end) pads per spatial axis of a Conv or pooling node, auto_pad resolved for inputs of size
    ``spatial``."""
    a = attributes(node)
    n = len(kernel)
    strides = a.get("strides", [1] * n)
    dilations = a.get("dilations", [1] * n)
    auto_pad = a.get("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        pads = a.get("pads", [0] * 2 * n)
        return list(pads[:n]), list(pads[n:])
    if auto_pad == "VALID":
        return [0] * n, [0] * n
    if spatial is None:
        raise UnsupportedOp(node.op_type, node.name, f"auto_pad {auto_pad} needs the input's static spatial sizes")
    begins, ends = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins, ends


def transposed_pads(
    spatial: list[int], out: list[int], kernel: list[int], strides: list[int], dilations: list[int], begins: list[int]
) -> tuple[list[int], list[int]]:
    """(end pads, output_padding) that make a ConvTranspose of an ``out``-sized map give back ``spatial``."""
    ends, extra = [], []
    for size, o, k, s, d, b in zip(spatial, out, kernel, strides, dilations, begins, strict=True):
        excess = s * (o - 1) + (k - 1) * d + 1 - b - size
        ends.append(max(excess, 0))
        extra.append(max(-excess, 0))
    return ends, extra


def _spatial(e: Emitter, tensor: str, node: onnx.NodeProto) -> list[int]:
    shape = e.shapes.get(tensor)
    if shape is None or not all(isinstance(d, int) for d in shape[2:]):
        raise UnsupportedOp(node.op_type, node.name, f"its gradient needs {tensor!r}'s static spatial sizes")
    return list(shape[2:])


def conv(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """x: the transposed convolution of g; bias: Σ g over all axes but the channels; the kernel: refused."""
    if wanted[1]:
        raise UnsupportedOp("Conv", node.name, "its kernel depends on the differentiated tensors")
    x, w = node.input[0], node.input[1]
    a = attributes(node)
    kernel_shape = e.constants[w].shape if w in e.constants else e.static_shape(w)
    if kernel_shape is None:
        raise UnsupportedOp("Conv", node.name, "its kernel's shape is unknown")
    kernel = list(a.get("kernel_shape", kernel_shape[2:]))
    n = len(kernel)
    strides, dilations, group = a.get("strides", [1] * n), a.get("dilations", [1] * n), a.get("group", 1)
    grads: Grads = [None] * len(node.input)
    if len(node.input) > 2 and wanted[2]:
        grads[2] = e.op("ReduceSum", g, e.ints([0, *range(2, n + 2)]), keepdims=0)
    if not wanted[0]:
        return grads
    spatial = _spatial(e, x, node)
    out = _spatial(e, node.output[0], node)
    begins, ends = conv_pads(node, spatial, kernel)
    full_begins = [(k - 1) * d - b for k, d, b in zip(kernel, dilations, begins, strict=True)]
    full_ends = [(k - 1) * d - p for k, d, p in zip(kernel, dilations, ends, strict=True)]
    in_channels = kernel_shape[1] * group
    if w in e.constants and set(strides) == {1} and in_channels > 1 and min(full_begins + full_ends) >= 0:
        weights = e.constants[w]
        per_group = weights.reshape(group, weights.shape[0] // group, *weights.shape[1:]).swapaxes(1, 2)
        flipped = per_group.reshape(in_channels, weights.shape[0] // group, *kernel)[
            (slice(None), slice(None), *[slice(None, None, -1)] * n)
        ]
        grads[0] = e.op(
            "Conv",
            g,
            e.const(np.ascontiguousarray(flipped, dtype=e.dtype)),
            pads=full_begins + full_ends,
            dilations=dilations,
            group=group,
        )
        return grads
    transposed_ends, output_padding = transposed_pads(spatial, out, kernel, strides, dilations, begins)
    grads[0] = e.op(
        "ConvTranspose",
        g,
        w,
        strides=strides,
        dilations=dilations,
        group=group,
        pads=begins + transposed_ends,
        output_padding=output_padding,
    )
    return grads


def gemm(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """Y = alpha·op(A)·op(B) + beta·C: A gets alpha·g·op(B)ᵀ, B gets alpha·op(A)ᵀ·g (transposed back where
    op transposes), C gets beta·g unbroadcast."""
    a = attributes(node)
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    trans_a, trans_b = a.get("transA", 0), a.get("transB", 0)
    matrix_a, matrix_b = node.input[0], node.input[1]
    grads: Grads = [None] * len(node.input)
    if wanted[0]:
        grads[0] = (
            e.op("Gemm", matrix_b, g, alpha=alpha, transA=trans_b, transB=1)
            if trans_a
            else e.op("Gemm", g, matrix_b, alpha=alpha, transB=1 - trans_b)
        )
    if wanted[1]:
        grads[1] = (
            e.op("Gemm", g, matrix_a, alpha=alpha, transA=1, transB=trans_a)
            if trans_b
            else e.op("Gemm", matrix_a, g, alpha=alpha, transA=1 - trans_a)
        )
    if len(node.input) > 2 and node.input[2] and wanted[2]:
        scaled = g if beta == 1.0 else e.op("Mul", g, e.const(beta))
        grads[2] = e.unbroadcast(scaled, node.input[2], node.output[0])
    return grads


def _swap_last(e: Emitter, tensor: str, node: onnx.NodeProto) -> str:
    rank = e.rank(tensor)
    if rank is None or rank < 2:
        raise UnsupportedOp("MatMul", node.name, "operands of rank 2 or more with known ranks are supported")
    return e.op("Transpose", tensor, perm=[*range(rank - 2), rank - 1, rank - 2])


def matmul(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """A gets g·Bᵀ, B gets Aᵀ·g, each summed over the batch axes it was broadcast along."""
    matrix_a, matrix_b = node.input
    y = node.output[0]
    return [
        e.unbroadcast(e.op("MatMul", g, _swap_last(e, matrix_b, node)), matrix_a, y) if wanted[0] else None,
        e.unbroadcast(e.op("MatMul", _swap_last(e, matrix_a, node), g), matrix_b, y) if wanted[1] else None,
    ]


def batch_normalization(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """Inference mode: g·scale/√(var + ε) per channel (axis 1); the statistics and affine parameters: refused."""
    a = attributes(node)
    if a.get("training_mode", 0) or len(node.output) > 1:
        raise UnsupportedOp("BatchNormalization", node.name, "training mode is not supported")
    if any(wanted[1:]):
        raise UnsupportedOp("BatchNormalization", node.name, "its parameters depend on the differentiated tensors")
    x, scale, _, _, variance = node.input
    rank = e.rank(x)
    if rank is None:
        raise UnsupportedOp("BatchNormalization", node.name, "its input's rank is unknown")
    factor = e.op("Div", scale, e.op("Sqrt", e.op("Add", variance, e.const(a.get("epsilon", 1e-5)))))
    if rank > 2:
        factor = e.op("Unsqueeze", factor, e.ints(list(range(1, rank - 1))))
    return [e.op("Mul", g, factor), None, None, None, None]
