"""The whole offline run: load MNIST, train both networks, export to ONNX, check parity, write the manifest."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from service.contract import AUTOENCODER, CLASSIFIER, EVOLUTION_FILE, MANIFEST_FILE, ModelEntry
from service.runtime.registry import ModelLoadError, read_manifest
from training.config import TrainConfig
from training.data import dataset_checksums, load_split, sha256_of
from training.evolution import SUBSET, EvolutionRecorder, recorded_epochs
from training.export import check_parity, export_onnx, manifest_entry, run_onnx, write_manifest
from training.networks import exported_layers, float32_classifier
from training.train import classification_metrics, reconstruction_metrics, to_input, train_autoencoder, train_classifier

PARITY_IMAGES = 512


class PipelineError(RuntimeError):
    """The run cannot be done as asked (a model to keep is not there); the message says what is missing."""


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
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    config: TrainConfig,
    out_dir: Path,
    record_evolution: bool = False,
    callbacks: list = (),
) -> ModelEntry:
    """Train the classifier, export ``out_dir/classifier.onnx`` with a parity check, and return its manifest entry.

    Metrics are computed from the exported ONNX file, so they are the accuracy the service will have. With
    ``record_evolution`` the features of the first ``SUBSET`` test images are recorded while it trains
    (``training.evolution``) into ``out_dir/EVOLUTION_FILE``, which the entry names. ``callbacks`` (Keras) run after
    the recorder, e.g. to print progress.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    recorder = None
    if record_evolution:
        images = np.rint(x_test[:SUBSET, ..., 0] * 255).astype(np.uint8)
        recorder = EvolutionRecorder(
            images,
            np.arange(len(images)),
            recorded_epochs(config.epochs),
            partial(float32_classifier, activation=config.activation),
        )
    classifier, history = train_classifier(
        x_train, y_train, x_test, y_test, config, [*([recorder] if recorder else []), *callbacks]
    )
    path = out_dir / "classifier.onnx"
    parity = _export_checked(classifier, path, x_test)
    metrics = classification_metrics(run_onnx(path, x_test, "output"), y_test)
    metrics["seconds_per_epoch"] = _mean_epoch_seconds(history)
    evolution = recorder.write(out_dir / EVOLUTION_FILE) if recorder else None
    return manifest_entry(classifier, path, training_record(config, len(x_train)), metrics, history, parity, evolution)


def train_autoencoder_entry(x_train: np.ndarray, x_test: np.ndarray, config: TrainConfig, out_dir: Path) -> ModelEntry:
    """Train the autoencoder, export ``out_dir/autoencoder.onnx`` with a parity check, and return its manifest entry."""
    autoencoder, history = train_autoencoder(x_train, x_test, config)
    path = out_dir / "autoencoder.onnx"
    parity = _export_checked(autoencoder, path, x_test)
    metrics = reconstruction_metrics(run_onnx(path, x_test, "decoded"), x_test)
    metrics["seconds_per_epoch"] = _mean_epoch_seconds(history)
    training = {
        **training_record(config, len(x_train)),
        "epochs": config.autoencoder_epochs,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "schedule": "constant",
        "shift": 0,
        "loss": "binary_crossentropy",
    }
    return manifest_entry(autoencoder, path, training, metrics, history, parity)


def kept_entry(out_dir: Path, name: str) -> ModelEntry:
    """The entry of a model not retrained: from ``out_dir``'s manifest, its file checked against its SHA-256."""
    try:
        entry = read_manifest(out_dir).models[name]
    except (ModelLoadError, KeyError) as exc:
        raise PipelineError(f"cannot keep the {name}: {out_dir / MANIFEST_FILE} does not list it ({exc})") from exc
    if not (out_dir / entry.file).is_file() or sha256_of(out_dir / entry.file) != entry.sha256:
        raise PipelineError(
            f"cannot keep the {name}: {out_dir / entry.file} is missing or not the file the manifest lists"
        )
    return entry


def train_and_export(
    data_dir: str | os.PathLike[str] | None, out_dir: Path, config: TrainConfig, only: str | None = None
) -> Path:
    """Train the classifier (recording its feature evolution) and the autoencoder per ``config``, and write both
    ONNX files and ``manifest.json``; ``only`` retrains one of them and keeps the other's file and entry."""
    if only not in (None, CLASSIFIER, AUTOENCODER):
        raise ValueError(f"only must be {CLASSIFIER} or {AUTOENCODER}, got {only!r}")
    kept = {name: kept_entry(out_dir, name) for name in (CLASSIFIER, AUTOENCODER) if only not in (None, name)}
    x_train, train_labels, x_test, test_labels = load_data(data_dir, config)
    entries = {}
    if CLASSIFIER not in kept:
        entries[CLASSIFIER] = train_classifier_entry(
            x_train, train_labels, x_test, test_labels, config, out_dir, record_evolution=True
        )
    if AUTOENCODER not in kept:
        entries[AUTOENCODER] = train_autoencoder_entry(x_train, x_test, config, out_dir)
    return write_manifest(out_dir, {name: kept.get(name) or entries[name] for name in (CLASSIFIER, AUTOENCODER)})
