"""The features a classifier learned epoch by epoch (Zeiler & Fergus, figure 4): loaded, verified, looked up.

``python -m training train`` records them while the classifier trains and writes ``EVOLUTION_FILE`` beside it;
the classifier's manifest entry names the file with its SHA-256. Start-up verifies it; when it is missing,
changed or malformed the service still starts and the evolution endpoint answers 503 with the reason and the
command that makes it. Pure numpy, no web code.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.contract import EVOLUTION_FIELDS, SPATIAL_LAYERS, evolution_key, read_verified
from service.errors import NotFoundError, UnavailableError
from service.runtime.registry import LoadedModel, Registry, model_files

log = logging.getLogger("convlens.evolution")

RECORD = (
    "run `python -m training train --data-dir MNIST_DIR --out-dir {model_dir} --only classifier` "
    "to retrain the classifier and record it"
)


class EvolutionUnavailable(UnavailableError):
    """The recording is listed but cannot be served; the message says why and how to make it."""


class NotRecorded(NotFoundError, LookupError):
    """The model has no recording of its training (an autoencoder, a variant of the sweep)."""


@dataclass(frozen=True)
class LayerEvolution:
    """One layer over the recorded epochs: each filter's strongest image, its norm and its projection."""

    index: np.ndarray  # (E, C) test-split index
    norm: np.ndarray  # (E, C) L2 norm of the filter's feature map for that image
    projection: np.ndarray  # (E, C, 28, 28) the image's projection of the filter with that epoch's weights


@dataclass(frozen=True)
class FilterEvolution:
    """One filter over the recorded epochs, in epoch order."""

    epochs: list[int]
    indices: list[int]
    norms: list[float]
    projections: np.ndarray  # (E, 28, 28) float32
    images: np.ndarray  # (E, 28, 28) uint8, the strongest image of each epoch


@dataclass(frozen=True)
class FeatureEvolution:
    """A verified recording: the epochs, the size of the test subset searched, the layers and their images."""

    epochs: np.ndarray
    subset: int
    layers: dict[str, LayerEvolution]
    images: dict[int, np.ndarray]

    def of_filter(self, layer: str, filter: int) -> FilterEvolution:
        """Filter ``filter`` of ``layer`` at every recorded epoch; KeyError for a layer that was not recorded."""
        recorded = self.layers[layer]
        indices = [int(i) for i in recorded.index[:, filter]]
        return FilterEvolution(
            epochs=[int(e) for e in self.epochs],
            indices=indices,
            norms=[float(n) for n in recorded.norm[:, filter]],
            projections=recorded.projection[:, filter].astype(np.float32),
            images=np.stack([self.images[i] for i in indices]),
        )


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise EvolutionUnavailable(f"cannot be read: {exc}") from exc


def _checked(arrays: dict[str, np.ndarray], model: LoadedModel) -> FeatureEvolution:
    """The recording, its shapes and types checked against each other and against the served ``model``."""

    def need(name: str, kind: str, shape: tuple[int, ...] | None = None, ndim: int = 1) -> np.ndarray:
        """Array ``name``, of numpy kind ``kind`` ("i", "u", "f") and ``shape`` (else any shape of ``ndim`` axes)."""
        array = arrays.get(name)
        if array is None:
            raise EvolutionUnavailable(f"has no array {name!r}")
        if array.dtype.kind != kind or (array.shape != shape if shape else array.ndim != ndim):
            raise EvolutionUnavailable(f"has {name!r} as {array.dtype} {array.shape}, expected {shape or f'{ndim}-D'}")
        return array

    epochs, subset, indices = need("epochs", "i"), need("subset", "i"), need("indices", "i")
    if not len(epochs) or np.any(np.diff(epochs) <= 0):
        raise EvolutionUnavailable(f"has epochs {epochs.tolist()}, expected a non-empty increasing list")
    images = need("images", "u", (len(indices), 28, 28))
    layers = {}
    for layer in SPATIAL_LAYERS:
        if layer not in model.layer_shapes:
            raise EvolutionUnavailable(f"is listed for model {model.name!r}, which has no layer {layer!r}")
        filters = model.layer_shapes[layer][-1]
        shapes = {"index": (len(epochs), filters), "norm": (len(epochs), filters)}
        shapes["projection"] = (len(epochs), filters, 28, 28)
        kinds = {"index": "i", "norm": "f", "projection": "f"}
        fields = {field: need(evolution_key(layer, field), kinds[field], shapes[field]) for field in EVOLUTION_FIELDS}
        unknown = set(np.unique(fields["index"]).tolist()) - set(indices.tolist())
        if unknown:
            raise EvolutionUnavailable(f"names image {min(unknown)} for {layer}, which is not among its images")
        layers[layer] = LayerEvolution(**fields)
    return FeatureEvolution(epochs, len(subset), layers, dict(zip(indices.tolist(), images)))


def load_evolution(folder: Path, model: LoadedModel) -> FeatureEvolution:
    """The recording ``model``'s manifest entry names, from ``folder``, verified by SHA-256 and by shape.

    NotRecorded when the entry names none; EvolutionUnavailable with a one-line reason (missing, changed, malformed)
    and the command that makes it.
    """
    ref = model.entry.evolution
    if ref is None:
        raise NotRecorded(model.name)
    path, hint = folder / ref.file, RECORD.format(model_dir=folder)
    data = read_verified(
        folder,
        ref,
        EvolutionUnavailable,
        lambda path: f"{path} (the feature evolution, listed in manifest.json) is missing; {hint}",
        lambda path, actual: (
            f"{path} has SHA-256 {actual}, manifest.json says {ref.sha256}: the file was changed or truncated; {hint}"
        ),
    )
    try:
        return _checked(_arrays(data), model)
    except EvolutionUnavailable as exc:
        raise EvolutionUnavailable(f"{path} {exc}; {hint}") from exc


def load_all_evolution(model_dir: Path, registry: Registry) -> dict[str, FeatureEvolution | EvolutionUnavailable]:
    """The recording of every served model whose manifest entry names one, or the reason it cannot be served
    (logged as a warning); never stops the service."""
    found: dict[str, FeatureEvolution | EvolutionUnavailable] = {}
    for name, path, entry in model_files(model_dir, quiet=True):
        model = registry.models.get(name)
        if model is None or entry.evolution is None:
            continue
        try:
            found[name] = load_evolution(path.parent, model)
        except EvolutionUnavailable as reason:
            log.warning("feature evolution of %s unavailable: %s", name, reason)
            found[name] = reason
    return found
