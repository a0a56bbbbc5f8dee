"""The digit judge inside the classifier's own onnxruntime run: its score as one more output of the graph.

``DigitJudgeModel.scores`` is two dozen numpy calls on a handful of numbers per image; after a single
classification inside a request they took 37 us, a quarter of the inference itself. As ONNX nodes appended to the
classifier (the same folded float32 arrays, the same formula) they cost a few microseconds of the same run. The
classifier's other outputs are untouched (bit for bit). The nodes cost their few microseconds even in runs that do
not ask for SCORE (one image: 158 against 148-150 us for the file's graph, interleaved).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import TensorProto, helper

from service.contract import INPUT_NAME
from service.graphs.classifier_graph import GraphBuilder
from service.runtime.registry import Registry
from service.studies.digit_judge import SCORE, DigitJudgeModel
from service.studies.statistics import DatasetStatistics

log = logging.getLogger("convlens.digit_judge")
MIN_OPSET, AXES_AS_INPUT_OPSET = 13, 18  # ReduceSum's axes are an input from 13, ReduceMin's and ReduceMax's from 18


def judged_classifier(classifier: onnx.ModelProto, judge: DigitJudgeModel) -> onnx.ModelProto:
    """A copy of ``classifier`` (its outputs ``dense1`` and ``output`` included) with SCORE as one more output.

    ValueError for a graph without those outputs or of an opset older than 13."""
    opset = next((o.version for o in classifier.opset_import if o.domain in ("", "ai.onnx")), 0)
    names = {output.name for output in classifier.graph.output}
    if opset < MIN_OPSET or not {"dense1", "output"} <= names:
        raise ValueError(f"the judge needs a classifier of opset >= {MIN_OPSET} with outputs dense1 and output")
    f, (shape_offset, ink_centre, ink_scale, units) = judge._fast, judge._offsets
    b = GraphBuilder()

    def c(name: str, value: np.ndarray | float) -> str:
        return b.constant(f"judge_{name}", np.asarray(value, np.float32))

    def i64(value: int) -> str:
        return b.constant(f"judge_i64_{value}", np.array([value], np.int64))

    def per_row(op: str, x: str) -> str:
        """``op`` (a Reduce*) over each image's row (axis 1), kept as a column."""
        if op == "ReduceSum" or opset >= AXES_AS_INPUT_OPSET:
            return b.op(op, x, i64(1), keepdims=1)
        return b.op(op, x, axes=[1], keepdims=1)

    def columns(x: str, start: int, end: int) -> str:
        return b.op("Slice", x, i64(start), i64(end), i64(1))

    p = b.op("Max", "output", c("tiny_probability", 1e-7))
    both = b.op("MatMul", "dense1", c("w_dense1", f["w_dense1"]))  # whitened dense1, and its part of the first layer
    z = columns(both, 0, units)
    distances = b.op("Add", b.op("MatMul", z, c("centres_t", f["centres_t"])), c("centre_norms", f["centre_norms"]))
    squared = b.op("Add", per_row("ReduceSum", b.op("Mul", z, z)), per_row("ReduceMin", distances))
    entropy = per_row("ReduceSum", b.op("Mul", p, b.op("Neg", b.op("Log", p))))
    top = b.op("Log", per_row("ReduceMax", p))
    distance = b.op("Log", b.op("Max", squared, c("tiny_distance", 1e-9)))
    summary = b.op("Concat", entropy, top, distance, axis=1)
    first = b.op(
        "Add", columns(both, units, np.iinfo(np.int64).max), b.op("MatMul", summary, c("w_summary", f["w_summary"]))
    )
    hidden = b.op("Relu", b.op("Add", first, c("b1", f["b1"])))
    shape = b.op("Add", b.op("MatMul", hidden, c("w2", f["w2"].reshape(-1, 1))), c("shape_offset", shape_offset))
    pixels = b.op("Reshape", INPUT_NAME, b.constant("judge_flat", np.array([-1, 28 * 28], np.int64)))
    ink_sum = b.op("Sub", per_row("ReduceSum", pixels), c("ink_centre", ink_centre * 28 * 28))
    ink = b.op("Div", ink_sum, c("ink_scale", ink_scale))
    b.op("Reshape", b.op("Max", shape, ink), i64(-1), name=SCORE)

    judged = onnx.ModelProto()
    judged.CopyFrom(classifier)
    judged.graph.node.extend(b.nodes)
    judged.graph.initializer.extend(b.initializers)
    judged.graph.output.append(helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, [None]))
    onnx.checker.check_model(judged)
    return judged


def attach_judges(registry: Registry, statistics: dict[str, DatasetStatistics | Exception]) -> None:
    """Make every served classifier whose statistics hold a judge compute its score in its own runs (SCORE); one
    whose graph cannot take the nodes keeps the numpy score, with one log line."""
    for name, loaded in statistics.items():
        if isinstance(loaded, DatasetStatistics) and loaded.judge is not None and name in registry.models:
            model = registry.models[name]
            try:
                model.serve_graph(judged_classifier(onnx.load_from_string(model.onnx_bytes), loaded.judge))
            except ValueError as exc:
                log.info("the digit judge of %s stays in numpy: %s", name, exc)
