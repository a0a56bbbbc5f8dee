"""Imported models (``python -m service.importer``): every ``models/imported/NAME/`` verified and opened.

Each folder's manifest names the user's file and the exposed copy with their SHA-256; both are checked, and an
onnxruntime session is opened on the exposed copy. A folder that fails any step is skipped with one log line
giving its reason: an imported model never stops the service. Hidden folders (an import in progress) are ignored.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service.contract import (
    IMPORTED_DIR,
    MANIFEST_FILE,
    ContractError,
    FileRef,
    ImportedModel,
    read_document,
    read_verified,
)
from service.errors import BadInputError
from service.runtime.cancellation import checkpoint
from service.runtime.inference_gate import InferenceGate
from service.runtime.registry import CHUNK, INLINE_IMAGES, ROWS_PER_RUN, note_use
from service.runtime.split_runs import parts_for, run_split

log = logging.getLogger("convlens.imported")

# The shipped classifier's forward pass of one image, in milliseconds (``bench/``): the unit of an imported model's
# ``cost``. A model whose one-image forward pass takes k times as long counts as ceil(k) units of work.
REFERENCE_FORWARD_MS = 0.15
FLOAT_BYTES = 4


class ImportedLoadError(BadInputError, RuntimeError):
    """An imported model's folder cannot be served; the message says which file and why."""


