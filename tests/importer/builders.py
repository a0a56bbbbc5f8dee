"""Small ONNX classifiers built with ``onnx.helper`` for the importer's tests: each one what a real export could
be, with one thing changed where a test needs the importer to refuse it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 5
CHANNELS = 4


def tiny_classifier(
    input_shape: tuple[int | str, ...] = ("N", 3, 16, 16),
    *,
    conv_type: int = TensorProto.FLOAT,
    flatten: bool = True,
    domain: str = "",
    opset: int = 17,
) -> onnx.ModelProto:
    """Conv(3x3) ReLU GlobalAveragePool Flatten Gemm to CLASSES logits, random weights (seed 0), input NCHW.

    ``conv_type`` DOUBLE runs the Conv in float64 (Casts around it), which onnxruntime has no kernel for;
    ``flatten=False`` leaves the output (N, C, 1, 1); ``domain`` puts the ReLU in another op domain."""
    rng = np.random.default_rng(0)
    channels = input_shape[1] if isinstance(input_shape[1], int) and input_shape[1] in (1, 3) else input_shape[3]
    dtype = np.float64 if conv_type == TensorProto.DOUBLE else np.float32
    weights = [
        numpy_helper.from_array(rng.standard_normal((CHANNELS, channels, 3, 3)).astype(dtype), "conv.weight"),
        numpy_helper.from_array(rng.standard_normal((CLASSES, CHANNELS)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(rng.standard_normal(CLASSES).astype(np.float32), "fc.bias"),
    ]
    nodes = []
    conv_input = "input"
    if conv_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["input"], ["input_cast"], to=conv_type, name="/cast_in/Cast"))
        conv_input = "input_cast"
    nodes.append(
        helper.make_node("Conv", [conv_input, "conv.weight"], ["conv_raw"], pads=[1, 1, 1, 1], name="/conv/Conv")
    )
    conv_output = "conv_raw"
    if conv_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["conv_raw"], ["conv_out"], to=TensorProto.FLOAT, name="/cast_out/Cast"))
        conv_output = "conv_out"
    nodes += [
        helper.make_node("Relu", [conv_output], ["relu_out"], name="/relu/Relu", domain=domain),
        helper.make_node("GlobalAveragePool", ["relu_out"], ["pooled"], name="/pool/GlobalAveragePool"),
    ]
    if flatten:
        nodes += [
            helper.make_node("Flatten", ["pooled"], ["flat"], name="/Flatten"),
            helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1, name="/fc/Gemm"),
        ]
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [input_shape[0], CLASSES])
    else:
        output = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [input_shape[0], CHANNELS, 1, 1])
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))], [output], weights
    )
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=imports, ir_version=8)


def save(model: onnx.ModelProto, path: Path) -> Path:
    """``model`` written to ``path``."""
    onnx.save(model, str(path))
    return path


def with_external_weights(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    """``model`` whose Conv weights say they live in the external file ``location``."""
    moved = onnx.ModelProto()
    moved.CopyFrom(model)
    tensor = next(init for init in moved.graph.initializer if init.name == "conv.weight")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return moved
