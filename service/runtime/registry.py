"""The shipped models: manifest, SHA-256 verification, onnxruntime sessions and the conv kernels for deconvolution."""

from __future__ import annotations

import ctypes
import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from service.contract import (
    INPUT_NAME,
    MANIFEST_FILE,
    VARIANT_MODEL,
    VARIANTS_DIR,
    ContractError,
    Manifest,
    ModelEntry,
    read_document,
)
from service.errors import UnavailableError
from service.runtime.cancellation import checkpoint
from service.runtime.inference_gate import InferenceGate
from service.runtime.split_runs import parts_for, run_split

log = logging.getLogger("convlens.registry")

# Images per inference slot: a batch takes a slot (and checks for cancellation) once per CHUNK images, so that other
# requests get slots in between; 256 images take about 16 ms.
CHUNK = 256
# Images per onnxruntime run: the batch threads take runs of ROWS_PER_RUN images from a shared queue
# (``service.runtime.split_runs``), so conv2's activations (0.9 MB for 6 images) stay in a core's cache and
# onnxruntime's arena
# stays as small as one such run. 1,000 images in-process, the configurations interleaved: 60.9 ms in runs of 6,
# 60.5 of 4, 63.0 of 8 (64.2 in chunks of 128) and about 80 of 16, against bare onnxruntime on two intra-op threads
# at 60.7 in runs of 16 and 62.2 of 8; before, chunks of 32 cut in two parts of 16 took 71-72 ms.
ROWS_PER_RUN = 6
# At most this many images run on the caller's thread (``LoadedModel.run_now``): one image takes about 0.15 ms.
INLINE_IMAGES = 1
# The last run of a batch of at least SHRINK_FROM images gives the session's arena back (it would otherwise keep what
# the largest run needed), and the C heap then returns what was freed to the system: RSS stays near the
# single-image level.
SHRINK_FROM = 64
SHRINK = ort.RunOptions()
SHRINK.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
_models_used: ContextVar[list[str] | None] = ContextVar("convlens_models_used", default=None)


@contextmanager
def models_used(sink: list[str]) -> Iterator[list[str]]:
    """Collect into ``sink`` the SHA-256 prefix of every model that runs in this context (``X-Model-Version``)."""
    reset = _models_used.set(sink)
    try:
        yield sink
    finally:
        _models_used.reset(reset)


def note_use(model: LoadedModel) -> None:
    """Record that ``model`` answered the work of this context."""
    sink = _models_used.get()
    if sink is not None:
        sink.append(model.entry.sha256[:12])


PASS_THROUGH = {"Relu", "Transpose", "Identity", "Sigmoid", "Tanh", "Elu"}


