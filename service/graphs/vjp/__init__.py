"""The vector-Jacobian rule of each supported op type, one module per family: elementwise (arithmetic and
activations), linear (Conv, Gemm, MatMul, BatchNormalization), pooling (pooling and reductions) and shape (ops
that move units). ``RULES_BY_OP`` maps an op type to its rule; a rule gets the emitter, the forward node, the
gradient of its output (of each output, for ``MULTI_OUTPUT`` ops) and which inputs need a gradient, and returns
one gradient name (or None) per input."""

from __future__ import annotations

from collections.abc import Callable

from service.graphs.vjp import elementwise, linear, pooling, shape
from service.graphs.vjp.emit import RULES, Emitter, Rules, UnsupportedOp

Rule = Callable[..., list[str | None]]

RULES_BY_OP: dict[str, Rule] = {
    "Conv": linear.conv,
    "Gemm": linear.gemm,
    "MatMul": linear.matmul,
    "BatchNormalization": linear.batch_normalization,
    "Add": elementwise.add,
    "Sub": elementwise.sub,
    "Mul": elementwise.mul,
    "Div": elementwise.div,
    "Relu": elementwise.relu,
    "LeakyRelu": elementwise.leaky_relu,
    "PRelu": elementwise.prelu,
    "Clip": elementwise.clip,
    "Sigmoid": elementwise.sigmoid,
    "Tanh": elementwise.tanh,
    "Elu": elementwise.elu,
    "HardSigmoid": elementwise.hard_sigmoid,
    "HardSwish": elementwise.hard_swish,
    "Softmax": elementwise.softmax,
    "LogSoftmax": elementwise.log_softmax,
    "Identity": elementwise.identity,
    "Dropout": elementwise.identity,
    "Cast": elementwise.cast,
    "MaxPool": pooling.max_pool,
    "AveragePool": pooling.average_pool,
    "GlobalAveragePool": pooling.global_average_pool,
    "ReduceMean": pooling.reduce_mean,
    "ReduceSum": pooling.reduce_sum,
    "Flatten": shape.reshape_back,
    "Reshape": shape.reshape_back,
    "Squeeze": shape.reshape_back,
    "Unsqueeze": shape.reshape_back,
    "Transpose": shape.transpose,
    "Concat": shape.concat,
    "Split": shape.split,
    "Slice": shape.slice_,
    "Pad": shape.pad,
}
MULTI_OUTPUT = {"Split"}  # rules that take every output's gradient (None where an output has none)

# ops whose outputs carry no gradient: constants, shapes, indices, comparisons
NO_GRADIENT = {
    "Constant",
    "ConstantOfShape",
    "Shape",
    "Size",
    "Range",
    "ArgMax",
    "ArgMin",
    "NonZero",
    "Equal",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "RandomNormalLike",
    "RandomUniformLike",
    "EyeLike",
    "OneHot",
}

__all__ = ["MULTI_OUTPUT", "NO_GRADIENT", "RULES", "RULES_BY_OP", "Emitter", "Rules", "UnsupportedOp"]
