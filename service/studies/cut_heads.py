"""The forward runs about one layer of an imported model that the forward-only CAMs need (``AnyModel.forward``):
the layer's output and the model's scores (its logits, else its probabilities) from the model's own session, and
its head: the graph from the layer on, cut out of the exposed copy with ``onnx.utils.Extractor`` (the layer's
tensor the head's one input, the scores its output), so Ablation-CAM's ablated outputs run only the ops after the
layer, as pytorch-grad-cam's hook replaces the layer's output.

A layer is a cut when every path from the input to the scores passes through it (a ResNet's block output, not a
tensor inside a block with a skip connection around it); a head that would need the input too is a 422 naming the
layer. Heads are built on first use, once per (model, layer), and kept on the model, their sessions' estimated
bytes counted in its memory (``gradient_bytes``) after a check against the models' budget.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

from service.attribution import Method
from service.attribution.placement import resized
from service.errors import NotApplicableError, UnavailableError
from service.runtime.cancellation import checkpoint
from service.runtime.imported import FLOAT_BYTES, ImportedLoadedModel
from service.studies.explain import Explanation

HEAD_ROWS = 64  # layer outputs per run of a head: bounds a run's tensors (its memory estimate counts this many)


class NotACut(NotApplicableError, ValueError):
    """The graph from the layer on also needs the model's input: the layer is not a cut of the graph."""


class HeadTooLarge(UnavailableError):
    """Building a head's session would overflow the models' memory budget."""


def scores_name(model: ImportedLoadedModel) -> str:
    """The output the CAMs weigh channels by: the logits (as pytorch-grad-cam's ClassifierOutputTarget reads a
    network's output), else the probabilities."""
    return model.manifest.logits or model.manifest.probabilities


def _not_fed(head: onnx.ModelProto, layer: str) -> list[str]:
    """The tensors the head's nodes read that nothing in the head provides (neither the layer, an initializer
    nor a node's output)."""
    graph = head.graph
    given = {layer, "", *(init.name for init in graph.initializer), *(out for n in graph.node for out in n.output)}
    return sorted({name for node in graph.node for name in node.input if name not in given})


def _head_bytes(model: ImportedLoadedModel, head: onnx.ModelProto, layer: str) -> int:
    """A head session's estimate: its graph (the weights after the layer) plus, for HEAD_ROWS layer outputs, the
    layer's and every later exposed layer's float32 tensors."""
    names = list(model.layer_shapes)
    later = names[names.index(layer) :]
    per_row = sum(math.prod(size or 1 for size in model.layer_shapes[name]) for name in later)
    return head.ByteSize() + per_row * FLOAT_BYTES * HEAD_ROWS


def head_of(model: ImportedLoadedModel, layer: str, free_bytes: int) -> ort.InferenceSession:
    """The session of ``model``'s graph from ``layer``'s output to its scores, cut and built on first use within
    ``free_bytes`` of the models' budget."""
    with model.gradients_lock:
        if layer in model.cut_heads:
            return model.cut_heads[layer]
        proto = onnx.load_from_string((model.folder / model.manifest.exposed.file).read_bytes())
        head = onnx.utils.Extractor(proto).extract_model([layer], [scores_name(model)])
        missing = _not_fed(head, layer)
        if missing:
            raise NotACut(
                f"layer {layer!r} of model {model.name!r} is not a cut of its graph: the layers after it also read "
                f"{', '.join(missing[:3])}; choose a layer every path to the output passes through (a block's output)"
            )
        needed = _head_bytes(model, head, layer)
        if needed > free_bytes:
            raise HeadTooLarge(
                f"model {model.name!r}'s graph from layer {layer!r} on needs about {needed:,} bytes and "
                f"{max(free_bytes, 0):,} of CONVLENS_MODELS_MEMORY_BYTES are free: raise the budget or unload a model"
            )
        options = model.session.get_session_options()
        session = ort.InferenceSession(head.SerializeToString(), options, providers=["CPUExecutionProvider"])
        model.cut_heads[layer] = session
        model.gradient_bytes += needed
        return session


class ModelLayerRuns:
    """``LayerRuns`` of an imported model at one layer: its session for the layer and the scores (images
    channels-first, put in the model's layout), its cut head (built when first asked for) for layer outputs, each
    head run of at most HEAD_ROWS outputs under the model's inference slot after a cancellation check."""

    def __init__(self, model: ImportedLoadedModel, layer: str, free_bytes: int) -> None:
        self.model, self.layer, self.free_bytes = model, layer, free_bytes

    def _run(self, images: np.ndarray, output: str) -> np.ndarray:
        layout = self.model.manifest.input.layout
        return self.model.run(images if layout == "nchw" else images.transpose(0, 2, 3, 1), [output])[output]

    def activations(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, self.layer)

    def scores(self, images: np.ndarray) -> np.ndarray:
        return self._run(images, scores_name(self.model))

    def head(self, activations: np.ndarray) -> np.ndarray:
        session = head_of(self.model, self.layer, self.free_bytes)
        parts = []
        for start in range(0, len(activations), HEAD_ROWS):
            checkpoint()
            with self.model.gate.slot(self.model.name):
                feeds = {self.layer: activations[start : start + HEAD_ROWS].astype(np.float32, copy=False)}
                parts.append(session.run([scores_name(self.model)], feeds)[0])
        return np.concatenate(parts)


def explain_from_layer(
    model: ImportedLoadedModel,
    spec: Method,
    batch: np.ndarray,
    target: int | None,
    chosen: dict,
    layer: str,
    free_bytes: int,
) -> Explanation:
    """A forward-only CAM's maps of ``layer`` for ``batch`` (the model's input layout) and ``target`` (default:
    each image's predicted class), the work already checked by the caller."""
    spec_input, probabilities_name = model.manifest.input, model.manifest.probabilities
    found = model.run(batch, [probabilities_name])[probabilities_name]
    targets = found.argmax(axis=1) if target is None else np.full(len(batch), target)
    images = batch if spec_input.layout == "nchw" else np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    raw = spec.any_model.compute(ModelLayerRuns(model, layer, free_bytes), images, targets, layer=layer)
    raw = raw.astype(np.float32)
    pixels = np.stack([resized(m, spec_input.height, spec_input.width) for m in raw]).astype(np.float32)
    return Explanation(
        spec.name,
        chosen,
        targets.astype(np.intp),
        found[np.arange(len(found)), targets].astype(np.float32),
        found.argmax(axis=1),
        raw,
        pixels,
        spec.signed,
        spec.answers_pixels or raw.shape[1:] != pixels.shape[1:],
    )
