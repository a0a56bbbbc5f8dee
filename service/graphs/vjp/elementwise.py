"""Vector-Jacobian rules of elementwise ops: arithmetic with broadcasting and the activations.

Each rule takes the gradient ``g`` of the node's output and returns the gradients of the inputs asked for
(``wanted``), written in terms of the forward tensors. Only Relu changes with the rule variant: ``guided`` passes
Relu(g) where the forward output is positive (Springenberg et al. 2015), ``deconvnet`` passes Relu(g) whatever the
forward sign (Zeiler & Fergus 2014); every other activation keeps its exact derivative in every variant, as
Captum's GuidedBackprop and Deconvolution do (they override ReLU modules only).
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

from service.graphs.vjp.emit import Emitter, attributes

Grads = list[str | None]


def _where_positive(e: Emitter, x: str, positive: str, otherwise: str) -> str:
    return e.op("Where", e.op("Greater", x, e.const(0.0)), positive, otherwise)


def _at_switches(e: Emitter, node: onnx.NodeProto, g: str, rule: Callable[[str, str], str]) -> str:
    """``rule(g, y)``, an activation's gradient written in its output y and zero where g is, taken at the
    pooled resolution when g is a MaxPool's unpooled gradient of this very output: g is zero off the pool's
    switches, and at each switch y equals the pool's output, so rule(pooled g, pooled y) unpooled is exact, with
    a quarter of the units for a 2x2 pool."""
    y = node.output[0]
    found = e.unpooled.get(g)
    if found is None or found[1].input[0] != y:
        return rule(g, y)
    pooled, pool = found
    a = attributes(pool)
    return e.op(
        "MaxUnpool",
        rule(pooled, pool.output[0]),
        pool.output[1],
        e.op("Shape", y),
        kernel_shape=a["kernel_shape"],
        strides=a.get("strides", [1] * len(a["kernel_shape"])),
    )


def relu(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """Exact: g where the output is positive (Sign of the output, which is 0 or 1); guided: Relu(g) there;
    deconvnet: Relu(g)."""
    if e.rules == "deconvnet":
        return [_at_switches(e, node, g, lambda g, y: e.op("Relu", g))]
    if e.rules == "guided":
        return [_at_switches(e, node, g, lambda g, y: e.op("Mul", e.op("Relu", g), e.op("Sign", y)))]
    return [_at_switches(e, node, g, lambda g, y: e.op("Mul", g, e.op("Sign", y)))]


def leaky_relu(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g where x > 0, alpha·g elsewhere."""
    alpha = attributes(node).get("alpha", 0.01)
    return [_where_positive(e, node.input[0], g, e.op("Mul", g, e.const(alpha)))]


