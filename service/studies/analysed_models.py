"""The served models as the streamed dataset analysis sees them (``service.studies.dataset_analysis.AnalysedModel``).

The shipped classifier and every variant of the sweep run through the service's own runtime
(``service.runtime.registry``): a 28 x 28 grayscale image is scaled to [0, 1] as MNIST is, anything else goes
through the service's own MNIST normalisation (``service.images.decoding.prepare``), as an upload would.

A batch runs on the calling thread, on one onnxruntime thread, in runs of ``ROWS_PER_RUN`` images whose feature maps
are reduced to their norms at once, while they are still in the core's cache: the maps of a whole batch (270 kB an
image) are never put together. The pass (``service.studies.dataset_pass``) runs one batch per thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.contract import (
    CLASSIFIER,
    INPUT_NAME,
    LABELS,
    PROBABILITIES,
    SPATIAL_LAYERS,
    STATISTICS_NORM,
    VARIANTS_DIR,
)
from service.errors import NotFoundError
from service.featuremaps.norms import feature_map_norms
from service.images.decoding import MNIST_SIDE, prepare
from service.runtime.registry import LoadedModel, Registry, as_batch, load_registry

# ITU-R 601-2 luma, as Pillow's convert("L")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Images per onnxruntime run: 32 images' maps (8.6 MB) are reduced to norms by the thread that made them.
ROWS_PER_RUN = 32


class UnknownModel(NotFoundError, LookupError):
    """No served model by that name; the message lists the ones there are."""


@dataclass
class RegistryClassifier:
    """A classifier of the model folder (the shipped one or a variant) with the analysis' interface."""

    model: LoadedModel
    registry: Registry
    folder: Path
    name: str = CLASSIFIER
    labels: tuple[str, ...] = tuple(str(digit) for digit in range(LABELS))

    @property
    def sha256(self) -> str:
        return self.model.entry.sha256

    @property
    def spatial_layers(self) -> dict[str, int]:
        return {layer: self.model.layer_shapes[layer][-1] for layer in SPATIAL_LAYERS}

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(28, 28) float32 in [0, 1]: an MNIST-sized grayscale image scaled as it is, anything else normalised
        like an upload (ValueError, e.g. ``NoDigitError``, when no digit stands out)."""
        if image.ndim == 2 and image.shape == (MNIST_SIDE, MNIST_SIDE):
            return image.astype(np.float32) / np.float32(255.0)
        gray = image.astype(np.float32) @ LUMA if image.ndim == 3 else image.astype(np.float32)
        return prepare(gray / np.float32(255.0), "auto")

    def picture(self, preprocessed: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(preprocessed * 255.0), 0, 255).astype(np.uint8)

    def norms(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The feature-map norms (N, C) float32 of every spatial layer, and the class scores (N, classes), on the
        calling thread (one onnxruntime thread), ``ROWS_PER_RUN`` images at a time."""
        inputs = as_batch(batch)
        norms: dict[str, list[np.ndarray]] = {layer: [] for layer in SPATIAL_LAYERS}
        scores = []
        for start in range(0, len(inputs), ROWS_PER_RUN):
            *maps, run_scores = self.model.session.run(
                [*SPATIAL_LAYERS, PROBABILITIES], {INPUT_NAME: inputs[start : start + ROWS_PER_RUN]}
            )
            for layer, layer_maps in zip(SPATIAL_LAYERS, maps, strict=True):
                norms[layer].append(feature_map_norms(layer_maps, STATISTICS_NORM).astype(np.float32))
            scores.append(run_scores)
        return {layer: np.concatenate(parts) for layer, parts in norms.items()}, np.concatenate(scores)


def registry_classifier(model_dir: Path, name: str = CLASSIFIER) -> RegistryClassifier:
    """The shipped classifier (``classifier``) or the sweep variant ``name`` of ``model_dir``, loaded and verified
    through the registry with one onnxruntime thread (the analysis runs one batch per thread); its statistics belong
    in ``folder``. UnknownModel for any other name."""
    model_dir = Path(model_dir)
    folder = model_dir if name == CLASSIFIER else model_dir / VARIANTS_DIR / name
    if not (folder / "manifest.json").is_file():
        variants = sorted(path.parent.name for path in (model_dir / VARIANTS_DIR).glob("*/manifest.json"))
        raise UnknownModel(f"no model {name!r} in {model_dir}; models: {', '.join([CLASSIFIER, *variants])}")
    registry = load_registry(folder, intra_op_threads=1, variants=False)
    return RegistryClassifier(registry.models[CLASSIFIER], registry, folder, name)
