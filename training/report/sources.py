"""What a report draws from: the model folder through the service's own runtime and statistics, and the MNIST
test split for the example digits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from service.contract import AUTOENCODER, CLASSIFIER
from service.runtime.registry import ModelLoadError, load_registry
from service.studies.statistics import DatasetStatistics, StatisticsUnavailable, load_statistics
from training.analyze import AnalysisError
from training.data import load_split


def model_input(images: np.ndarray) -> np.ndarray:
    """uint8 MNIST pixels as the models' float32 input in [0, 1]."""
    return images.astype(np.float32) / 255.0


class Sources:
    """The registry of ``model_dir`` (classifier, autoencoder when there is one, variants), its dataset statistics,
    and the test images and labels with the index of the first test image of each digit."""

    def __init__(self, model_dir: Path, data_dir: str | os.PathLike[str] | None) -> None:
        self.model_dir = Path(model_dir)
        try:
            self.registry = load_registry(self.model_dir)
            self.stats: DatasetStatistics = load_statistics(self.model_dir, self.registry)
        except (ModelLoadError, StatisticsUnavailable) as exc:
            raise AnalysisError(str(exc)) from exc
        self.classifier = self.registry.models[CLASSIFIER]
        self.autoencoder = self.registry.models.get(AUTOENCODER)
        self.images, self.labels = load_split(data_dir, "test")
        self.first = {d: int(np.flatnonzero(self.labels == d)[0]) for d in range(10)}
