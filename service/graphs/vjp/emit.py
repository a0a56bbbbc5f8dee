"""What a vector-Jacobian rule writes with: the backward graph's nodes, typed constants and what is known of the
forward graph (static shapes, constant tensors, the rule variant)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import onnx
from onnx import helper, numpy_helper

from service.errors import NotApplicableError

Rules = Literal["gradient", "guided", "deconvnet"]
RULES: tuple[str, ...] = ("gradient", "guided", "deconvnet")
Dim = int | str | None  # a static size, a symbolic one, or unknown


class UnsupportedOp(NotApplicableError, ValueError):
    """The forward graph holds an op on the differentiated path that no rule covers; names the op and the node
    (a gradient method does not apply to such a model: 422)."""

    def __init__(self, op_type: str, node: str, why: str = "") -> None:
        self.op_type, self.node = op_type, node
        super().__init__(f"no gradient rule for {op_type} (node {node!r}){': ' + why if why else ''}")


@dataclass
class Emitter:
    """The backward nodes and initializers under construction, with fresh names, and the forward graph's facts.

    ``unpooled`` maps each gradient a MaxPool rule scattered with MaxUnpool to (the pooled gradient, the MaxPool
    node): an activation before the pool takes its derivative at the pooled resolution from it (elementwise.py).
    """

    dtype: np.dtype
    rules: Rules
    shapes: dict[str, list[Dim] | None]
    elem_types: dict[str, int]
    constants: dict[str, np.ndarray]
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    count: int = 0
    unpooled: dict[str, tuple[str, onnx.NodeProto]] = field(default_factory=dict)
    _scalars: dict[tuple, str] = field(default_factory=dict)

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"grad/{hint}_{self.count}"

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str = "", **attributes) -> str | list[str]:
        """One node; returns its output name (a list when ``outputs`` > 1)."""
        names = [name or self.fresh(op_type.lower())] + [self.fresh(op_type.lower()) for _ in range(1, outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.fresh(op_type), **attributes))
        return names[0] if outputs == 1 else names

    def const(self, value: np.ndarray | float | Sequence[int], dtype: np.dtype | type | None = None) -> str:
        """An initializer holding ``value`` (a Python float in the graph's dtype, a list as int64, an array as
        it is); shared when small and repeated."""
        if dtype is None and not isinstance(value, np.ndarray):
            dtype = np.int64 if isinstance(value, list | tuple) else self.dtype
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if key is not None and key in self._scalars:
            return self._scalars[key]
        name = self.fresh("const")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._scalars[key] = name
        return name

    def ints(self, values: Sequence[int]) -> str:
        return self.const(np.asarray(list(values), np.int64))

    def rank(self, tensor: str) -> int | None:
        shape = self.shapes.get(tensor)
        return None if shape is None else len(shape)

    def static_shape(self, tensor: str) -> list[int] | None:
        """The shape of ``tensor`` if every size is a number."""
        shape = self.shapes.get(tensor)
        if shape is None or not all(isinstance(d, int) for d in shape):
            return None
        return list(shape)

    def zeros_like(self, tensor: str) -> str:
        return self.op(
            "ConstantOfShape",
            self.op("Shape", tensor),
            value=numpy_helper.from_array(np.zeros(1, self.dtype)),
        )

    def unbroadcast(self, grad: str, operand: str, output: str) -> str:
        """``grad`` (of a broadcasting op's ``output``) summed over the axes ``operand`` was broadcast along, in
        ``operand``'s shape: statically when the ranks and the size-1 axes are known, else at run time."""
        if operand == output:
            return grad
        operand_shape, output_shape = self.shapes.get(operand), self.shapes.get(output)
        if operand_shape is not None and output_shape is not None:
            lead = len(output_shape) - len(operand_shape)
            axes = list(range(lead)) + [
                lead + i for i, size in enumerate(operand_shape) if size == 1 and output_shape[lead + i] != 1
            ]
            if not axes:
                return grad
            summed = self.op("ReduceSum", grad, self.ints(axes), keepdims=1)
            if lead == 0:
                return summed
            return self.op("Reshape", summed, self.op("Shape", operand))
        # at run time: pad the operand's shape with leading ones, sum the axes where it is 1 and the grad's is not
        shape = self.op("Shape", operand)
        grad_shape = self.op("Shape", grad)
        padded = self.op(
            "Concat",
            self.op(
                "ConstantOfShape",
                self.op("Sub", self.op("Size", grad_shape), self.op("Size", shape)),
                value=numpy_helper.from_array(np.ones(1, np.int64)),
            ),
            shape,
            axis=0,
        )
        broadcast = self.op(
            "And",
            self.op("Equal", padded, self.ints([1])),
            self.op("Not", self.op("Equal", grad_shape, self.ints([1]))),
        )
        axes = self.op("Reshape", self.op("NonZero", broadcast), self.ints([-1]))
        summed = self.op("ReduceSum", grad, axes, keepdims=1, noop_with_empty_axes=1)
        return self.op("Reshape", summed, shape)


def attributes(node: onnx.NodeProto) -> dict:
    """The node's attributes as Python values (strings decoded)."""
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}
