"""The whole offline run: load MNIST, train both networks, export to ONNX, check parity, write the manifest."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from training.config import TrainConfig
from training.data import dataset_checksums, load_split
from training.export import check_parity, export_onnx, manifest_entry, run_onnx, write_manifest
from training.networks import exported_layers
from training.train import (classification_metrics, reconstruction_metrics, to_input,
                            train_autoencoder, train_classifier)

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


def train_and_export(data_dir: str | os.PathLike[str] | None, out_dir: Path, config: TrainConfig) -> Path:
    """Train the classifier and the autoencoder per ``config`` and write both ONNX files and ``manifest.json``.

    Metrics are computed from the exported ONNX files, so they are the accuracy the service will have.
    """
    train_images, train_labels = _slice(*load_split(data_dir, "train"), config.train_limit)
    test_images, test_labels = _slice(*load_split(data_dir, "test"), config.test_limit)
    x_train, x_test = to_input(train_images), to_input(test_images)
    training = {**config.as_dict(), "train_images": len(x_train), "data_sha256": dataset_checksums()}
    out_dir.mkdir(parents=True, exist_ok=True)

    classifier, history = train_classifier(x_train, train_labels, x_test, test_labels, config)
    classifier_path = out_dir / "classifier.onnx"
    parity = _export_checked(classifier, classifier_path, x_test)
    metrics = classification_metrics(run_onnx(classifier_path, x_test, "output"), test_labels)
    metrics["seconds_per_epoch"] = _mean_epoch_seconds(history)

    autoencoder, ae_history = train_autoencoder(x_train, x_test, config)
    autoencoder_path = out_dir / "autoencoder.onnx"
    ae_parity = _export_checked(autoencoder, autoencoder_path, x_test)
    ae_metrics = reconstruction_metrics(run_onnx(autoencoder_path, x_test, "decoded"), x_test)
    ae_metrics["seconds_per_epoch"] = _mean_epoch_seconds(ae_history)
    ae_training = {**training, "epochs": config.autoencoder_epochs, "optimizer": "adam", "learning_rate": 1e-3,
                   "schedule": "constant", "shift": 0, "loss": "binary_crossentropy"}

    return write_manifest(out_dir, {
        "classifier": manifest_entry(classifier, classifier_path, training, metrics, history, parity),
        "autoencoder": manifest_entry(autoencoder, autoencoder_path, ae_training, ae_metrics, ae_history, ae_parity),
    })
