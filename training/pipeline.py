"""The whole offline run: load MNIST, train both networks, export to ONNX, check parity, write the manifest."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from service.contract import AUTOENCODER, CLASSIFIER, ModelEntry
from training.config import TrainConfig
from training.data import dataset_checksums, load_split
from training.export import check_parity, export_onnx, manifest_entry, run_onnx, write_manifest
from training.networks import exported_layers
from training.train import classification_metrics, reconstruction_metrics, to_input, train_autoencoder, train_classifier

PARITY_IMAGES = 512


def _slice(images: np.ndarray, labels: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    return (images[:limit], labels[:limit]) if limit else (images, labels)


def _export_checked(model, path: Path, x_test: np.ndarray) -> dict[str, float]:
    """Export every layer of interest to ONNX and check it against Keras on real test images."""
    names = exported_layers(model)
    export_onnx(model, path, names)
    return check_parity(model, path, names, x_test[:PARITY_IMAGES])


def _mean_epoch_seconds(history: dict) -> float:
    return round(float(np.mean(history["seconds"])), 2)


def load_data(
    data_dir: str | os.PathLike[str] | None, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The model inputs and labels of the training and test splits, sliced to the config's limits."""
    train_images, train_labels = _slice(*load_split(data_dir, "train"), config.train_limit)
    test_images, test_labels = _slice(*load_split(data_dir, "test"), config.test_limit)
    return to_input(train_images), train_labels, to_input(test_images), test_labels


def training_record(config: TrainConfig, train_images: int) -> dict:
    """What the manifest records about a run's inputs: the config, the training set size and the data checksums."""
    return {**config.as_dict(), "train_images": train_images, "data_sha256": dataset_checksums()}


def train_classifier_entry(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, config: TrainConfig, out_dir: Path
) -> ModelEntry:
    """Train the classifier, export ``out_dir/classifier.onnx`` with a parity check, and return its manifest entry.

    Metrics are computed from the exported ONNX file, so they are the accuracy the service will have.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    classifier, history = train_classifier(x_train, y_train, x_test, y_test, config)
    path = out_dir / "classifier.onnx"
    parity = _export_checked(classifier, path, x_test)
    metrics = classification_metrics(run_onnx(path, x_test, "output"), y_test)
    metrics["seconds_per_epoch"] = _mean_epoch_seconds(history)
    return manifest_entry(classifier, path, training_record(config, len(x_train)), metrics, history, parity)


def train_and_export(data_dir: str | os.PathLike[str] | None, out_dir: Path, config: TrainConfig) -> Path:
    """Train the classifier and the autoencoder per ``config`` and write both ONNX files and ``manifest.json``."""
    x_train, train_labels, x_test, test_labels = load_data(data_dir, config)
    classifier = train_classifier_entry(x_train, train_labels, x_test, test_labels, config, out_dir)

    autoencoder, ae_history = train_autoencoder(x_train, x_test, config)
    autoencoder_path = out_dir / "autoencoder.onnx"
    ae_parity = _export_checked(autoencoder, autoencoder_path, x_test)
    ae_metrics = reconstruction_metrics(run_onnx(autoencoder_path, x_test, "decoded"), x_test)
    ae_metrics["seconds_per_epoch"] = _mean_epoch_seconds(ae_history)
    ae_training = {
        **training_record(config, len(x_train)),
        "epochs": config.autoencoder_epochs,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "schedule": "constant",
        "shift": 0,
        "loss": "binary_crossentropy",
    }

    return write_manifest(
        out_dir,
        {
            CLASSIFIER: classifier,
            AUTOENCODER: manifest_entry(autoencoder, autoencoder_path, ae_training, ae_metrics, ae_history, ae_parity),
        },
    )