def prelu(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """x: g where x > 0, slope·g elsewhere; slope: Σ g·min(x, 0) over its broadcast axes."""
    x, slope = node.input
    grad_x = _where_positive(e, x, g, e.op("Mul", g, slope)) if wanted[0] else None
    grad_slope = None
    if wanted[1]:
        negative = e.op("Min", x, e.const(0.0))
        grad_slope = e.unbroadcast(e.op("Mul", g, negative), slope, node.output[0])
    return [grad_x, grad_slope]


def clip(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g strictly inside (min, max), 0 elsewhere (torch's hardtanh rule; a bound left out is no bound)."""
    x = node.input[0]
    inside = None
    if len(node.input) > 1 and node.input[1]:
        inside = e.op("Greater", x, node.input[1])
    if len(node.input) > 2 and node.input[2]:
        below = e.op("Less", x, node.input[2])
        inside = below if inside is None else e.op("And", inside, below)
    return [g if inside is None else e.op("Where", inside, g, e.const(0.0))]


def sigmoid(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g·y·(1 − y)."""
    return [_at_switches(e, node, g, lambda g, y: e.op("Mul", g, e.op("Mul", y, e.op("Sub", e.const(1.0), y))))]


def tanh(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g·(1 − y²)."""
    return [_at_switches(e, node, g, lambda g, y: e.op("Mul", g, e.op("Sub", e.const(1.0), e.op("Mul", y, y))))]


def elu(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g where x > 0, g·(y + alpha) elsewhere; with alpha > 0, x > 0 exactly where y > 0, so the rule is
    written in y alone (and taken at a following MaxPool's switches)."""
    alpha = attributes(node).get("alpha", 1.0)
    if alpha <= 0:
        y = node.output[0]
        return [_where_positive(e, node.input[0], g, e.op("Mul", g, e.op("Add", y, e.const(alpha))))]
    return [
        _at_switches(e, node, g, lambda g, y: _where_positive(e, y, g, e.op("Mul", g, e.op("Add", y, e.const(alpha)))))
    ]


def hard_sigmoid(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """alpha·g where 0 < alpha·x + beta < 1, 0 elsewhere."""
    a = attributes(node)
    alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
    pre = e.op("Add", e.op("Mul", node.input[0], e.const(alpha)), e.const(beta))
    inside = e.op("And", e.op("Greater", pre, e.const(0.0)), e.op("Less", pre, e.const(1.0)))
    return [e.op("Where", inside, e.op("Mul", g, e.const(alpha)), e.const(0.0))]


def hard_swish(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """0 below −3, g above 3, g·(x/3 + 1/2) between (torch's hardswish_backward)."""
    x = node.input[0]
    middle = e.op("Add", e.op("Mul", x, e.const(1 / 3)), e.const(0.5))
    slope = e.op(
        "Where",
        e.op("Less", x, e.const(-3.0)),
        e.const(0.0),
        e.op("Where", e.op("Greater", x, e.const(3.0)), e.const(1.0), middle),
    )
    return [e.op("Mul", g, slope)]


def softmax(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """y·(g − Σ_axis g·y)."""
    y = node.output[0]
    axis = attributes(node).get("axis", -1)
    total = e.op("ReduceSum", e.op("Mul", g, y), e.ints([axis]), keepdims=1)
    return [e.op("Mul", y, e.op("Sub", g, total))]


def log_softmax(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g − exp(y)·Σ_axis g."""
    axis = attributes(node).get("axis", -1)
    total = e.op("ReduceSum", g, e.ints([axis]), keepdims=1)
    return [e.op("Sub", g, e.op("Mul", e.op("Exp", node.output[0]), total))]


def add(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g to each operand, summed over the axes it was broadcast along."""
    return [e.unbroadcast(g, x, node.output[0]) if want else None for x, want in zip(node.input, wanted, strict=True)]


def sub(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g to the first operand, −g to the second, each unbroadcast."""
    a, b = node.input
    y = node.output[0]
    return [
        e.unbroadcast(g, a, y) if wanted[0] else None,
        e.unbroadcast(e.op("Neg", g), b, y) if wanted[1] else None,
    ]


def mul(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g·b to a, g·a to b, each unbroadcast."""
    a, b = node.input
    y = node.output[0]
    return [
        e.unbroadcast(e.op("Mul", g, b), a, y) if wanted[0] else None,
        e.unbroadcast(e.op("Mul", g, a), b, y) if wanted[1] else None,
    ]


def div(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g/b to a, −g·y/b to b, each unbroadcast."""
    a, b = node.input
    y = node.output[0]
    return [
        e.unbroadcast(e.op("Div", g, b), a, y) if wanted[0] else None,
        e.unbroadcast(e.op("Neg", e.op("Div", e.op("Mul", g, y), b)), b, y) if wanted[1] else None,
    ]


def identity(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g (Identity; Dropout in inference, whose output is its input)."""
    return [g] + [None] * (len(node.input) - 1)


def cast(e: Emitter, node: onnx.NodeProto, g: str, wanted: list[bool]) -> Grads:
    """g cast back to the input's float type."""
    input_type = e.elem_types.get(node.input[0])
    return [g if input_type is None else e.op("Cast", g, to=input_type)]
