"""The classifier's weights, read from its ONNX graph, for the exact backward pass of the attribution methods.

tf2onnx lays the Keras classifier out as: Reshape (NHWC -> NCHW, a reshape since C = 1) -> Conv -> act ->
Transpose (``conv1``) -> Transpose -> Conv -> act -> Transpose (``conv2``) -> Transpose -> MaxPool -> Transpose
(``pool``) -> Reshape of ``pool`` itself (so the dense rows are in Keras' NHWC flatten order) -> MatMul -> Add ->
act (``dense1``) -> MatMul -> Add -> Softmax (``output``); an all-zero bias (an untrained network's) is left out
altogether, Conv without its bias input and MatMul without the Add. The weights are read by walking that graph,
not by trusting initializer names, so a graph of another shape is refused instead of being explained wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

CLASSIFIER_OUTPUTS = ("conv1", "conv2", "pool", "dense1", "output")
ACTIVATION_OPS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Elu": "elu"}
IMAGE_SIZE = 28
CLASSES = 10
PREDICTED = -1  # a target standing for the image's predicted class, for the methods that find it themselves


@dataclass(frozen=True, eq=False)
class ClassifierWeights:
    """Every weight of the classifier (read-only arrays) and its hidden layers' activation.

    Kernels are Keras' HWIO; ``dense1_kernel`` is (12*12*64, 128) with rows in the NHWC flatten order of
    ``pool``; ``output_kernel`` is (128, 10), so that logits = dense1 @ output_kernel + output_bias.
    """

    conv1_kernel: np.ndarray
    conv1_bias: np.ndarray
    conv2_kernel: np.ndarray
    conv2_bias: np.ndarray
    dense1_kernel: np.ndarray
    dense1_bias: np.ndarray
    output_kernel: np.ndarray
    output_bias: np.ndarray
    activation: str


class _Graph:
    """Producers, consumers and constant tensors of one ONNX graph."""

    def __init__(self, proto: onnx.ModelProto) -> None:
        self.producer = {out: node for node in proto.graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in proto.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.constants = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
        for node in proto.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def node(self, tensor: str, op_types: tuple[str, ...], what: str) -> onnx.NodeProto:
        """The node producing ``tensor``, which must be one of ``op_types``."""
        node = self.producer.get(tensor)
        if node is None or node.op_type not in op_types:
            found = node.op_type if node is not None else "a graph input or constant"
            raise ValueError(
                f"not the convlens classifier: {what} should come from {'/'.join(op_types)}, found {found}"
            )
        return node

    def constant(self, tensor: str, what: str) -> np.ndarray:
        if tensor not in self.constants:
            raise ValueError(f"not the convlens classifier: {what} is not a constant of the graph")
        return self.constants[tensor].astype(np.float32)

    def skip_transposes(self, tensor: str, stop: str = "") -> str:
        """Walk back over Transpose/Identity nodes (tf2onnx's NHWC <-> NCHW shuffles), stopping at ``stop``."""
        while tensor != stop and tensor in self.producer and self.producer[tensor].op_type in ("Transpose", "Identity"):
            tensor = self.producer[tensor].input[0]
        return tensor


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _activation(graph: _Graph, tensor: str, what: str) -> tuple[str, str]:
    """(activation name, its input tensor) of the activation node producing ``tensor``."""
    node = graph.node(tensor, tuple(ACTIVATION_OPS), f"the {what} activation")
    if node.op_type == "Elu" and _attributes(node).get("alpha", 1.0) != 1.0:
        raise ValueError(f"{what} uses Elu with alpha {_attributes(node)['alpha']}; only alpha 1 is supported")
    return ACTIVATION_OPS[node.op_type], node.input[0]


def _conv(graph: _Graph, output: str) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(HWIO kernel, bias, activation, input tensor) of the stride-1 valid Conv behind graph output ``output``.

    tf2onnx leaves out an all-zero bias (an untrained network's), so a Conv without one has a zero bias.
    """
    activation, pre = _activation(graph, graph.skip_transposes(output), output)
    conv = graph.node(pre, ("Conv",), f"{output}'s pre-activation")
    attrs = _attributes(conv)
    if (
        any(attrs.get("pads", [0]))
        or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID")
        or set(attrs.get("strides", [1])) != {1}
        or set(attrs.get("dilations", [1])) != {1}
        or attrs.get("group", 1) != 1
    ):
        raise ValueError(f"{output}'s Conv is not a stride-1 valid convolution: {attrs}")
    kernel = np.ascontiguousarray(graph.constant(conv.input[1], f"{output}'s kernel").transpose(2, 3, 1, 0))
    bias = (
        graph.constant(conv.input[2], f"{output}'s bias")
        if len(conv.input) > 2 and conv.input[2]
        else np.zeros(kernel.shape[3], np.float32)
    )
    return kernel, bias, activation, conv.input[0]


def _dense(graph: _Graph, tensor: str, what: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(kernel (in, out), bias, input tensor) of the MatMul (+ Add, absent for an all-zero bias) producing
    ``tensor``."""
    node = graph.node(tensor, ("Add", "MatMul"), f"{what}'s bias addition or matrix product")
    if node.op_type == "MatMul":
        kernel = graph.constant(node.input[1], f"{what}'s kernel")
        return kernel, np.zeros(kernel.shape[1], np.float32), node.input[0]
    first, second = node.input
    matmul_side, bias_side = (first, second) if second in graph.constants else (second, first)
    matmul = graph.node(matmul_side, ("MatMul",), f"{what}'s matrix product")
    return (
        graph.constant(matmul.input[1], f"{what}'s kernel"),
        graph.constant(bias_side, f"{what}'s bias"),
        matmul.input[0],
    )


def classifier_weights(proto: onnx.ModelProto) -> ClassifierWeights:
    """Read the classifier's weights from its ONNX graph; ValueError if the graph is not that classifier."""
    outputs = [o.name for o in proto.graph.output]
    if not set(CLASSIFIER_OUTPUTS) <= set(outputs):
        raise ValueError(
            f"not the convlens classifier: its graph outputs are {', '.join(outputs)}, "
            f"expected {', '.join(CLASSIFIER_OUTPUTS)}"
        )
    graph = _Graph(proto)
    conv1_kernel, conv1_bias, act1, _ = _conv(graph, "conv1")
    conv2_kernel, conv2_bias, act2, conv2_input = _conv(graph, "conv2")
    if graph.skip_transposes(conv2_input, stop="conv1") != "conv1":
        raise ValueError("not the convlens classifier: conv2 does not read conv1")

    pool = graph.node(graph.skip_transposes("pool"), ("MaxPool",), "pool")
    attrs = _attributes(pool)
    if (
        list(attrs.get("kernel_shape", [])) != [2, 2]
        or list(attrs.get("strides", [])) != [2, 2]
        or any(attrs.get("pads", [0]))
        or graph.skip_transposes(pool.input[0], stop="conv2") != "conv2"
    ):
        raise ValueError(f"not the convlens classifier: pool is not a 2x2 stride-2 max pooling of conv2: {attrs}")

    act3, dense1_pre = _activation(graph, "dense1", "dense1")
    dense1_kernel, dense1_bias, flat = _dense(graph, dense1_pre, "dense1")
    flatten = graph.node(flat, ("Reshape", "Flatten"), "dense1's input")
    if flatten.input[0] != "pool":
        raise ValueError("not the convlens classifier: dense1 does not flatten pool in its NHWC layout")
    softmax = graph.node("output", ("Softmax",), "output")
    output_kernel, output_bias, dense1_input = _dense(graph, softmax.input[0], "output")
    if dense1_input != "dense1":
        raise ValueError("not the convlens classifier: the output layer does not read dense1")

    if len({act1, act2, act3}) != 1:
        raise ValueError(f"the hidden layers mix activations ({act1}, {act2}, {act3}); one is expected")
    size = (IMAGE_SIZE - conv1_kernel.shape[0] + 1 - conv2_kernel.shape[0] + 1) // 2
    expected = {
        "conv1 kernel input channels": (conv1_kernel.shape[2], 1),
        "conv2 kernel input channels": (conv2_kernel.shape[2], conv1_kernel.shape[3]),
        "dense1 kernel rows": (dense1_kernel.shape[0], size * size * conv2_kernel.shape[3]),
        "output kernel rows": (output_kernel.shape[0], dense1_kernel.shape[1]),
        "classes": (output_kernel.shape[1], CLASSES),
    }
    for what, (actual, wanted) in expected.items():
        if actual != wanted:
            raise ValueError(f"not the convlens classifier: {what} is {actual}, expected {wanted}")
    arrays = [
        conv1_kernel,
        conv1_bias,
        conv2_kernel,
        conv2_bias,
        dense1_kernel,
        dense1_bias,
        output_kernel,
        output_bias,
    ]
    for array in arrays:
        array.setflags(write=False)
    return ClassifierWeights(*arrays, activation=act1)
