"""Feature evolution during training (Zeiler & Fergus, figure 4), recorded while the classifier trains.

At a fixed set of epochs, every conv1, conv2 and pool filter's strongest activation over a fixed subset of the
test images is found with the service's own norm (``service.featuremaps.norms``, L2) and projected back to pixels
with the service's own deconvnet (``service.featuremaps.deconv.project``) and that epoch's weights. The arrays
go to ``EVOLUTION_FILE`` beside the models (layout: ``service.contract``), read back by ``service.studies.evolution``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from service.contract import EVOLUTION_FIELDS, SPATIAL_LAYERS, STATISTICS_NORM, evolution_key
from service.featuremaps.deconv import PROJECTION_INPUTS, project
from service.featuremaps.norms import feature_map_norms
from training.export import layer_model
from training.npz import write_npz

EVOLUTION_EPOCHS = (1, 2, 3, 5, 8)  # and the last
SUBSET = 2000  # the first 2,000 test images
BATCH = 500


def recorded_epochs(total: int) -> list[int]:
    """The epochs (1-based) recorded in a run of ``total`` epochs: ``EVOLUTION_EPOCHS`` within it, and the last."""
    return sorted({epoch for epoch in EVOLUTION_EPOCHS if epoch <= total} | {total})


def strongest_features(model: keras.Model, images: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """For every filter of each spatial layer: the image of ``images`` (float32 (N, 28, 28, 1)) with the largest L2
    norm of its feature map (the first on ties), that norm, and the image's projection of the filter (28, 28).

    ``model`` is a float32 classifier; norms are computed in batches, then only the chosen images run again for
    their projections, so memory stays at one batch of feature maps.
    """
    layers = layer_model(model, list(SPATIAL_LAYERS))
    norms: dict[str, list[np.ndarray]] = {layer: [] for layer in SPATIAL_LAYERS}
    for start in range(0, len(images), BATCH):
        maps = layers(images[start : start + BATCH], training=False)
        for layer, values in zip(SPATIAL_LAYERS, maps):
            norms[layer].append(feature_map_norms(np.asarray(values), STATISTICS_NORM))
    w1 = model.get_layer("conv1").get_weights()[0]
    w2 = model.get_layer("conv2").get_weights()[0]
    found = {}
    for layer in SPATIAL_LAYERS:
        layer_norms = np.concatenate(norms[layer])
        best = layer_norms.argmax(axis=0)
        chosen = np.unique(best)
        maps = dict(zip(SPATIAL_LAYERS, (np.asarray(m) for m in layers(images[chosen], training=False))))
        projections = np.empty((len(best), 28, 28), np.float32)
        for row, image in enumerate(chosen):
            filters = np.flatnonzero(best == image)
            activations = {name: maps[name][row] for name in PROJECTION_INPUTS[layer]}
            projections[filters] = project(layer, activations, w1, w2, filters.tolist())
        found[layer] = {
            "index": best.astype(np.int32),
            "norm": layer_norms[best, np.arange(len(best))].astype(np.float32),
            "projection": projections,
        }
    return found


class EvolutionRecorder(keras.callbacks.Callback):
    """Records ``strongest_features`` at the end of each of ``epochs`` (1-based), on a float32 copy of the model
    being trained (``float32_copy``: the copy the export makes too, so mixed-precision runs record what they
    export)."""

    def __init__(
        self,
        images: np.ndarray,
        subset: np.ndarray,
        epochs: list[int],
        float32_copy: Callable[[keras.Model], keras.Model],
    ) -> None:
        super().__init__()
        self.images, self.subset, self.epochs, self.float32_copy = images, subset, epochs, float32_copy
        self.inputs = (images.astype(np.float32) / 255.0)[..., None]
        self.recorded: dict[int, dict[str, dict[str, np.ndarray]]] = {}
        self.seconds = 0.0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch + 1 in self.epochs:
            started = time.perf_counter()
            self.recorded[epoch + 1] = strongest_features(self.float32_copy(self.model), self.inputs)
            self.seconds += time.perf_counter() - started
            print(f"feature evolution: epoch {epoch + 1} recorded in {time.perf_counter() - started:.1f} s", flush=True)

    def arrays(self) -> dict[str, np.ndarray]:
        """The recording in ``EVOLUTION_FILE``'s layout (``service.contract``): test-split indices, float16
        projections, and the images the indices name."""
        epochs = sorted(self.recorded)
        arrays = {"epochs": np.array(epochs, np.int32), "subset": self.subset.astype(np.int32)}
        positions = []
        for layer in SPATIAL_LAYERS:
            stacked = {field: np.stack([self.recorded[e][layer][field] for e in epochs]) for field in EVOLUTION_FIELDS}
            positions.append(stacked["index"].ravel())
            arrays[evolution_key(layer, "index")] = self.subset[stacked["index"]].astype(np.int32)
            arrays[evolution_key(layer, "norm")] = stacked["norm"]
            arrays[evolution_key(layer, "projection")] = stacked["projection"].astype(np.float16)
        named = np.unique(np.concatenate(positions))
        arrays["indices"] = self.subset[named].astype(np.int32)
        arrays["images"] = self.images[named]
        return arrays

    def write(self, path: Path) -> Path:
        """Write the recording to ``path`` (deterministic bytes: fixed zip timestamps)."""
        write_npz(path, **self.arrays())
        return path