class ModelLoadError(UnavailableError, RuntimeError):
    """A model file is missing, tampered with or unreadable; the service must not start."""


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand the C heap's free memory back to the system (glibc's ``malloc_trim``; nothing elsewhere)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass
class LoadedModel:
    """One verified model: its manifest entry, an inference session and its conv kernels (HWIO)."""

    name: str
    entry: ModelEntry
    session: ort.InferenceSession
    gate: InferenceGate
    kernels: dict[str, np.ndarray] = field(default_factory=dict)
    onnx_bytes: bytes = b""
    batch_threads: int = 0
    _output_names: frozenset[str] | None = field(default=None, repr=False)
    _layer_shapes: Mapping[str, list[int]] | None = field(default=None, repr=False)

    @property
    def layer_shapes(self) -> Mapping[str, list[int]]:
        """Output shape (without batch) of every layer the ONNX file exposes, in graph order (read once from the
        manifest entry: a request reads it several times)."""
        if self._layer_shapes is None:
            self._layer_shapes = MappingProxyType(self.entry.layer_shapes)
        return self._layer_shapes

    def run(self, images: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        """Inference over ``images`` (N, 28, 28) or (N, 28, 28, 1) asking only for ``outputs``.

        Batches take an inference slot CHUNK images at a time, which lets other requests take a slot in between;
        within a chunk, onnxruntime runs ROWS_PER_RUN images at a time, which bounds its working memory (its arena
        keeps whatever the largest run needed), on ``batch_threads`` threads from SPLIT_FROM images on
        (``service.runtime.split_runs``).
        """
        note_use(self)
        batch = as_batch(images)
        large = len(batch) >= SHRINK_FROM
        parts = []
        for start in range(0, len(batch), CHUNK):
            checkpoint()
            chunk = batch[start : start + CHUNK]
            shrink = SHRINK if large and start + CHUNK >= len(batch) else None
            with self.gate.slot(self.name):
                parts.append(
                    run_split(
                        self.session,
                        outputs,
                        {INPUT_NAME: chunk},
                        parts_for(len(chunk), self.batch_threads),
                        shrink,
                        ROWS_PER_RUN,
                    )
                )
        if large:
            release_freed_memory()
        if len(parts) == 1:
            return dict(zip(outputs, parts[0]))
        return {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(outputs)}

    def run_now(self, images: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray] | None:
        """``run`` on the calling thread, for at most INLINE_IMAGES images, if an inference slot is free at once;
        None when none is (or for more images), and the caller runs ``run`` in a worker thread.

        One image takes about 0.15 ms: less than handing it to a thread and back, so it may run on the event loop.
        """
        batch = as_batch(images)
        slot = self.gate.free_slot(self.name) if len(batch) <= INLINE_IMAGES else None
        if slot is None:
            return None
        note_use(self)
        with slot:
            return dict(zip(outputs, self.session.run(outputs, {INPUT_NAME: batch})))

    @property
    def output_names(self) -> frozenset[str]:
        """The outputs its session can compute."""
        if self._output_names is None:
            self._output_names = frozenset(output.name for output in self.session.get_outputs())
        return self._output_names

    def serve_graph(self, graph: onnx.ModelProto) -> None:
        """Serve ``graph`` (this model's own, with more outputs) instead of the file's, with the same session
        options; the manifest's SHA-256, the weights and the kernels stay the file's."""
        options = self.session.get_session_options()
        self.session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self._output_names = None


def as_batch(images: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) or (N, 28, 28, 1) as the model's float32 (N, 28, 28, 1) input."""
    return images.reshape(-1, 28, 28, 1).astype(np.float32, copy=False)


class ImportedModels(Protocol):
    """The one owner of the imported models' state (``service.runtime.imported.Repository``, whose module imports
    this one): the models served by name and the reason each imported folder not served was skipped."""

    served: dict[str, Any]
    skipped: dict[str, str]

    def free_bytes(self) -> int:
        """What is left of the models' memory budget."""
        ...


@dataclass
class Registry:
    """All models the service serves, by name: the shipped ones (and variants) in ``models``, the imported ones
    read from ``repository`` (none without one), which alone loads and unloads them."""

    models: dict[str, LoadedModel]
    manifest: Manifest
    repository: ImportedModels | None = None

    @property
    def imported(self) -> dict[str, Any]:
        """The imported models served, by name (``ImportedLoadedModel``s), as the repository holds them now."""
        return self.repository.served if self.repository is not None else {}

    @property
    def skipped(self) -> dict[str, str]:
        """The reason each imported folder not served was skipped."""
        return self.repository.skipped if self.repository is not None else {}

    def find(self, name: str) -> Any:
        """The served model called ``name``: a LoadedModel, an ImportedLoadedModel, or None when there is none."""
        return self.models.get(name) or self.imported.get(name)

    @property
    def names(self) -> list[str]:
        """Every served model's name: the shipped ones first, then the imported ones."""
        return [*self.models, *self.imported]

    @property
    def shipped_bytes(self) -> int:
        """The shipped models' ONNX bytes, their sessions' share of the models' memory budget."""
        return sum(len(model.onnx_bytes) for model in self.models.values())


def conv_kernels(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Each Conv's weights in Keras' HWIO layout, keyed by the graph output the Conv feeds (``conv1``, ...)."""
    outputs = {o.name for o in model.graph.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {init.name: init for init in model.graph.initializer}
    kernels = {}
    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in initializers:
            continue
        tensor = node.output[0]
        while tensor not in outputs:
            following = [n for n in consumers.get(tensor, []) if n.op_type in PASS_THROUGH]
            if len(following) != 1:
                break
            tensor = following[0].output[0]
        if tensor in outputs:
            kernels[tensor] = numpy_helper.to_array(initializers[node.input[1]]).transpose(2, 3, 1, 0).copy()
    return kernels


def _verified_bytes(path: Path, expected_sha256: str) -> bytes:
    if not path.is_file():
        raise ModelLoadError(f"model file {path} is missing (listed in manifest.json)")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ModelLoadError(
            f"model file {path} has SHA-256 {actual}, manifest.json says {expected_sha256}: "
            "the file was changed or truncated"
        )
    return data


def read_manifest(model_dir: Path) -> Manifest:
    """``model_dir/manifest.json``, validated; ModelLoadError saying which file and field are wrong otherwise."""
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} not found: set CONVLENS_MODEL_DIR to a folder with trained models")
    try:
        return read_document(path, Manifest)
    except ContractError as exc:
        raise ModelLoadError(str(exc)) from exc


def variant_dirs(model_dir: Path) -> list[Path]:
    """The folders under ``model_dir/variants`` with a manifest (``python -m training sweep``), sorted by name.

    Hidden folders are left out: a variant being trained (or killed midway) lives in ``.<name>-partial-<hex>`` until
    it is complete, and a sweep's or collect's staging folder is hidden too."""
    found = (model_dir / VARIANTS_DIR).glob(f"*/{MANIFEST_FILE}")
    return sorted(path.parent for path in found if not path.parent.name.startswith("."))


def model_files(model_dir: Path, variants: bool = True, quiet: bool = False) -> list[tuple[str, Path, ModelEntry]]:
    """(name, file, manifest entry) of every model to serve: the main manifest's by their names, then each
    variant's classifier named after its folder (``tanh-sgd``). Variants whose ONNX file is absent (they are not
    shipped) are skipped, with one informational line unless ``quiet``; a listed main model must be there."""
    found = [(name, model_dir / entry.file, entry) for name, entry in read_manifest(model_dir).models.items()]
    folders, absent = variant_dirs(model_dir) if variants else [], []
    for folder in folders:
        entry = read_manifest(folder).models.get(VARIANT_MODEL)
        if entry is None:
            raise ModelLoadError(f"{folder / MANIFEST_FILE} lists no {VARIANT_MODEL}")
        if (folder / entry.file).is_file():
            found.append((folder.name, folder / entry.file, entry))
        else:
            absent.append(folder.name)
    if absent and not quiet:
        log.info(
            "%d of %d variants have a manifest but no ONNX file and are not served (%s); "
            "`make variants` (python -m training sweep) builds them",
            len(absent),
            len(folders),
            ", ".join(absent),
        )
    return found


def verify_model_files(model_dir: Path) -> None:
    """Check that every model to serve is there with its SHA-256, without loading it (cheap, for start-up)."""
    for _, path, entry in model_files(model_dir, quiet=True):
        _verified_bytes(path, entry.sha256)


def load_registry(
    model_dir: Path,
    intra_op_threads: int = 1,
    gate: InferenceGate | None = None,
    variants: bool = True,
    batch_threads: int = 0,
) -> Registry:
    """Load every model ``model_dir/manifest.json`` lists (and, with ``variants``, every variant's classifier),
    verifying each file's SHA-256.

    Every inference of every model passes ``gate`` (by default: no bound).
    """
    gate = gate or InferenceGate(slots=1 << 16, wait_seconds=0)
    manifest = read_manifest(model_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    models = {}
    for name, path, entry in model_files(model_dir, variants):
        data = _verified_bytes(path, entry.sha256)
        try:
            proto = onnx.load_from_string(data)
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"model file {path} cannot be loaded: {exc}") from exc
        models[name] = LoadedModel(name, entry, session, gate, conv_kernels(proto), data, batch_threads)
    return Registry(models, manifest)
