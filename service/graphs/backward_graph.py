"""The classifier's forward and backward pass as one ONNX graph, built from its weights and run by onnxruntime.

The graph takes images (N,28,28) and a seed (N,10) over the logits (one-hot of each image's target, so the
target's pre-softmax logit is what is differentiated; an all-zero row stands for the image's predicted class,
the first maximum of its softmax probabilities, chosen inside the graph) and returns the forward activations, the
class probabilities, the seed used, the seeded logits and the gradients w.r.t. the input, conv1, conv2 and pool:
the numbers of the hand-written numpy chain rule it replaced (within float32 round-off), in one onnxruntime run.
A method that needs one backward pass per image therefore needs no forward run to find its default target.

Layout: NCHW inside, as tf2onnx lays out the classifier (weights.py), so the convolutions are the model file's own
Conv ops on its own OIHW kernels; the spatial outputs stay NCHW and ``backward.py`` hands them on as NHWC views.
The dense layer's rows are in Keras' NHWC flatten order, so pool is transposed before flattening, as in the file.
Chain rule, layer by layer: the output layer's kernel times the seed; the activation's derivative written in
terms of its output (relu, tanh, sigmoid, elu); Gemm by the transposed dense kernel; max pooling's gradient routed
through the first maximum of each window (MaxPool's Indices output, then MaxUnpool: onnxruntime's switches, the
ones its forward pass used), conv2's activation derivative taken at those switches, where conv2 equals pool; the
transposed convolution back to conv1 as a full Conv with the kernel flipped (faster in onnxruntime than
ConvTranspose), the one back to the one-channel input a ConvTranspose (there a Conv's blocked layout has no
channels to block: 0.9x the graph's time for 50 images). The guided variant (Springenberg et al. 2015) passes
only positive gradients, and only where the ReLU's output is positive. The builders (conv_layers, dense_layers)
also serve occlusion's two forward pieces.

Sessions are made on first use, per weights object (one per model file, as service.studies.explain caches the weights)
and model, with one intra-op thread, CHUNK images per run, each run under the caller's RunPolicy: the inference
slot it holds, and into how many parts a large run is cut (``service.runtime.split_runs``: from SPLIT_FROM images on,
integrated-gradients steps, SmoothGrad samples, occlusion squares and /batch chunks run as parts at once on the
same session, one thread each).
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
from onnx import TensorProto, helper, numpy_helper

from service.graphs.classifier_weights import CLASSES, IMAGE_SIZE, PREDICTED, ClassifierWeights
from service.runtime.cancellation import checkpoint
from service.runtime.split_runs import parts_for, run_split

OPSET = 17
CHUNK = 64  # images per onnxruntime run: as fast per image as 256 (faster on a busy machine), a quarter of the arena
SPATIAL = ("conv1", "conv2", "pool")
OUTPUTS = ("logits", "input_grad", "conv1_grad", "conv2_grad", "pool_grad", "conv1", "conv2", "pool", "dense1")
DECISIONS = ("probabilities", "target_seeds")  # each image's class probabilities and the one-hot seed it used


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


def _through_activation(b: GraphBuilder, activation: str, grad: str, out: str, guided: bool) -> str:
    """Gradient w.r.t. an activation's input from the one w.r.t. its output ``out``; guided: Springenberg's rule.

    ReLU's derivative (out > 0) is Sign(out), since out >= 0; ELU's (1 where out > 0, out + 1 elsewhere) is
    Min(out, 0) + 1. Elementwise arithmetic, cheaper in onnxruntime than Where over a broadcast zero.
    """
    one = b.constant("one", np.float32(1)) if activation in ("tanh", "sigmoid", "elu") else ""
    if guided:
        return b.op("Mul", b.op("Relu", grad), b.op("Sign", out))
    if activation == "relu":
        return b.op("Mul", grad, b.op("Sign", out))
    if activation == "tanh":
        return b.op("Mul", grad, b.op("Sub", one, b.op("Mul", out, out)))
    if activation == "sigmoid":
        return b.op("Mul", grad, b.op("Mul", out, b.op("Sub", one, out)))
    if activation == "elu":
        return b.op("Mul", grad, b.op("Add", b.op("Min", out, b.constant("zero", np.float32(0))), one))
    raise ValueError(f"unknown activation {activation!r}")


def _conv_transpose(b: GraphBuilder, grad: str, kernel: np.ndarray, name: str = "") -> str:
    """The adjoint of a stride-1 valid Conv with OIHW ``kernel``: a full Conv with the kernel flipped and its
    two channel axes swapped (onnxruntime runs Conv in its blocked layout, faster than ConvTranspose)."""
    kh, kw = kernel.shape[2:]
    flipped = b.constant(f"{name}_kernel", kernel[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return b.op("Conv", grad, flipped, name=name, pads=[kh - 1, kw - 1, kh - 1, kw - 1])


def conv_layers(b: GraphBuilder, weights: ClassifierWeights, x: str, indices: bool = False) -> list[str]:
    """conv1, conv2 and pool (NCHW) of the NCHW images ``x``, and with ``indices`` the pooling's switches."""
    act = weights.activation
    w1, w2 = (
        b.constant(name, oihw(kernel)) for name, kernel in (("w1", weights.conv1_kernel), ("w2", weights.conv2_kernel))
    )
    conv1 = _activation(b, act, b.op("Conv", x, w1, b.constant("b1", weights.conv1_bias)), name="conv1")
    conv2 = _activation(b, act, b.op("Conv", conv1, w2, b.constant("b2", weights.conv2_bias)), name="conv2")
    pool = b.op("MaxPool", conv2, outputs=2 if indices else 1, name="pool", kernel_shape=[2, 2], strides=[2, 2])
    return [conv1, conv2, *pool] if indices else [conv1, conv2, pool]


