"""The served models as the streamed dataset analysis sees them (``service.studies.dataset_analysis.AnalysedModel``).

The shipped classifier and every variant of the sweep run through the service's own runtime
(``service.runtime.registry``): a 28 x 28 grayscale image is scaled to [0, 1] as MNIST is, anything else goes
through the service's own MNIST normalisation (``service.images.decoding.prepare``), as an upload would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.contract import CLASSIFIER, LABELS, PROBABILITIES, SPATIAL_LAYERS, VARIANTS_DIR
from service.errors import NotFoundError
from service.images.decoding import MNIST_SIDE, prepare
from service.runtime.registry import LoadedModel, Registry, load_registry

# ITU-R 601-2 luma, as Pillow's convert("L")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


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

    def run(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        outputs = self.model.run(batch, [*SPATIAL_LAYERS, PROBABILITIES])
        return {layer: outputs[layer] for layer in SPATIAL_LAYERS}, outputs[PROBABILITIES]


def registry_classifier(model_dir: Path, name: str = CLASSIFIER, threads: int = 0) -> RegistryClassifier:
    """The shipped classifier (``classifier``) or the sweep variant ``name`` of ``model_dir``, loaded and verified
    through the registry; its statistics belong in ``folder``. UnknownModel for any other name."""
    model_dir = Path(model_dir)
    folder = model_dir if name == CLASSIFIER else model_dir / VARIANTS_DIR / name
    if not (folder / "manifest.json").is_file():
        variants = sorted(path.parent.name for path in (model_dir / VARIANTS_DIR).glob("*/manifest.json"))
        raise UnknownModel(f"no model {name!r} in {model_dir}; models: {', '.join([CLASSIFIER, *variants])}")
    registry = load_registry(folder, intra_op_threads=threads, variants=False)
    return RegistryClassifier(registry.models[CLASSIFIER], registry, folder, name)
