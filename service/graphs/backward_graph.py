"""The classifier's forward and backward pass as one ONNX graph, built from its weights and run by onnxruntime.

The graph takes images (N,28,28) and a seed (N,10) over the logits (one-hot of each image's target, so the
target's pre-softmax logit is what is differentiated; an all-zero row stands for the image's predicted class,
the first maximum of its softmax probabilities, chosen inside the graph) and returns the forward activations, the
logits, the class probabilities, the seed used and the gradients w.r.t. the input, conv1, conv2 and pool, in one
onnxruntime run. A method that needs one backward pass per image therefore needs no forward run to find its
default target.

The graph is the classifier's forward graph built from its weights (classifier_graph.py: NCHW, the model file's
own Conv ops on its OIHW kernels) through the gradient builder (gradient_builder.py, the one backward path for
every model): the activation derivatives written in terms of their outputs (relu, tanh, sigmoid, elu), max
pooling's gradient routed through onnxruntime's own switches (MaxPool's Indices, then MaxUnpool) with conv2's
activation derivative taken at the pooled resolution, the transposed convolution back to conv1 a full Conv with
the kernel flipped, the one back to the one-channel input a ConvTranspose. The guided variant (Springenberg et al.
2015) passes only positive gradients, and only where the ReLU's output is positive. ``backward.py`` hands the
spatial outputs on as NHWC views.

Sessions are made on first use, per weights object (one per model file, as service.studies.explain caches the weights)
and model (one per set of gradients asked: onnxruntime computes every node of a graph, so a Grad-CAM's run, which
needs conv2's gradient alone, has a model whose backward pass stops there; the sanity checks' randomised copies,
kept loaded, have one model for every set instead), with one intra-op thread, CHUNK images
per run, each run under the caller's RunPolicy: the inference slot it holds, and into how many parts a large run is
cut (``service.runtime.split_runs``: from SPLIT_FROM images on, integrated-gradients steps, SmoothGrad samples,
occlusion squares and /batch chunks run as parts at once on the same session, one thread each).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import onnx
import onnxruntime as ort

from service.graphs.classifier_graph import forward_model
from service.graphs.classifier_weights import CLASSES, PREDICTED, ClassifierWeights
from service.graphs.gradient_builder import gradient_graph
from service.runtime.cancellation import checkpoint
from service.runtime.split_runs import parts_for, run_split

CHUNK = 64  # images per onnxruntime run: as fast per image as 256 (faster on a busy machine), a quarter of the arena
SPATIAL = ("conv1", "conv2", "pool")
GRADIENTS_OF = ("input", *SPATIAL)  # what the backward pass can differentiate with respect to, input first
OUTPUTS = ("logits", "input_grad", "conv1_grad", "conv2_grad", "pool_grad", "conv1", "conv2", "pool", "dense1")
LOGITS = "logits"  # the forward graph's logits (N,10), the seeded tensor; as an output of OUTPUTS, the target's
SEEDS, SEEDS_USED = f"{LOGITS}_seed", f"{LOGITS}_seed_used"  # the builder's names of the seed and the seed used


@dataclass
class Decisions:
    """What the backward runs of a context found, in run order: each image's class probabilities (N,10) and the
    class whose logit was differentiated (N,): for a PREDICTED target, the class the graph chose."""

    probabilities: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class RunPolicy:
    """How runs are made: ``slot()`` held around each one (service.studies.explain binds its model's inference gate),
    the
    parts a run of SPLIT_FROM images or more is cut into, each on one thread (0: one per core), and where backward
    runs report their Decisions (None: nowhere)."""

    slot: Callable[[], AbstractContextManager] = nullcontext
    batch_threads: int = 0
    decisions: Decisions | None = None


_policy: ContextVar[RunPolicy | None] = ContextVar("convlens_backward_policy", default=None)
DEFAULT_POLICY = RunPolicy()


def report(probabilities: np.ndarray, targets: np.ndarray) -> None:
    """Add what a run found (its images' probabilities (N,10) and targets (N,)) to the bound policy's Decisions."""
    decisions = (_policy.get() or DEFAULT_POLICY).decisions
    if decisions is not None:
        decisions.probabilities.append(probabilities)
        decisions.targets.append(targets)


@contextmanager
def run_policy(policy: RunPolicy) -> Iterator[None]:
    """Make every backward-graph run in this context under ``policy``."""
    reset = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(reset)


def backward_model(
    weights: ClassifierWeights, guided: bool = False, wrt: tuple[str, ...] = GRADIENTS_OF
) -> onnx.ModelProto:
    """The ONNX model of the forward pass and of the seeded logits' backward pass for these weights: the
    classifier's forward graph (classifier_graph.py) through the gradient builder, from the logits to ``wrt`` (of
    GRADIENTS_OF; the backward pass stops at the deepest of them), all-zero seed rows standing for the predicted
    class."""
    return gradient_graph(
        forward_model(weights),
        LOGITS,
        list(wrt),
        [*SPATIAL, "dense1", LOGITS, "probabilities"],
        rules="guided" if guided else "gradient",
        predicted_from="probabilities",
    ).model


class ClassifierGraphs:
    """onnxruntime sessions (one intra-op thread) of the ONNX models built from one classifier's weights, each
    made on first use."""

    def __init__(self, weights: ClassifierWeights, specialised: bool = True) -> None:
        """``specialised``: a backward model per set of gradients asked (faster runs, up to four models and their
        sessions); else the one model back to the input for every set (the memory of one)."""
        self._weights = weakref.ref(weights)  # not a strong one: the cache below is keyed by the weights
        self.specialised = specialised
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._lock = threading.Lock()

    def _session(self, name: str, build: Callable[[ClassifierWeights], onnx.ModelProto]) -> ort.InferenceSession:
        with self._lock:
            if name not in self._sessions:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                self._sessions[name] = ort.InferenceSession(
                    build(self._weights()).SerializeToString(), options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[name]

    def run(
        self,
        name: str,
        build: Callable[[ClassifierWeights], onnx.ModelProto],
        feeds: dict[str, np.ndarray],
        outputs: list[str],
    ) -> list[np.ndarray]:
        """One run of the model ``name`` (built by ``build`` on first use) over ``feeds``, under the bound
        RunPolicy: its slot held, and with SPLIT_FROM images or more split into ``batch_threads`` parts (0: one per
        core) that run at once, each on one thread of the same session."""
        policy = _policy.get() or DEFAULT_POLICY
        parts = parts_for(len(next(iter(feeds.values()))), policy.batch_threads)
        session = self._session(name, build)
        checkpoint()
        with policy.slot():
            return run_split(session, outputs, feeds, parts)

    def backward(
        self, images: np.ndarray, targets: np.ndarray, outputs: list[str], guided: bool = False
    ) -> dict[str, np.ndarray]:
        """``outputs`` (of OUTPUTS) of the backward model for images (N,28,28) (as float32) and their target
        classes (N,; PREDICTED: the image's predicted class), CHUNK images per run; the runs' Decisions go to the
        policy's."""
        images = np.asarray(images, dtype=np.float32)
        # onnxruntime runs every node of a session's graph, asked for or not: each set of gradients asked has a model
        # of its own, whose backward pass ends where the shallowest of them is (conv2's alone: 0.42 ms against 0.70
        # ms for the one to the input, one image, one thread)
        asked = tuple(name for name in GRADIENTS_OF if f"{name}_grad" in outputs) or SPATIAL[-1:]
        wrt = asked if self.specialised else GRADIENTS_OF
        model = f"{'guided' if guided else 'backward'} to {', '.join(wrt)}"
        build = partial(backward_model, guided=guided, wrt=wrt)
        seeds = np.eye(CLASSES + 1, CLASSES, dtype=np.float32)[np.where(targets == PREDICTED, CLASSES, targets)]
        reporting = (_policy.get() or DEFAULT_POLICY).decisions is not None
        # the decisions and the target logits (read off the logits at the seed used) need the seeds used
        needs_seeds = reporting or LOGITS in outputs
        extra = [*(["probabilities"] if reporting else []), *([SEEDS_USED] if needs_seeds else [])]
        asked = list(dict.fromkeys([*outputs, *extra]))
        parts = []
        for start in range(0, len(images), CHUNK):
            feeds = {"input": images[start : start + CHUNK], SEEDS: seeds[start : start + CHUNK]}
            part = dict(zip(asked, self.run(model, build, feeds, asked), strict=True))
            chosen = part[SEEDS_USED].argmax(axis=1) if needs_seeds else None
            if reporting:
                report(part["probabilities"], chosen)
            if LOGITS in outputs:
                part[LOGITS] = part[LOGITS][np.arange(len(chosen)), chosen]
            parts.append([part[name] for name in outputs])
        if len(parts) == 1:
            return dict(zip(outputs, parts[0], strict=True))
        return {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(outputs)}


_graphs: weakref.WeakKeyDictionary[ClassifierWeights, ClassifierGraphs] = weakref.WeakKeyDictionary()
_graphs_lock = threading.Lock()


def graphs_of(weights: ClassifierWeights, specialised: bool = True) -> ClassifierGraphs:
    """The sessions of these weights' graphs (cached per weights object: one per model file in the service);
    ``specialised`` as ``ClassifierGraphs`` takes it, for the first call (the one that makes them)."""
    with _graphs_lock:
        if weights not in _graphs:
            _graphs[weights] = ClassifierGraphs(weights, specialised)
        return _graphs[weights]
