"""The backward sessions of an imported model, in one budgeted cache kept on the loaded model: the gradient
builder's graph (``service.graphs.gradient_builder``) from one seeded tensor (the logits, the probabilities, a layer)
back to the input (or a layer), under one rule variant, in an onnxruntime session. Attribution maps
(``service.studies.any_model_explain``), deconvolutions (``imported_deconvolution``) and optimized inputs
(``optimized_any_model``) all take theirs from here.

A session is built on first use. Building one checks the models' memory budget (``CONVLENS_MODELS_MEMORY_BYTES``):
its estimate (the graph, i.e. the weights again, plus IMAGES_PER_RUN images' tensors and their gradients) counts in
``model.gradient_bytes`` and so in the model's ``memory_bytes``; when it does not fit, the model's own least recently
used sessions are given back first, and when even all of them would not make room the build is refused
(GradientsTooLarge: a 503 naming the setting). A model keeps at most ``GradientLimits.kept_sessions`` sessions
(``CONVLENS_MAX_BACKWARD_GRAPHS``; deconvolutions of many layers would otherwise add one each), the least recently
used evicted with its bytes. A request already running on an evicted session finishes on it; the session's memory
goes when that request ends. Unloading the model frees them all.

Each build measures one image's forward-and-backward run (the best of TIMED_RUNS after a warm-up):
``BackwardSession.ms_per_image``, and the model's ``backward_ms`` (its costliest session's, the unit attribution work
is counted in).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from service.attribution.any_model import GradientRunner
from service.errors import NotApplicableError, NotFoundError, UnavailableError
from service.graphs.gradient_builder import Rules, UnsupportedOp, gradient_graph, unsupported_op
from service.images.preprocessing import input_shape
from service.runtime.cancellation import checkpoint
from service.runtime.imported import FLOAT_BYTES, ImportedLoadedModel

IMAGES_PER_RUN = 16  # images per backward run: bounds a run's tensors (its memory estimate counts this many)
KEPT_SESSIONS = 8
TIMED_RUNS = 3  # runs of one image timed after a warm-up one; the fastest is the measured cost
FORWARD_ROUTES = "classify, activations, active-filters, inspect and occlusion"


class NoGradients(NotApplicableError, ValueError):
    """The model has a node on the differentiated path whose op has no backward rule."""


class GradientsTooLarge(UnavailableError):
    """Building the model's backward graph would overflow the models' memory budget."""


class UnknownImportedLayer(NotFoundError, LookupError):
    """The imported model has no exposed layer by that name."""


@dataclass(frozen=True)
class GradientLimits:
    """The most backward work one request may ask of an imported model, in units of the shipped classifier's
    forward pass (``max_work``), the bytes the models' budget has left for new backward sessions (``free_bytes``),
    and how many backward sessions one model keeps (``kept_sessions``)."""

    max_work: int = 200_000
    free_bytes: int = 1 << 62
    kept_sessions: int = KEPT_SESSIONS


@dataclass(frozen=True)
class SessionKey:
    """What makes one backward session: the seeded tensor, the tensor differentiated, the rule variant, the forward
    tensors it also returns and the tensor whose argmax seeds all-zero seed rows (``gradient_graph``'s)."""

    seeded: str
    wrt: str
    rules: Rules
    outputs: tuple[str, ...] = ()
    predicted_from: str | None = None


class GatedRunner:
    """A runner's session for one request: each run of at most ``chunk`` images under the model's inference slot,
    a cancellation check before each, and the ``kept`` outputs (e.g. the probabilities and the seeds used) of the
    last call concatenated; ``run`` and ``gradient`` as ``GradientRunner``'s."""

    def __init__(self, runner: GradientRunner, model: ImportedLoadedModel, kept: list[str]) -> None:
        self.built, self.input_name, self.chunk = runner.built, runner.input_name, runner.chunk
        self._session, self._model, self._kept_names = runner.session, model, kept
        self.kept: list[np.ndarray] = []

    def run(self, images: np.ndarray, seeds: np.ndarray, names: list[str]) -> list[np.ndarray]:
        parts = []
        for i in range(0, len(images), self.chunk):
            checkpoint()
            feeds = {self.input_name: images[i : i + self.chunk], self.built.seed_input: seeds[i : i + self.chunk]}
            with self._model.gate.slot(self._model.name):
                parts.append(self._session.run([*names, *self._kept_names], feeds))
        columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
        self.kept = columns[len(names) :]
        return columns[: len(names)]

    def gradient(self, images: np.ndarray, seeds: np.ndarray, wrt: str | None = None) -> np.ndarray:
        return self.run(images, seeds, [self.built.gradients[wrt or self.input_name]])[0]


@dataclass(frozen=True)
class BackwardSession:
    """One backward session of an imported model: its runner, the seed's shape per image, the measured
    milliseconds of one image's forward-and-backward run and the bytes it counts in the memory budget."""

    runner: GradientRunner
    seed_shape: tuple[int, ...]
    ms_per_image: float
    bytes: int

    def gradient(self, model: ImportedLoadedModel, images: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """The gradient of Σ seed·seeded tensor for each image (the model's layout) with respect to the input,
        IMAGES_PER_RUN images per run, each run under one of the model's inference slots."""
        gated = GatedRunner(self.runner, model, [])
        return gated.gradient(model.as_batch(images), seeds.astype(np.float32, copy=False))


def seeded_tensor(model: ImportedLoadedModel) -> str:
    """The tensor attribution maps are gradients of: the logits (as Captum attributes a network's output), else
    the probabilities."""
    return model.manifest.logits or model.manifest.probabilities


def missing_rule(model: ImportedLoadedModel) -> UnsupportedOp | None:
    """The first node between the input and the seeded tensor without a backward rule (None: all have one),
    found once per loaded model."""
    with model.gradients_lock:
        if not model.gradient_coverage:
            proto = onnx.load_from_string((model.folder / model.manifest.exposed.file).read_bytes())
            model.gradient_coverage.append(unsupported_op(proto, seeded_tensor(model), [model.manifest.input.name]))
        return model.gradient_coverage[0]


def no_gradients_message(model: ImportedLoadedModel, missing: UnsupportedOp) -> str:
    """The refusal of a gradient method on a model outside the rules' op set."""
    return (
        f"model {model.name!r} has no gradients: op {missing.op_type!r} at node {missing.node!r} has no backward "
        f"rule; it serves the forward-only routes ({FORWARD_ROUTES})"
    )


def layer_tensor(model: ImportedLoadedModel, layer: str) -> str:
    """The tensor of the exposed layer ``layer`` in the exposed copy (which names it by the layer);
    UnknownImportedLayer listing the layers."""
    if layer in model.layer_shapes:
        return layer
    names = ", ".join(spec.name for spec in model.manifest.layers)
    raise UnknownImportedLayer(f"model {model.name!r} has no layer {layer!r}; layers: {names}")


def session_bytes(model: ImportedLoadedModel, graph_bytes: int) -> int:
    """A backward session's estimate: its graph (the weights again) plus, for IMAGES_PER_RUN images, every exposed
    layer's and the input's tensors twice (the forward value kept for the backward pass, and its gradient)."""
    spec = model.manifest.input
    per_image = spec.channels * spec.height * spec.width + sum(
        math.prod(size or 1 for size in shape) for shape in model.layer_shapes.values()
    )
    return graph_bytes + 2 * per_image * FLOAT_BYTES * IMAGES_PER_RUN


def backward_session(
    model: ImportedLoadedModel, key: SessionKey, limits: GradientLimits = GradientLimits()
) -> BackwardSession:
    """``model``'s backward session ``key``, built (and timed) on first use within the memory budget and the
    model's ``limits.kept_sessions``; NoGradients naming the op and node the builder has no rule for,
    GradientsTooLarge when it cannot fit."""
    with model.gradients_lock:
        sessions = model.backward_sessions
        if key in sessions:
            sessions.move_to_end(key)
            return sessions[key]
        proto = onnx.load_from_string((model.folder / model.manifest.exposed.file).read_bytes())
        try:
            built = gradient_graph(
                proto, key.seeded, [key.wrt], key.outputs, rules=key.rules, predicted_from=key.predicted_from
            )
        except UnsupportedOp as missing:
            raise NoGradients(
                f"model {model.name!r} has no backward pass from {key.seeded!r} to {key.wrt!r}: {missing}; it "
                f"serves the forward-only routes ({FORWARD_ROUTES})"
            ) from missing
        needed = session_bytes(model, built.model.ByteSize())
        _make_room(model, sessions, needed, limits)
        runner = GradientRunner(built, model.manifest.input.name, model.session.get_session_options(), IMAGES_PER_RUN)
        seed_info = next(i for i in runner.session.get_inputs() if i.name == built.seed_input)
        if not all(isinstance(size, int) for size in seed_info.shape[1:]):
            raise NoGradients(f"model {model.name!r}: tensor {key.seeded!r} has no static shape {seed_info.shape[1:]}")
        seed_shape = tuple(seed_info.shape[1:])
        session = BackwardSession(runner, seed_shape, _measured_ms(model, runner, seed_shape), needed)
        model.backward_ms = max(session.ms_per_image, model.backward_ms or 0.0)
        sessions[key] = session
        model.gradient_bytes += needed
        while len(sessions) > max(limits.kept_sessions, 1):
            _evict_oldest(model, sessions)
        return session


def _make_room(
    model: ImportedLoadedModel, sessions: OrderedDict[SessionKey, BackwardSession], needed: int, limits: GradientLimits
) -> None:
    """Evict the model's least recently used sessions until ``needed`` bytes fit in the budget's free bytes;
    GradientsTooLarge (nothing evicted) when even all of them would not make room."""
    free = limits.free_bytes
    if needed > free + sum(session.bytes for session in sessions.values()):
        raise GradientsTooLarge(
            f"model {model.name!r}'s backward graph needs about {needed:,} bytes and {max(free, 0):,} of "
            "CONVLENS_MODELS_MEMORY_BYTES are free: raise the budget or unload a model"
        )
    while needed > free:
        free += _evict_oldest(model, sessions)


def _evict_oldest(model: ImportedLoadedModel, sessions: OrderedDict[SessionKey, BackwardSession]) -> int:
    """Drop the least recently used session and give its bytes back; the bytes."""
    _, evicted = sessions.popitem(last=False)
    model.gradient_bytes -= evicted.bytes
    return evicted.bytes


def _measured_ms(model: ImportedLoadedModel, runner: GradientRunner, seed_shape: tuple[int, ...]) -> float:
    """One image's forward and backward run (to every tensor the runner differentiates) in milliseconds: the best
    of TIMED_RUNS after a warm-up run (allocations and the first run's planning are not the model's cost)."""
    image = np.zeros((1, *input_shape(model.manifest.input)), np.float32)
    seeds = np.zeros((1, *seed_shape), np.float32)
    names = list(runner.built.gradients.values())
    runner.run(image, seeds, names)
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        runner.run(image, seeds, names)
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


class CopyRuns:
    """What runs over a copy of a model's exposed graph (the sanity checks' randomised copies): backward runners
    (``runner_for``, one per session key) and the model itself with a forward session over the copy
    (``forward_model``), each built on first use and never cached beyond the ``model_copy`` block."""

    def __init__(self, model: ImportedLoadedModel, graph: onnx.ModelProto, limits: GradientLimits) -> None:
        self.model, self.graph, self.limits = model, graph, limits
        self.counted = 0
        self.runners: dict[SessionKey, GradientRunner] = {}
        self.forward: ImportedLoadedModel | None = None

    def count(self, size: int) -> None:
        """Count ``size`` more bytes in the model's ``gradient_bytes``; GradientsTooLarge when the copy's bytes
        would be over the budget's free bytes."""
        if self.counted + size > self.limits.free_bytes:
            raise GradientsTooLarge(
                f"model {self.model.name!r}'s randomised copy and its sessions need about {self.counted + size:,} "
                f"bytes and {max(self.limits.free_bytes, 0):,} of CONVLENS_MODELS_MEMORY_BYTES are free: raise the "
                "budget, unload a model or ask without sanity"
            )
        with self.model.gradients_lock:
            self.model.gradient_bytes += size
        self.counted += size

    def runner_for(self, key: SessionKey) -> GradientRunner:
        """The backward runner ``key`` over the copy."""
        if key not in self.runners:
            checkpoint()
            built = gradient_graph(
                self.graph, key.seeded, [key.wrt], key.outputs, rules=key.rules, predicted_from=key.predicted_from
            )
            self.count(session_bytes(self.model, built.model.ByteSize()))
            options = self.model.session.get_session_options()
            self.runners[key] = GradientRunner(built, self.model.manifest.input.name, options, IMAGES_PER_RUN)
        return self.runners[key]

    def forward_model(self) -> ImportedLoadedModel:
        """The model with its forward session over the copy (its weights counted once more)."""
        if self.forward is None:
            checkpoint()
            self.count(self.graph.ByteSize())
            session = ort.InferenceSession(
                self.graph.SerializeToString(),
                self.model.session.get_session_options(),
                providers=["CPUExecutionProvider"],
            )
            self.forward = dataclasses.replace(
                self.model,
                session=session,
                backward_sessions=OrderedDict(),
                cut_heads={},
                gradient_bytes=0,
                gradients_lock=threading.Lock(),
            )
        return self.forward


@contextmanager
def model_copy(
    model: ImportedLoadedModel, graph: onnx.ModelProto, limits: GradientLimits = GradientLimits()
) -> Iterator[CopyRuns]:
    """The runs over ``graph``, a copy of ``model``'s exposed graph, for the block: the copy's bytes and those of
    every session built over it count in the model's ``gradient_bytes`` (so in ``CONVLENS_MODELS_MEMORY_BYTES``)
    until the block ends and they are freed; a copy that does not fit in ``limits.free_bytes`` is refused
    (GradientsTooLarge) rather than evicting the model's kept sessions."""
    runs = CopyRuns(model, graph, limits)
    try:
        runs.count(graph.ByteSize())
        yield runs
    finally:
        runs.runners.clear()
        runs.forward = None
        with model.gradients_lock:
            model.gradient_bytes -= runs.counted