def dense_layers(b: GraphBuilder, weights: ClassifierWeights, pool: str) -> tuple[str, str]:
    """dense1 and the logits (N,10) of the NCHW ``pool``, flattened in Keras' NHWC order as the file does."""
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
    )
    return dense1, logits


def oihw(kernel: np.ndarray) -> np.ndarray:
    """A Keras HWIO kernel in ONNX's OIHW layout (the model file's own)."""
    return kernel.transpose(3, 2, 0, 1)


def backward_model(weights: ClassifierWeights, guided: bool = False) -> onnx.ModelProto:
    """The ONNX model of the forward pass and of the seeded logits' backward pass for these weights."""
    act = weights.activation
    b = GraphBuilder()
    side = (IMAGE_SIZE - weights.conv1_kernel.shape[0] + 1 - weights.conv2_kernel.shape[0] + 1) // 2
    channels = weights.conv2_kernel.shape[3]

    x = b.op("Reshape", "images", b.constant("nchw_input", np.array([-1, 1, IMAGE_SIZE, IMAGE_SIZE], np.int64)))
    conv1, conv2, pool, indices = conv_layers(b, weights, x, indices=True)
    dense1, all_logits = dense_layers(b, weights, pool)
    # a row of zeros in "seeds" asks for the predicted class: the one-hot of the probabilities' first maximum
    probabilities = b.op("Softmax", all_logits, name="probabilities", axis=-1)
    predicted = b.op(
        "OneHot",
        b.op("ArgMax", probabilities, axis=1, keepdims=0),
        b.constant("classes_depth", np.array(CLASSES, np.int64)),
        b.constant("off_on", np.array([0, 1], np.float32)),
    )
    unset = b.op(
        "Equal", b.op("ReduceMax", b.op("Abs", "seeds"), axes=[1], keepdims=1), b.constant("zero", np.float32(0))
    )
    seeds = b.op("Where", unset, predicted, "seeds", name="target_seeds")
    b.op(
        "ReduceSum",
        b.op("Mul", all_logits, seeds),
        b.constant("classes", np.array([1], np.int64)),
        name="logits",
        keepdims=0,
    )

    g_dense1 = b.op("Gemm", seeds, "wout", transB=1)
    g_flat = b.op("Gemm", _through_activation(b, act, g_dense1, dense1, guided), "wd1", transB=1)
    g_pool = b.op(
        "Transpose",
        b.op("Reshape", g_flat, b.constant("nhwc_pool", np.array([-1, side, side, channels], np.int64))),
        name="pool_grad",
        perm=[0, 3, 1, 2],
    )
    shape = b.op("Shape", conv2)
    unpool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    b.op("MaxUnpool", g_pool, indices, shape, name="conv2_grad", **unpool)
    # conv2's activation derivative is needed only at the switches, where conv2 equals pool: taken at pool's
    # resolution (a quarter of the units), then unpooled
    g_conv2_pre = b.op("MaxUnpool", _through_activation(b, act, g_pool, pool, guided), indices, shape, **unpool)
    g_conv1 = _conv_transpose(b, g_conv2_pre, oihw(weights.conv2_kernel), "conv1_grad")
    g_input = b.op("ConvTranspose", _through_activation(b, act, g_conv1, conv1, guided), "w1", name="input_conv")
    b.op(
        "Reshape",
        g_input,
        b.constant("input_shape", np.array([-1, IMAGE_SIZE, IMAGE_SIZE], np.int64)),
        name="input_grad",
    )
    c1, c2 = weights.conv1_kernel.shape[3], channels
    shapes = {
        "logits": [],
        "input_grad": [IMAGE_SIZE, IMAGE_SIZE],
        "conv1_grad": [c1, 2 * side + 2, 2 * side + 2],
        "conv2_grad": [c2, 2 * side, 2 * side],
        "pool_grad": [c2, side, side],
        "dense1": [weights.dense1_kernel.shape[1]],
        "probabilities": [CLASSES],
        "target_seeds": [CLASSES],
    }
    shapes.update(conv1=shapes["conv1_grad"], conv2=shapes["conv2_grad"], pool=shapes["pool_grad"])
    return b.model(
        "convlens_backward" + ("_guided" if guided else ""),
        {"images": ["N", IMAGE_SIZE, IMAGE_SIZE], "seeds": ["N", CLASSES]},
        {name: ["N", *shapes[name]] for name in (*OUTPUTS, *DECISIONS)},
    )


