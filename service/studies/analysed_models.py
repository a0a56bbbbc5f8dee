"""The served models as the streamed dataset analysis sees them (``service.studies.dataset_analysis.AnalysedModel``).

The shipped classifier and every variant of the sweep run through the service's own runtime
(``service.runtime.registry``): a 28 x 28 grayscale image is scaled to [0, 1] as MNIST is, anything else goes
through the service's own MNIST normalisation (``service.images.decoding.prepare``), as an upload would. An imported
model (``models/imported/NAME/``, ``service.runtime.imported``) takes every image through its own preprocessing
(``service.images.preprocessing``), as an upload to it would, and is analysed at every exposed layer with feature
maps (C, H, W) or units (C,): a unit's norm is the absolute value of its activation (the L2 norm of a 1 x 1 map).

A batch runs on the calling thread, on one onnxruntime thread, in runs of ``ROWS_PER_RUN`` images whose feature maps
are reduced to their norms at once, while they are still in the core's cache: the maps of a whole batch (270 kB an
image) are never put together. The pass (``service.studies.dataset_pass``) runs one batch per thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from service.contract import (
    CLASSIFIER,
    IMPORTED_DIR,
    INPUT_NAME,
    LABELS,
    MANIFEST_FILE,
    PROBABILITIES,
    SPATIAL_LAYERS,
    STATISTICS_NORM,
    VARIANTS_DIR,
)
from service.errors import NotFoundError
from service.featuremaps.norms import feature_map_norms
from service.images.decoding import MNIST_SIDE, prepare
from service.images.preprocessing import digit_input, picture_input
from service.runtime.imported import ImportedLoadedModel, imported_dirs, load_imported_model
from service.runtime.inference_gate import InferenceGate
from service.runtime.registry import LoadedModel, Registry, as_batch, load_registry

# ITU-R 601-2 luma, as Pillow's convert("L")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Images per onnxruntime run: 32 images' maps (8.6 MB) are reduced to norms by the thread that made them.
ROWS_PER_RUN = 32
# An imported model's run holds every analysed layer's float32 output: as many images as fit in this (at least one).
RUN_BYTES = 64 << 20


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

    def preprocess_many(self, images: np.ndarray) -> np.ndarray | None:
        """MNIST-sized grayscale images (N, 28, 28) scaled to [0, 1] at once; None for any other shape."""
        if images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
            return None
        return images.astype(np.float32) / np.float32(255.0)

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


def _analysed_layers(model: ImportedLoadedModel, chosen: tuple[str, ...] | None) -> dict[str, int]:
    """Every exposed layer with feature maps (C, H, W) or units (C,), or the ``chosen`` ones, with its channels;
    UnknownModel-style LookupError naming the analysable layers for a chosen one that is not."""
    analysable = {
        layer.name: int(layer.shape[1])
        for layer in model.manifest.layers
        if len(layer.shape) in (2, 4) and all(side is not None for side in layer.shape[1:])
    }
    if chosen is None:
        return analysable
    unknown = [layer for layer in chosen if layer not in analysable]
    if unknown:
        raise LookupError(
            f"model {model.name!r} has no analysable layer {', '.join(map(repr, unknown))}; "
            f"its layers with feature maps or units: {', '.join(analysable)}"
        )
    return {layer: analysable[layer] for layer in chosen}


@dataclass
class ImportedClassifier:
    """An imported model with the analysis' interface: its own preprocessing, its exposed layers' norms, its
    probabilities output as the class scores."""

    model: ImportedLoadedModel
    spatial_layers: dict[str, int]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def folder(self) -> Path:
        return self.model.folder

    @property
    def sha256(self) -> str:
        """The user's file's SHA-256 (what the service serves the model as)."""
        return self.model.entry.sha256

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.model.manifest.labels)

    @property
    def rows_per_run(self) -> int:
        """Images per onnxruntime run: at most ROWS_PER_RUN, and as many as keep the analysed layers' outputs of
        one run within RUN_BYTES."""
        shapes = self.model.layer_shapes
        per_image = sum(math.prod(shapes[layer]) for layer in self.spatial_layers) * 4
        return max(1, min(ROWS_PER_RUN, RUN_BYTES // max(per_image, 1)))

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One decoded uint8 image as the model's input of one image (its layout), through its preprocessing:
        ``mnist`` as an upload's ``auto`` (ValueError when no digit stands out), ``resize-crop`` from the picture."""
        manifest = self.model.manifest
        if manifest.preprocessing.kind == "mnist":
            gray = image.astype(np.float32) @ LUMA if image.ndim == 3 else image.astype(np.float32)
            return digit_input(gray / np.float32(255.0), manifest.input, manifest.preprocessing)[0]
        return picture_input(Image.fromarray(image), manifest.input, manifest.preprocessing)[0]

    def preprocess_many(self, images: np.ndarray) -> np.ndarray | None:
        """None: an imported model's preprocessing (resizing, cropping, the digit's placement) runs image by image."""
        return None

    def picture(self, preprocessed: np.ndarray) -> np.ndarray:
        """A model input as the uint8 picture it was made from: (H, W) for one channel, (H, W, C) otherwise."""
        manifest = self.model.manifest
        pixels = preprocessed if manifest.input.layout == "nhwc" else np.moveaxis(preprocessed, 0, -1)
        mean = np.asarray(manifest.preprocessing.mean, np.float32)
        std = np.asarray(manifest.preprocessing.std, np.float32)
        picture = np.clip(np.rint((pixels * std + mean) * 255.0), 0, 255).astype(np.uint8)
        return picture[..., 0] if picture.shape[-1] == 1 else picture

    def norms(self, batch: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every analysed layer's norms (N, C) float32 (``STATISTICS_NORM`` over each (H, W) map; a unit's absolute
        value) and the probabilities (N, classes), on the calling thread, ``rows_per_run`` images a run."""
        layers = list(self.spatial_layers)
        outputs = [*layers, self.model.manifest.probabilities]
        norms: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
        scores = []
        step = self.rows_per_run
        for start in range(0, len(batch), step):
            *maps, run_scores = self.model.session.run(
                outputs, {self.model.manifest.input.name: batch[start : start + step]}
            )
            for layer, layer_maps in zip(layers, maps, strict=True):
                if layer_maps.ndim == 4:
                    channels_last = np.moveaxis(layer_maps, 1, -1)
                    norms[layer].append(feature_map_norms(channels_last, STATISTICS_NORM).astype(np.float32))
                else:
                    norms[layer].append(np.abs(layer_maps).astype(np.float32))
            scores.append(run_scores)
        return {layer: np.concatenate(parts) for layer, parts in norms.items()}, np.concatenate(scores)


def imported_classifier(model_dir: Path, name: str, layers: tuple[str, ...] | None = None) -> ImportedClassifier:
    """The imported model ``model_dir/imported/NAME``, verified and opened with one onnxruntime thread, analysed at
    ``layers`` (default: every layer with feature maps or units); ImportedLoadError when it cannot be served."""
    model = load_imported_model(
        Path(model_dir) / IMPORTED_DIR / name, InferenceGate(slots=1 << 16, wait_seconds=0), intra_op_threads=1
    )
    return ImportedClassifier(model, _analysed_layers(model, layers))


def analysed_model(
    model_dir: Path, name: str = CLASSIFIER, layers: tuple[str, ...] | None = None
) -> RegistryClassifier | ImportedClassifier:
    """The model ``name`` of ``model_dir`` as the analysis sees it: an imported model when
    ``model_dir/imported/NAME`` holds one, else the shipped classifier or a sweep variant (``layers`` choose an
    imported model's layers; the shipped ones are analysed at their spatial layers)."""
    if (Path(model_dir) / IMPORTED_DIR / name / MANIFEST_FILE).is_file():
        return imported_classifier(model_dir, name, layers)
    if layers is not None:
        raise LookupError(f"--layers chooses the layers of an imported model; {name!r} is analysed at its own")
    return registry_classifier(model_dir, name)


def registry_classifier(model_dir: Path, name: str = CLASSIFIER) -> RegistryClassifier:
    """The shipped classifier (``classifier``) or the sweep variant ``name`` of ``model_dir``, loaded and verified
    through the registry with one onnxruntime thread (the analysis runs one batch per thread); its statistics belong
    in ``folder``. UnknownModel for any other name."""
    model_dir = Path(model_dir)
    folder = model_dir if name == CLASSIFIER else model_dir / VARIANTS_DIR / name
    if not (folder / "manifest.json").is_file():
        variants = sorted(path.parent.name for path in (model_dir / VARIANTS_DIR).glob("*/manifest.json"))
        imported = [path.name for path in imported_dirs(model_dir)]
        raise UnknownModel(f"no model {name!r} in {model_dir}; models: {', '.join([CLASSIFIER, *variants, *imported])}")
    registry = load_registry(folder, intra_op_threads=1, variants=False)
    return RegistryClassifier(registry.models[CLASSIFIER], registry, folder, name)
