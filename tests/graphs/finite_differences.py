"""Central finite differences in float64 of a one-node ONNX graph against the gradient builder's graph.

The forward pass for the differences runs in float64: in onnxruntime where it has double kernels for the graph's
ops, else in onnx's reference evaluator (every op in double). The
builder's graph runs in onnxruntime: in float64 where onnxruntime has double kernels for every op of the
forward and backward graph (tolerance 1e-6 relative to the gradient's largest entry: the differences' own
truncation error at h = 1e-5), else in float32 (Conv, ConvTranspose, MaxUnpool, AveragePool, GlobalAveragePool,
Elu, HardSigmoid, HardSwish have float kernels only; tolerance 2e-4 relative: float32 round-off of sums of up
to a few hundred products).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from service.graphs.gradient_builder import gradient_graph

STEP = 1e-5
TOLERANCE = {np.float64: 1e-6, np.float32: 2e-4}


def graph_model(
    nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray], constants: dict[str, np.ndarray], dtype: type
) -> onnx.ModelProto:
    """A model of ``nodes`` over ``inputs`` (graph inputs) and ``constants`` (initializers), its output ``y``."""
    float_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        nodes,
        "under_test",
        [helper.make_tensor_value_info(n, float_type, list(a.shape)) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", float_type, None)],
        [numpy_helper.from_array(a.astype(dtype) if a.dtype.kind == "f" else a, n) for n, a in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def float64_runner(model: onnx.ModelProto) -> Callable[[list[str], dict[str, np.ndarray]], list[np.ndarray]]:
    """How the float64 ``model`` runs: onnxruntime's double kernels where it has them all, else onnx's
    reference evaluator."""
    try:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run
    except ort.capi.onnxruntime_pybind11_state.NotImplemented:
        return ReferenceEvaluator(model).run


def numeric_gradients(model: onnx.ModelProto, inputs: dict[str, np.ndarray], seed: np.ndarray) -> dict[str, np.ndarray]:
    """∂(Σ seed·y)/∂ each input by central differences in float64."""
    run = float64_runner(model)

    def value(feeds: dict[str, np.ndarray]) -> float:
        return float(np.sum(seed * run(["y"], feeds)[0]))

    grads = {}
    for name, array in inputs.items():
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            shifted = {}
            for sign in (1, -1):
                moved = array.copy()
                moved[index] += sign * STEP
                shifted[sign] = value({**inputs, name: moved})
            grad[index] = (shifted[1] - shifted[-1]) / (2 * STEP)
        grads[name] = grad
    return grads


def builder_gradients(
    model: onnx.ModelProto, inputs: dict[str, np.ndarray], seed: np.ndarray, dtype: type
) -> dict[str, np.ndarray]:
    """The builder's gradients of Σ seed·y w.r.t. every input, run by onnxruntime in ``dtype``."""
    built = gradient_graph(model, "y", list(inputs))
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {name: array.astype(dtype) for name, array in inputs.items()}
    feeds[built.seed_input] = seed.astype(dtype)
    names = [built.gradients[name] for name in inputs]
    return dict(zip(inputs, session.run(names, feeds), strict=True))


def assert_graph_gradients(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, np.ndarray],
    constants: dict[str, np.ndarray] | None = None,
    double: bool = True,
) -> None:
    """The builder's gradient of ``y`` (run in float64 when ``double``, else float32) w.r.t. every input equals
    central differences in float64 within TOLERANCE relative to its largest entry."""
    constants = constants or {}
    dtype = np.float64 if double else np.float32
    reference = graph_model(nodes, inputs, constants, np.float64)
    y = float64_runner(reference)(["y"], inputs)[0]
    seed = np.random.default_rng(7).normal(size=np.shape(y))
    expected = numeric_gradients(reference, inputs, seed)
    actual = builder_gradients(graph_model(nodes, inputs, constants, dtype), inputs, seed, dtype)
    for name in inputs:
        scale = max(float(np.abs(expected[name]).max()), 1e-3)
        np.testing.assert_allclose(
            actual[name], expected[name], rtol=0, atol=TOLERANCE[dtype] * scale, err_msg=f"d/d{name}"
        )


def assert_op_gradients(
    op_type: str,
    inputs: dict[str, np.ndarray],
    constants: dict[str, np.ndarray] | None = None,
    double: bool = True,
    **attributes,
) -> None:
    """assert_graph_gradients of one ``op_type`` node reading ``inputs`` then ``constants`` ("" for a left-out
    input) and writing ``y``."""
    constants = constants or {}
    node = helper.make_node(op_type, [*inputs, *constants], ["y"], name=f"the_{op_type.lower()}", **attributes)
    assert_graph_gradients([node], inputs, {n: a for n, a in constants.items() if n}, double)