class ClassifierGraphs:
    """onnxruntime sessions (one intra-op thread) of the ONNX models built from one classifier's weights, each
    made on first use."""

    def __init__(self, weights: ClassifierWeights) -> None:
        self._weights = weakref.ref(weights)  # not a strong one: the cache below is keyed by the weights
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
        model, build = ("guided", partial(backward_model, guided=True)) if guided else ("backward", backward_model)
        seeds = np.eye(CLASSES + 1, CLASSES, dtype=np.float32)[np.where(targets == PREDICTED, CLASSES, targets)]
        reporting = (_policy.get() or DEFAULT_POLICY).decisions is not None
        asked = [*outputs, *DECISIONS] if reporting else outputs
        parts = []
        for start in range(0, len(images), CHUNK):
            feeds = {"images": images[start : start + CHUNK], "seeds": seeds[start : start + CHUNK]}
            part = self.run(model, build, feeds, asked)
            if reporting:
                probabilities, target_seeds = part[len(outputs) :]
                report(probabilities, target_seeds.argmax(axis=1))
            parts.append(part[: len(outputs)])
        if len(parts) == 1:
            return dict(zip(outputs, parts[0], strict=True))
        return {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(outputs)}


_graphs: weakref.WeakKeyDictionary[ClassifierWeights, ClassifierGraphs] = weakref.WeakKeyDictionary()
_graphs_lock = threading.Lock()


def graphs_of(weights: ClassifierWeights) -> ClassifierGraphs:
    """The sessions of these weights' graphs (cached per weights object: one per model file in the service)."""
    with _graphs_lock:
        if weights not in _graphs:
            _graphs[weights] = ClassifierGraphs(weights)
        return _graphs[weights]
