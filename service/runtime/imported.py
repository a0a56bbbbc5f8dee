"""Imported models (``python -m service.importer``): every ``models/imported/NAME/`` verified and opened.

Each folder's manifest names the user's file and the exposed copy with their SHA-256; both are checked, and an
onnxruntime session is opened on the exposed copy. A folder that fails any step is skipped with one log line
giving its reason: an imported model never stops the service. Hidden folders (an import in progress) are ignored.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.contract import IMPORTED_DIR, MANIFEST_FILE, ContractError, FileRef, ImportedModel, read_document
from service.errors import UnavailableError
from service.runtime.cancellation import checkpoint
from service.runtime.inference_gate import InferenceGate
from service.runtime.registry import CHUNK, INLINE_IMAGES, ROWS_PER_RUN, note_use
from service.runtime.split_runs import parts_for, run_split

log = logging.getLogger("convlens.imported")


class ImportedLoadError(UnavailableError, RuntimeError):
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


def imported_dirs(model_dir: Path) -> list[Path]:
    """The folders under ``model_dir/imported`` that are not hidden, sorted by name."""
    root = model_dir / IMPORTED_DIR
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def _verified(folder: Path, ref: FileRef) -> bytes:
    path = folder / ref.file
    if not path.is_file():
        raise ImportedLoadError(f"{path} is missing (listed in {MANIFEST_FILE})")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref.sha256:
        raise ImportedLoadError(f"{path} has SHA-256 {actual[:12]}..., {MANIFEST_FILE} says {ref.sha256[:12]}...")
    return data


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


def load_imported(
    model_dir: Path, gate: InferenceGate | None = None, intra_op_threads: int = 1, batch_threads: int = 0
) -> tuple[dict[str, ImportedLoadedModel], dict[str, str]]:
    """Every servable imported model by name, and the reason each other folder was skipped (also logged, one line
    each). Never raises for a broken folder."""
    gate = gate or InferenceGate(slots=1 << 16, wait_seconds=0)
    loaded, skipped = {}, {}
    for folder in imported_dirs(model_dir):
        try:
            loaded[folder.name] = load_imported_model(folder, gate, intra_op_threads, batch_threads)
        except Exception as exc:  # any broken folder is skipped with its reason, whatever broke
            skipped[folder.name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("imported model %s is not served: %s", folder.name, skipped[folder.name])
    return loaded, skipped
