"""Backward sessions of imported models: the gradient builder's graph (``service.graphs.gradient_builder``) of one
imported model, from one seeded tensor back to its input, in an onnxruntime session, with the time one image's
forward-and-backward run takes measured once when the session is made.

Sessions are kept per (model, file checksum, seeded tensor, rule variant), the most recently used
``KEPT_SESSIONS`` of them; a model whose path holds an op without a rule is refused (NotApplicable naming the op
and the node, ``gradient_builder.unsupported_op``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import onnx

from service.attribution.any_model import GradientRunner
from service.errors import NotApplicableError, NotFoundError
from service.graphs.gradient_builder import Rules, gradient_graph, unsupported_op
from service.images.preprocessing import input_shape
from service.runtime.cancellation import checkpoint
from service.runtime.imported import ImportedLoadedModel

KEPT_SESSIONS = 8
TIMED_RUNS = 3  # runs of one image timed after a warm-up one; the fastest is the measured cost


class NoGradient(NotApplicableError, ValueError):
    """The imported model's path from the seeded tensor to its input holds an op the builder has no rule for."""


class UnknownImportedLayer(NotFoundError, LookupError):
    """The imported model has no exposed layer by that name."""


@dataclass(frozen=True)
class BackwardSession:
    """One imported model's backward graph from ``seeded`` (an ONNX tensor) to its input, and the measured
    milliseconds of one image's forward-and-backward run (``ms_per_image``)."""

    runner: GradientRunner
    seeded: str
    seed_shape: tuple[int, ...]
    ms_per_image: float

    def gradient(self, model: ImportedLoadedModel, images: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """The input gradient of Σ seed·seeded tensor for each image (the model's layout), holding one of the
        model's inference slots while it runs."""
        checkpoint()
        with model.gate.slot(model.name):
            return self.runner.gradient(model.as_batch(images), seeds.astype(np.float32, copy=False))


_sessions: OrderedDict[tuple[str, str, str, str], BackwardSession] = OrderedDict()
_lock = threading.Lock()


def layer_tensor(model: ImportedLoadedModel, layer: str) -> str:
    """The tensor of the exposed layer ``layer`` in the exposed copy (which names it by the layer);
    UnknownImportedLayer listing the layers."""
    if layer in model.layer_shapes:
        return layer
    names = ", ".join(spec.name for spec in model.manifest.layers)
    raise UnknownImportedLayer(f"model {model.name!r} has no layer {layer!r}; layers: {names}")


def backward_session(model: ImportedLoadedModel, seeded: str, rules: Rules = "gradient") -> BackwardSession:
    """The backward session of ``model`` from the tensor ``seeded`` under ``rules``, made (and timed) on first
    use; NoGradient naming the op and node the builder has no rule for."""
    key = (model.name, model.manifest.source.sha256, seeded, rules)
    with _lock:
        if key in _sessions:
            _sessions.move_to_end(key)
            return _sessions[key]
    session = _made(model, seeded, rules)
    with _lock:
        _sessions[key] = session
        while len(_sessions) > KEPT_SESSIONS:
            _sessions.popitem(last=False)
    return session


def _made(model: ImportedLoadedModel, seeded: str, rules: Rules) -> BackwardSession:
    proto = onnx.load(str(model.folder / model.manifest.exposed.file))
    input_name = model.manifest.input.name
    missing = unsupported_op(proto, seeded, [input_name])
    if missing is not None:
        raise NoGradient(
            f"model {model.name!r} has no backward pass from {seeded!r} to its input: {missing}; deconvolution and "
            "optimized inputs need a rule for every op on that path"
        )
    runner = GradientRunner(gradient_graph(proto, seeded, [input_name], rules=rules), input_name)
    seed_info = next(i for i in runner.session.get_inputs() if i.name == runner.built.seed_input)
    if not all(isinstance(size, int) for size in seed_info.shape[1:]):
        raise NoGradient(f"model {model.name!r}: tensor {seeded!r} has no static shape {seed_info.shape[1:]}")
    image = np.zeros((1, *input_shape(model.manifest.input)), np.float32)
    seed_shape = tuple(seed_info.shape[1:])
    seed = np.zeros((1, *seed_shape), np.float32)
    runner.gradient(image, seed)  # warm-up: allocations and the first-run planning are not the model's cost
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        runner.gradient(image, seed)
        times.append((time.perf_counter() - start) * 1000)
    return BackwardSession(runner, seeded, seed_shape, min(times))
