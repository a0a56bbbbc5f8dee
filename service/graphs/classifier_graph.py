"""The classifier's forward pass as ONNX nodes built from its weights: the pieces the backward graph, occlusion and
the digit judge assemble their graphs from.

Layout: NCHW inside, as tf2onnx lays out the classifier (classifier_weights.py), so the convolutions are the model
file's own Conv ops on its own OIHW kernels. The dense layer's rows are in Keras' NHWC flatten order, so pool is
transposed before flattening, as in the file.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.graphs.classifier_weights import CLASSES, IMAGE_SIZE, ClassifierWeights

OPSET = 17


class GraphBuilder:
    """Nodes and initializers of the graph under construction, with fresh tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def constant(self, name: str, value: np.ndarray) -> str:
        """An initializer ``name`` (added once: the scalars are shared by every use)."""
        if name not in {initializer.name for initializer in self.initializers}:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str = "", **attributes) -> str | list[str]:
        """One node; returns its output name (a list when ``outputs`` > 1), ``name`` or a fresh one."""
        self.count += 1
        names = [name or f"{op_type.lower()}_{self.count}"] + [
            f"{op_type.lower()}_{self.count}_{i}" for i in range(1, outputs)
        ]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attributes))
        return names[0] if outputs == 1 else names

    def model(self, name: str, inputs: dict[str, list], outputs: dict[str, list]) -> onnx.ModelProto:
        """The checked float32 model of the nodes so far, with these inputs and outputs and their shapes."""
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in inputs.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in outputs.items()],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        onnx.checker.check_model(model)
        return model


def _activation(b: GraphBuilder, op: str, pre: str, name: str = "") -> str:
    return b.op({"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "elu": "Elu"}[op], pre, name=name)


def oihw(kernel: np.ndarray) -> np.ndarray:
    """A Keras HWIO kernel in ONNX's OIHW layout (the model file's own)."""
    return kernel.transpose(3, 2, 0, 1)


def conv_layers(b: GraphBuilder, weights: ClassifierWeights, x: str) -> list[str]:
    """conv1, conv2 and pool (NCHW) of the NCHW images ``x``."""
    act = weights.activation
    w1, w2 = (
        b.constant(name, oihw(kernel)) for name, kernel in (("w1", weights.conv1_kernel), ("w2", weights.conv2_kernel))
    )
    conv1 = _activation(b, act, b.op("Conv", x, w1, b.constant("b1", weights.conv1_bias)), name="conv1")
    conv2 = _activation(b, act, b.op("Conv", conv1, w2, b.constant("b2", weights.conv2_bias)), name="conv2")
    pool = b.op("MaxPool", conv2, name="pool", kernel_shape=[2, 2], strides=[2, 2])
    return [conv1, conv2, pool]


def dense_layers(b: GraphBuilder, weights: ClassifierWeights, pool: str) -> tuple[str, str]:
    """dense1 and the logits (N,10), named ``dense1`` and ``logits``, of the NCHW ``pool``, flattened in Keras'
    NHWC order as the file does."""
    flat = b.op(
        "Reshape",
        b.op("Transpose", pool, perm=[0, 2, 3, 1]),
        b.constant("flat", np.array([-1, weights.dense1_kernel.shape[0]], np.int64)),
    )
    dense1_pre = b.op(
        "Add", b.op("MatMul", flat, b.constant("wd1", weights.dense1_kernel)), b.constant("bd1", weights.dense1_bias)
    )
    dense1 = _activation(b, weights.activation, dense1_pre, name="dense1")
    logits = b.op(
        "Add",
        b.op("MatMul", dense1, b.constant("wout", weights.output_kernel)),
        b.constant("bout", weights.output_bias),
        name="logits",
    )
    return dense1, logits


def forward_model(weights: ClassifierWeights) -> onnx.ModelProto:
    """The classifier of images ``input`` (N,28,28): its layers conv1, conv2, pool (NCHW), dense1, the logits
    and the class probabilities, each an output named after it."""
    b = GraphBuilder()
    x = b.op("Reshape", "input", b.constant("nchw_input", np.array([-1, 1, IMAGE_SIZE, IMAGE_SIZE], np.int64)))
    conv1, conv2, pool = conv_layers(b, weights, x)
    dense1, logits = dense_layers(b, weights, pool)
    b.op("Softmax", logits, name="probabilities", axis=-1)
    c1, c2 = weights.conv1_kernel.shape[3], weights.conv2_kernel.shape[3]
    side1 = IMAGE_SIZE - weights.conv1_kernel.shape[0] + 1
    side2 = side1 - weights.conv2_kernel.shape[0] + 1
    shapes = {
        "conv1": [c1, side1, side1],
        "conv2": [c2, side2, side2],
        "pool": [c2, side2 // 2, side2 // 2],
        "dense1": [weights.dense1_kernel.shape[1]],
        "logits": [CLASSES],
        "probabilities": [CLASSES],
    }
    return b.model(
        "convlens_classifier", {"input": ["N", IMAGE_SIZE, IMAGE_SIZE]}, {k: ["N", *v] for k, v in shapes.items()}
    )
