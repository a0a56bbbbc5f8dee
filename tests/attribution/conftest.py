"""Real classifiers and real test digits for the attribution tests: the shipped ReLU model and a tanh variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from service.attribution import ClassifierWeights, classifier_weights
from service.attribution.inputs import RunFn

ROOT = Path(__file__).resolve().parents[2]
DIGITS = 24
CLASSIFIERS = ("shipped", "tanh")


@dataclass(frozen=True)
class Classifier:
    """One ONNX classifier: how to run it (LoadedModel.run's signature) and its weights."""

    path: Path
    run: RunFn
    weights: ClassifierWeights


def load_classifier(path: Path) -> Classifier:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(images: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        batch = images.reshape(-1, 28, 28, 1).astype(np.float32, copy=False)
        return dict(zip(outputs, session.run(outputs, {"input": batch}), strict=True))

    return Classifier(path, run, classifier_weights(onnx.load(str(path))))


@pytest.fixture(scope="session")
def shipped() -> Classifier:
    return load_classifier(ROOT / "models" / "classifier.onnx")


@pytest.fixture(scope="session")
def tanh(request, mnist_dir: Path, tmp_path_factory) -> Classifier:
    """The tanh-adam variant of the tiny sweep (1 epoch on 2,000 digits: weak, but a real tanh network).

    When other tests of the session use the ``tiny_sweep`` fixture, its variant is taken (no extra training);
    otherwise the same recipe trains tanh-adam alone, a quarter of the sweep's time.
    """
    if any("tiny_sweep" in item.fixturenames for item in request.session.items):
        folder = request.getfixturevalue("tiny_sweep")
    else:
        from training.sweep import sweep

        folder = tmp_path_factory.mktemp("sweep") / "variants"
        sweep(mnist_dir, folder, ("tanh",), ("adam",), epochs=1, train_limit=2000, test_limit=500)
    return load_classifier(folder / "tanh-adam" / "classifier.onnx")


@pytest.fixture(params=CLASSIFIERS)
def classifier(request) -> Classifier:
    """Each classifier in turn: the shipped ReLU model and the tanh variant."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def digits(mnist_test) -> tuple[np.ndarray, np.ndarray]:
    """The first DIGITS real test digits in [0, 1] and their labels (the targets)."""
    images, labels = mnist_test
    return images[:DIGITS].astype(np.float32) / 255, labels[:DIGITS].astype(np.intp)