@dataclass
class ImportedLoadedModel:
    """One verified imported model: its manifest, a session on its exposed copy, the same run interface as the
    shipped models' ``LoadedModel`` over batches in the model's own input shape."""

    name: str
    manifest: ImportedModel
    session: ort.InferenceSession
    gate: InferenceGate
    folder: Path
    batch_threads: int = 0
    _output_names: frozenset[str] | None = field(default=None, repr=False)
    # The backward sessions built for it (service.studies.imported_gradients), least recently used first; the
    # first node without a backward rule, once looked for (``gradient_coverage``: a one-item list, empty before); the
    # bytes the sessions are estimated to hold; one image's backward run in milliseconds, the costliest session's.
    backward_sessions: OrderedDict[Any, Any] = field(default_factory=OrderedDict, repr=False)
    # ``cut_heads``: the sessions of the graph from a layer on, by layer (service.studies.cut_heads; their bytes
    # counted in ``gradient_bytes`` too).
    cut_heads: dict[str, Any] = field(default_factory=dict, repr=False)
    gradient_coverage: list[Any] = field(default_factory=list, repr=False)
    gradient_bytes: int = 0
    backward_ms: float | None = None
    gradients_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def entry(self) -> FileRef:
        """The user's file and its SHA-256 (what ``X-Model-Version`` reports)."""
        return self.manifest.source

    @property
    def layer_shapes(self) -> dict[str, list[int | None]]:
        """Output shape (without batch) of every exposed layer, in graph order."""
        return self.manifest.layer_shapes

    @property
    def output_names(self) -> frozenset[str]:
        """The outputs its session can compute."""
        if self._output_names is None:
            self._output_names = frozenset(output.name for output in self.session.get_outputs())
        return self._output_names

    @property
    def cost(self) -> int:
        """Units of work of one image's forward pass, the shipped classifier's being 1: the import's measured
        ``forward_ms`` over REFERENCE_FORWARD_MS, rounded up. Admission control may weigh a request by it."""
        return cost_of(self.manifest)

    @property
    def gradient_cost(self) -> int:
        """Units of work of one image's forward and backward pass (an attribution evaluation): measured when its
        backward graph was first built, else estimated as three forward passes."""
        if self.backward_ms is None:
            return 3 * self.cost
        return max(1, math.ceil(self.backward_ms / REFERENCE_FORWARD_MS))

    @property
    def memory_bytes(self) -> int:
        """The estimate of this model's session memory (``estimated_memory_bytes``) and of its backward-graph
        sessions' (``gradient_bytes``)."""
        return estimated_memory_bytes(self.manifest, self.folder) + self.gradient_bytes

    def as_batch(self, images: np.ndarray) -> np.ndarray:
        """Images in the model's input shape (one image or a batch) as its float32 batch."""
        spec = self.manifest.input
        shape = (
            (spec.channels, spec.height, spec.width)
            if spec.layout == "nchw"
            else (spec.height, spec.width, spec.channels)
        )
        return images.reshape(-1, *shape).astype(np.float32, copy=False)

    def run(self, images: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        """Inference over ``images`` asking only for ``outputs``: CHUNK images per inference slot (with a
        cancellation check between), ROWS_PER_RUN per onnxruntime run on ``batch_threads`` threads."""
        note_use(self)
        batch = self.as_batch(images)
        parts = []
        for start in range(0, len(batch), CHUNK):
            checkpoint()
            chunk = batch[start : start + CHUNK]
            with self.gate.slot(self.name):
                parts.append(
                    run_split(
                        self.session,
                        outputs,
                        {self.manifest.input.name: chunk},
                        parts_for(len(chunk), self.batch_threads),
                        None,
                        ROWS_PER_RUN,
                    )
                )
        if len(parts) == 1:
            return dict(zip(outputs, parts[0]))
        return {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(outputs)}

    def run_now(self, images: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray] | None:
        """``run`` on the calling thread for at most INLINE_IMAGES images when a slot is free at once; else None."""
        batch = self.as_batch(images)
        slot = self.gate.free_slot(self.name) if len(batch) <= INLINE_IMAGES else None
        if slot is None:
            return None
        note_use(self)
        with slot:
            return dict(zip(outputs, self.session.run(outputs, {self.manifest.input.name: batch})))


def cost_of(manifest: ImportedModel) -> int:
    """One image's forward pass in units of the shipped classifier's (at least 1)."""
    return max(1, math.ceil(manifest.forward_ms / REFERENCE_FORWARD_MS))


def estimated_memory_bytes(manifest: ImportedModel, folder: Path) -> int:
    """What a session on the exposed copy holds, estimated: its weights (the exposed file's size, nearly all of it
    initializers) plus every exposed layer's float32 output for one run of ROWS_PER_RUN images (a request may ask
    for every layer at once, and onnxruntime keeps each asked output until the run ends)."""
    weights = (folder / manifest.exposed.file).stat().st_size
    per_image = sum(math.prod(size or 1 for size in layer.shape[1:]) for layer in manifest.layers) * FLOAT_BYTES
    return weights + per_image * ROWS_PER_RUN


def imported_dirs(model_dir: Path) -> list[Path]:
    """The folders under ``model_dir/imported`` that are not hidden, sorted by name."""
    root = model_dir / IMPORTED_DIR
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def _verified(folder: Path, ref: FileRef) -> bytes:
    return read_verified(
        folder,
        ref,
        ImportedLoadError,
        lambda path: f"{path} is missing (listed in {MANIFEST_FILE})",
        lambda path, actual: f"{path} has SHA-256 {actual[:12]}..., {MANIFEST_FILE} says {ref.sha256[:12]}...",
    )


def load_imported_model(
    folder: Path, gate: InferenceGate, intra_op_threads: int = 1, batch_threads: int = 0
) -> ImportedLoadedModel:
    """One imported model, verified and opened; ImportedLoadError saying why it cannot be."""
    try:
        manifest = read_document(folder / MANIFEST_FILE, ImportedModel)
    except ContractError as exc:
        raise ImportedLoadError(str(exc)) from exc
    if manifest.name != folder.name:
        raise ImportedLoadError(
            f"{folder / MANIFEST_FILE} names the model {manifest.name!r}, its folder {folder.name!r}"
        )
    _verified(folder, manifest.source)
    data = _verified(folder, manifest.exposed)
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types, one per failure kind
        raise ImportedLoadError(f"{folder / manifest.exposed.file} cannot be loaded: {exc}") from exc
    missing = {layer.name for layer in manifest.layers} - {output.name for output in session.get_outputs()}
    if missing:
        raise ImportedLoadError(f"{folder / manifest.exposed.file} lacks the outputs {', '.join(sorted(missing))}")
    return ImportedLoadedModel(manifest.name, manifest, session, gate, folder, batch_threads)


@dataclass(frozen=True)
class ImportLimits:
    """How many imported models may be loaded at once, and the memory budget of all loaded models' sessions
    (``estimated_memory_bytes`` each; the shipped models' ``used_bytes`` count against it too)."""

    max_models: int = 1 << 16
    memory_bytes: int = 1 << 62
    used_bytes: int = 0

    def refusal(self, folder: Path, loaded: dict[str, ImportedLoadedModel]) -> str | None:
        """Why the model in ``folder`` may not join ``loaded`` (None: it may), read from its manifest alone."""
        if len(loaded) >= self.max_models:
            return f"CONVLENS_MAX_IMPORTED_MODELS is {self.max_models} and that many are loaded"
        try:
            manifest = read_document(folder / MANIFEST_FILE, ImportedModel)
            needed = estimated_memory_bytes(manifest, folder)
        except (ContractError, OSError):
            return None  # the load itself says what is wrong with the folder
        used = self.used_bytes + sum(model.memory_bytes for model in loaded.values())
        if used + needed > self.memory_bytes:
            return (
                f"its session needs about {needed:,} bytes and {used:,} of CONVLENS_MODELS_MEMORY_BYTES "
                f"({self.memory_bytes:,}) are in use; raise the budget or unload a model"
            )
        return None


def load_into(
    loaded: dict[str, ImportedLoadedModel],
    folder: Path,
    gate: InferenceGate,
    limits: ImportLimits,
    intra_op_threads: int = 1,
    batch_threads: int = 0,
) -> ImportedLoadedModel:
    """The model of ``folder`` loaded and added to ``loaded`` within ``limits``; ImportedLoadError saying why not."""
    refusal = limits.refusal(folder, loaded)
    if refusal is not None:
        raise ImportedLoadError(refusal)
    model = load_imported_model(folder, gate, intra_op_threads, batch_threads)
    loaded[model.name] = model
    return model


def reason(exc: Exception) -> str:
    """The first line of ``exc``'s message (its type's name when it has none)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_imported(
    model_dir: Path,
    gate: InferenceGate | None = None,
    intra_op_threads: int = 1,
    batch_threads: int = 0,
    limits: ImportLimits | None = None,
) -> tuple[dict[str, ImportedLoadedModel], dict[str, str]]:
    """Every servable imported model by name (in name order, while ``limits`` allow), and the reason each other
    folder was skipped (also logged, one line each). Never raises for a broken folder."""
    gate = gate or InferenceGate(slots=1 << 16, wait_seconds=0)
    limits = limits or ImportLimits()
    loaded: dict[str, ImportedLoadedModel] = {}
    skipped = {}
    for folder in imported_dirs(model_dir):
        try:
            load_into(loaded, folder, gate, limits, intra_op_threads, batch_threads)
        except Exception as exc:  # any broken folder is skipped with its reason, whatever broke
            skipped[folder.name] = reason(exc)
            log.warning("imported model %s is not served: %s", folder.name, skipped[folder.name])
    return loaded, skipped


@dataclass
class Repository:
    """The imported models of a models folder as Triton's model repository extension sees them: every folder under
    ``imported/`` with its state, and (with explicit model control) loading and unloading them while the service
    runs. ``served`` is replaced, never changed in place, so a request holding the previous dict keeps a
    consistent view."""

    model_dir: Path
    gate: InferenceGate
    limits: ImportLimits
    served: dict[str, ImportedLoadedModel]
    skipped: dict[str, str]
    intra_op_threads: int = 1
    batch_threads: int = 0
    _changing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """Every imported model folder (and every served model) as the extension's index entries: name, version
        ("1"), state (READY or UNAVAILABLE) and, when unavailable, the reason."""
        names = sorted({*self.served, *self.skipped, *(folder.name for folder in imported_dirs(self.model_dir))})
        entries = []
        for name in names:
            if name in self.served:
                entries.append({"name": name, "version": "1", "state": "READY"})
            elif not ready_only:
                reason = self.skipped.get(name, "not loaded")
                entries.append({"name": name, "version": "1", "state": "UNAVAILABLE", "reason": reason})
        return entries

    def free_bytes(self) -> int:
        """What is left of the models' memory budget (CONVLENS_MODELS_MEMORY_BYTES) with every served model's
        sessions (backward graphs included) and the shipped models counted."""
        used = self.limits.used_bytes + sum(model.memory_bytes for model in self.served.values())
        return self.limits.memory_bytes - used

    def load(self, name: str) -> ImportedLoadedModel:
        """Load (or reload) ``models/imported/NAME``; ImportedLoadError saying why it cannot be, the model kept
        as it was then."""
        folder = self.model_dir / IMPORTED_DIR / name
        if name.startswith(".") or "/" in name or not folder.is_dir():
            raise ImportedLoadError(
                f"no imported model {name!r}: {folder} is not a folder (python -m service.importer)"
            )
        with self._changing:
            others = {other: model for other, model in self.served.items() if other != name}
            model = load_into(others, folder, self.gate, self.limits, self.intra_op_threads, self.batch_threads)
            self.served = {**others, name: model}
            self.skipped = {other: why for other, why in self.skipped.items() if other != name}
        log.info("imported model %s loaded", name)
        return model

    def unload(self, name: str) -> None:
        """Stop serving ``name``; ImportedLoadError when it is not served."""
        with self._changing:
            if name not in self.served:
                loaded = ", ".join(self.served) or "none"
                raise ImportedLoadError(f"imported model {name!r} is not loaded; loaded: {loaded}")
            self.served = {other: model for other, model in self.served.items() if other != name}
            self.skipped = {**self.skipped, name: "unloaded"}
        log.info("imported model %s unloaded", name)
