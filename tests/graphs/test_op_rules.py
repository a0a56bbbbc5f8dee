"""Every op rule of the gradient builder against central finite differences in float64 (tests/graphs/
finite_differences.py states the tolerances), over the attributes that change the rule."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from service.graphs import vjp
from service.graphs.gradient_builder import UnsupportedOp, gradient_graph
from tests.graphs.finite_differences import assert_graph_gradients, assert_op_gradients, graph_model

rng = np.random.default_rng(0)


def normal(*shape: int) -> np.ndarray:
    return rng.normal(size=shape)


def away_from(points: list[float], *shape: int) -> np.ndarray:
    """Normal values at least 0.05 from each kink in ``points`` (finite differences need smooth neighbourhoods)."""
    values = rng.normal(scale=2.0, size=shape)
    for point in points:
        close = np.abs(values - point) < 0.05
        values[close] += 0.1
    return values


CONV_CASES = {
    "plain": ({}, (1, 2, 5, 5), (3, 2, 3, 3)),
    "strides": ({"strides": [2, 2]}, (1, 2, 6, 6), (3, 2, 3, 3)),
    "strides-dropping-rows": ({"strides": [2, 3]}, (1, 2, 6, 7), (2, 2, 2, 2)),
    "dilations": ({"dilations": [2, 1]}, (1, 2, 6, 5), (2, 2, 2, 2)),
    "pads": ({"pads": [1, 0, 2, 1]}, (1, 2, 4, 4), (2, 2, 3, 3)),
    "large-pads": ({"pads": [3, 3, 3, 3]}, (1, 2, 3, 3), (2, 2, 2, 2)),
    "group": ({"group": 2}, (1, 4, 4, 4), (4, 2, 3, 3)),
    "depthwise": ({"group": 3, "pads": [1, 1, 1, 1]}, (1, 3, 4, 4), (3, 1, 3, 3)),
    "one-channel": ({}, (2, 1, 5, 5), (2, 1, 3, 3)),
    "same-upper": ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1, 2, 5, 5), (2, 2, 2, 2)),
    "same-lower": ({"auto_pad": "SAME_LOWER"}, (1, 2, 4, 4), (2, 2, 2, 2)),
    "valid": ({"auto_pad": "VALID", "strides": [2, 2]}, (1, 2, 5, 5), (2, 2, 3, 3)),
    "conv1d": ({"strides": [2]}, (1, 2, 7), (3, 2, 3)),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_input_gradient_matches_finite_differences(case: str) -> None:
    attributes, x_shape, w_shape = CONV_CASES[case]
    assert_op_gradients(
        "Conv", {"x": normal(*x_shape)}, {"w": normal(*w_shape), "b": normal(w_shape[0])}, double=False, **attributes
    )


@pytest.mark.parametrize(
    "attributes",
    [{}, {"transA": 1}, {"transB": 1}, {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}],
    ids=["plain", "transA", "transB", "both-scaled"],
)
def test_gemm_gradients_match_finite_differences(attributes: dict) -> None:
    a = normal(4, 3) if attributes.get("transA") else normal(3, 4)
    b = normal(5, 4) if attributes.get("transB") else normal(4, 5)
    assert_op_gradients("Gemm", {"a": a, "b": b, "c": normal(1, 5)}, **attributes)


@pytest.mark.parametrize(
    ("a_shape", "b_shape"), [((3, 4), (4, 2)), ((2, 3, 4), (4, 2)), ((2, 3, 4), (1, 4, 2))], ids=str
)
def test_matmul_gradients_match_finite_differences(a_shape: tuple, b_shape: tuple) -> None:
    assert_op_gradients("MatMul", {"a": normal(*a_shape), "b": normal(*b_shape)})


BROADCASTS = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (1, 3, 1)), ((2, 3, 1, 1), (3, 1, 1))]


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize(("a_shape", "b_shape"), BROADCASTS, ids=str)
def test_arithmetic_gradients_match_finite_differences(op_type: str, a_shape: tuple, b_shape: tuple) -> None:
    b = normal(*b_shape)
    if op_type == "Div":
        b = np.sign(b) * (np.abs(b) + 0.5)
    assert_op_gradients(op_type, {"a": normal(*a_shape), "b": b})


ACTIVATIONS = {
    "Relu": ({}, [0.0], True),
    "LeakyRelu": ({"alpha": 0.2}, [0.0], True),
    "Sigmoid": ({}, [], True),
    "Tanh": ({}, [], True),
    "Elu": ({"alpha": 0.7}, [0.0], False),
    "HardSigmoid": ({"alpha": 0.3, "beta": 0.4}, [-4 / 3, 2.0], False),
    "HardSwish": ({}, [-3.0, 3.0], False),
    "Softmax": ({"axis": 1}, [], True),
    "LogSoftmax": ({"axis": -1}, [], True),
    "Identity": ({}, [], True),
}


@pytest.mark.parametrize("op_type", ACTIVATIONS)
def test_activation_gradient_matches_finite_differences(op_type: str) -> None:
    attributes, kinks, double = ACTIVATIONS[op_type]
    assert_op_gradients(op_type, {"x": away_from(kinks, 2, 3, 4)}, double=double, **attributes)


def test_prelu_gradients_match_finite_differences() -> None:
    assert_op_gradients("PRelu", {"x": away_from([0.0], 2, 3, 2, 2), "slope": normal(3, 1, 1)})


@pytest.mark.parametrize("bounds", ["both", "min-only", "max-only"])
def test_clip_gradient_matches_finite_differences(bounds: str) -> None:
    constants = {"low": np.array(-0.5), "high": np.array(0.8)}
    if bounds == "min-only":
        constants = {"low": np.array(-0.5)}
    elif bounds == "max-only":
        constants = {"": np.array(0.0), "high": np.array(0.8)}
    assert_op_gradients("Clip", {"x": away_from([-0.5, 0.8], 3, 4)}, constants)


def test_dropout_in_inference_passes_the_gradient() -> None:
    assert_op_gradients("Dropout", {"x": normal(2, 5)})


MAX_POOLS = {
    "plain": ({"kernel_shape": [2, 2], "strides": [2, 2]}, (1, 2, 4, 4)),
    "overlapping": ({"kernel_shape": [3, 3], "strides": [1, 1]}, (1, 2, 5, 5)),
    "overlapping-strided": ({"kernel_shape": [3, 3], "strides": [2, 2]}, (1, 2, 7, 7)),
    "pads": ({"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (1, 1, 5, 5)),
    "ceil-mode": ({"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, (1, 2, 5, 5)),
    "dilations": ({"kernel_shape": [2, 2], "dilations": [2, 2]}, (1, 1, 5, 5)),
    "same-upper": ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, (1, 1, 5, 5)),
}


@pytest.mark.parametrize("case", MAX_POOLS)
@pytest.mark.parametrize("double", [True, False], ids=["float64", "float32"])
def test_max_pool_gradient_matches_finite_differences(case: str, double: bool) -> None:
    attributes, shape = MAX_POOLS[case]
    assert_op_gradients("MaxPool", {"x": normal(*shape)}, double=double, **attributes)


POOLED_ACTIVATIONS = {"Relu": ({}, [0.0]), "Sigmoid": ({}, []), "Tanh": ({}, []), "Elu": ({"alpha": 0.7}, [0.0])}


def activation_then_pool(op_type: str, between: bool = False) -> list:
    """``op_type`` then a 2x2 stride-2 MaxPool (``between``: an Identity between them)."""
    attributes, _ = POOLED_ACTIVATIONS[op_type]
    nodes = [helper.make_node(op_type, ["x"], ["a"], **attributes)]
    if between:
        nodes.append(helper.make_node("Identity", ["a"], ["b"]))
    nodes.append(helper.make_node("MaxPool", ["b" if between else "a"], ["y"], kernel_shape=[2, 2], strides=[2, 2]))
    return nodes


@pytest.mark.parametrize("op_type", POOLED_ACTIVATIONS)
def test_an_activation_before_a_max_pool_taken_at_the_switches_matches_finite_differences(op_type: str) -> None:
    x = away_from(POOLED_ACTIVATIONS[op_type][1], 2, 3, 6, 5)
    assert_graph_gradients(activation_then_pool(op_type), {"x": x}, double=False)


@pytest.mark.parametrize("rules", ["guided", "deconvnet"])
def test_a_variant_s_relu_before_a_max_pool_is_taken_at_the_pooled_resolution_with_the_same_map(rules: str) -> None:
    x = away_from([0.0], 2, 3, 6, 6).astype(np.float32)
    seed = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    maps = []
    for between in (False, True):
        model = graph_model(activation_then_pool("Relu", between), {"x": x}, {}, np.float32)
        built = gradient_graph(model, "y", ["x"], rules=rules)
        pooled_resolution = any(node.op_type == "Relu" and node.input[0] == "y_seed" for node in built.model.graph.node)
        assert pooled_resolution != between
        session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
        maps.append(session.run([built.gradients["x"]], {"x": x, built.seed_input: seed})[0])
    np.testing.assert_array_equal(maps[0], maps[1])


AVERAGE_POOLS = {
    "plain": ({"kernel_shape": [2, 2], "strides": [2, 2]}, (1, 2, 4, 4)),
    "overlapping": ({"kernel_shape": [3, 3], "strides": [1, 1]}, (1, 2, 5, 5)),
    "pads-excluded": ({"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (1, 1, 5, 5)),
    "pads-included": (
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        (1, 1, 5, 5),
    ),
    "ceil-mode": ({"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, (1, 2, 5, 5)),
    "ceil-mode-pads-included": (
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1},
        (1, 1, 6, 6),
    ),
    "same-upper": ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, (1, 1, 6, 6)),
}


@pytest.mark.parametrize("case", AVERAGE_POOLS)
def test_average_pool_gradient_matches_finite_differences(case: str) -> None:
    attributes, shape = AVERAGE_POOLS[case]
    assert_op_gradients("AveragePool", {"x": normal(*shape)}, double=False, **attributes)


def test_global_average_pool_gradient_matches_finite_differences() -> None:
    assert_op_gradients("GlobalAveragePool", {"x": normal(2, 3, 3, 4)}, double=False)


@pytest.mark.parametrize(
    ("axes", "keepdims"), [([1], 1), ([1, 3], 0), ([-1], 0), (None, 0)], ids=["one", "two-dropped", "last", "all"]
)
@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceSum"])
def test_reduction_gradient_matches_finite_differences(op_type: str, axes: list | None, keepdims: int) -> None:
    constants = {} if axes is None else {"axes": np.array(axes, np.int64)}
    assert_op_gradients(op_type, {"x": normal(2, 3, 2, 2)}, constants, keepdims=keepdims)


def test_batch_normalization_gradient_matches_finite_differences() -> None:
    constants = {
        "scale": normal(3),
        "bias": normal(3),
        "mean": normal(3),
        "var": np.abs(normal(3)) + 0.1,
    }
    assert_op_gradients("BatchNormalization", {"x": normal(2, 3, 2, 2)}, constants, epsilon=1e-3)


SHAPE_OPS = {
    "Flatten": ({"axis": 2}, {}),
    "Reshape": ({}, {"shape": np.array([4, -1], np.int64)}),
    "Transpose": ({"perm": [2, 0, 3, 1]}, {}),
    "Transpose-default": ({}, {}),
    "Squeeze": ({}, {"axes": np.array([1], np.int64)}),
    "Unsqueeze": ({}, {"axes": np.array([0, 3], np.int64)}),
}


@pytest.mark.parametrize("case", SHAPE_OPS)
def test_shape_op_gradient_matches_finite_differences(case: str) -> None:
    attributes, constants = SHAPE_OPS[case]
    shape = (2, 1, 3, 2) if case == "Squeeze" else (2, 2, 3, 2)
    assert_op_gradients(case.split("-")[0], {"x": normal(*shape)}, constants, **attributes)


@pytest.mark.parametrize("axis", [2, -1])
def test_concat_gradients_match_finite_differences(axis: int) -> None:
    assert_op_gradients("Concat", {"a": normal(2, 3, 2), "b": normal(2, 3, 1), "c": normal(2, 3, 3)}, axis=axis)


def test_split_gradient_matches_finite_differences_when_all_parts_are_used() -> None:
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["p", "q", "r"], axis=1),
        helper.make_node("Mul", ["p", "r"], ["pr"]),
        helper.make_node("Concat", ["pr", "q"], ["y"], axis=1),
    ]
    assert_graph_gradients(nodes, {"x": normal(2, 5, 2)}, {"sizes": np.array([2, 1, 2], np.int64)})


def test_split_gradient_is_zero_for_an_unused_part() -> None:
    nodes = [helper.make_node("Split", ["x", "sizes"], ["y", "unused"], axis=0)]
    assert_graph_gradients(nodes, {"x": normal(4, 3)}, {"sizes": np.array([3, 1], np.int64)})


SLICES = {
    "unit-steps": ([1, 0], [3, -1], [0, 2], None),
    "negative-start": ([-2], [100], [1], None),
    "step-two": ([0, 1], [4, 5], [0, 1], [2, 2]),
    "negative-step": ([3], [0], [2], [-1]),
}


@pytest.mark.parametrize("case", SLICES)
def test_slice_gradient_matches_finite_differences(case: str) -> None:
    starts, ends, axes, steps = SLICES[case]
    constants = {
        "starts": np.array(starts, np.int64),
        "ends": np.array(ends, np.int64),
        "axes": np.array(axes, np.int64),
    }
    if steps is not None:
        constants["steps"] = np.array(steps, np.int64)
    assert_op_gradients("Slice", {"x": normal(4, 3, 5)}, constants)


@pytest.mark.parametrize("pads", [[0, 1, 2, 0, 2, 1], [0, -1, 1, 0, 1, -1]], ids=["padding", "cropping"])
def test_pad_gradient_matches_finite_differences(pads: list[int]) -> None:
    assert_op_gradients("Pad", {"x": normal(2, 3, 4)}, {"pads": np.array(pads, np.int64)}, mode="constant")


def test_a_gradient_reaching_a_tensor_along_two_paths_is_summed() -> None:
    nodes = [
        helper.make_node("Tanh", ["x"], ["t"]),
        helper.make_node("Mul", ["t", "x"], ["tx"]),
        helper.make_node("Add", ["tx", "t"], ["y"]),
    ]
    assert_graph_gradients(nodes, {"x": normal(3, 4)})


def test_a_wrong_rule_is_caught_by_the_finite_differences(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(vjp.RULES_BY_OP, "Tanh", vjp.RULES_BY_OP["Sigmoid"])
    with pytest.raises(AssertionError):
        assert_op_gradients("Tanh", {"x": normal(2, 3)})


def test_an_op_without_a_rule_is_named_with_its_node() -> None:
    node = helper.make_node("Erf", ["x"], ["y"], name="the_erf")
    model = graph_model([node], {"x": normal(2, 3)}, {}, np.float32)
    with pytest.raises(UnsupportedOp, match=r"Erf \(node 'the_erf'\)"):
        gradient_graph(model, "y")


def test_an_op_off_the_differentiated_path_needs_no_rule() -> None:
    nodes = [helper.make_node("Erf", ["x"], ["e"], name="the_erf"), helper.make_node("Relu", ["x"], ["y"])]
    model = graph_model(nodes, {"x": normal(2, 3)}, {}, np.float32)
    assert gradient_graph(model, "y").gradients == {"x": "x_grad"}


def test_two_tensors_sharing_one_gradient_each_get_it() -> None:
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Tanh", ["a"], ["y"])]
    x = normal(2, 3).astype(np.float32)
    built = gradient_graph(graph_model(nodes, {"x": x}, {}, np.float32), "y", ["x", "a"])
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    seed = normal(2, 3).astype(np.float32)
    grad_x, grad_a = session.run([built.gradients["x"], built.gradients["a"]], {"x": x, built.seed_input: seed})
    np.testing.assert_allclose(grad_a, seed * (1 - np.tanh(x) ** 2), rtol=1e-5)
    np.testing.assert_array_equal(grad_x, grad_a)


def test_a_side_view_of_a_differentiated_tensor_gets_its_gradient_through_the_view() -> None:
    nodes = [
        helper.make_node("Tanh", ["x"], ["a"]),
        helper.make_node("Transpose", ["a"], ["view"], perm=[1, 0]),
        helper.make_node("Sigmoid", ["a"], ["y"]),
    ]
    x = normal(2, 3).astype(np.float32)
    built = gradient_graph(graph_model(nodes, {"x": x}, {}, np.float32), "y", ["a", "view"])
    session = ort.InferenceSession(built.model.SerializeToString(), providers=["CPUExecutionProvider"])
    seed = normal(2, 3).astype(np.float32)
    grad_a, grad_view = session.run([built.gradients["a"], built.gradients["view"]], {"x": x, built.seed_input: seed})
    np.testing.assert_allclose(grad_a, seed * (1 - 1 / (1 + np.exp(-np.tanh(x)))) / (1 + np.exp(-np.tanh(x))), 1e-5)
    np.testing.assert_array_equal(grad_view, grad_a.T)
