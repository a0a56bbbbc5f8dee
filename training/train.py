"""Fitting and evaluating the two networks on MNIST, with per-epoch history and timing."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from training.config import OPTIMIZERS, TrainConfig
from training.networks import build_autoencoder, build_classifier


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the models' input."""
    return (images.astype(np.float32) / 255.0)[..., None]


def make_optimizer(name: str, learning_rate: float, schedule: str, total_steps: int) -> keras.optimizers.Optimizer:
    """One of OPTIMIZERS, with a constant or cosine-decayed learning rate."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown schedule {schedule!r}; choose constant or cosine")
    rate = (
        keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
        if schedule == "cosine"
        else learning_rate
    )
    if name == "adam":
        return keras.optimizers.Adam(rate)
    if name == "adadelta":
        return keras.optimizers.Adadelta(rate, rho=0.95, epsilon=1e-7)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9)
    return keras.optimizers.RMSprop(rate)


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch."""

    def on_train_begin(self, logs=None):
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _training_batches(x: np.ndarray, y: np.ndarray, config: TrainConfig) -> tf.data.Dataset:
    """Shuffled batches, randomly shifted by up to ``config.shift`` pixels (the architecture stays the paper's)."""
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed).batch(config.batch_size)
    if config.shift:
        factor = config.shift / 28
        translate = keras.layers.RandomTranslation(factor, factor, fill_mode="constant", seed=config.seed)
        data = data.map(
            lambda images, labels: (translate(images, training=True), labels), num_parallel_calls=tf.data.AUTOTUNE
        )
    return data.prefetch(tf.data.AUTOTUNE)


def train_classifier(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, config: TrainConfig
) -> tuple[keras.Model, dict]:
    """Fit the paper's classifier; returns the model and its per-epoch history and timing.

    The test set is the per-epoch validation data, as in the paper's Keras recipe; the epoch budget is
    fixed, so no choice is made on it.
    """
    keras.utils.set_random_seed(config.seed)
    model = build_classifier(config.activation)
    steps = config.epochs * int(np.ceil(len(x_train) / config.batch_size))
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.resolved_learning_rate(), config.schedule, steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    timer = EpochTimer()
    fit = model.fit(
        _training_batches(x_train, y_train, config),
        epochs=config.epochs,
        validation_data=(x_test, y_test),
        callbacks=[timer],
        verbose=2,
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    history["seconds"] = [round(s, 2) for s in timer.seconds]
    return model, history


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class accuracy, cross-entropy loss and the 10x10 confusion matrix (rows: true label)."""
    predicted = probabilities.argmax(axis=1)
    confusion = np.bincount(labels.astype(np.int64) * 10 + predicted, minlength=100).reshape(10, 10)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "per_class_accuracy": [round(float(a), 6) for a in per_class],
        "confusion_matrix": confusion.tolist(),
        "test_images": int(len(labels)),
    }


def train_autoencoder(x_train: np.ndarray, x_test: np.ndarray, config: TrainConfig) -> tuple[keras.Model, dict]:
    """Fit the autoencoder to reconstruct its input; returns the model and its history and timing."""
    keras.utils.set_random_seed(config.seed)
    model = build_autoencoder()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["mse"])
    timer = EpochTimer()
    fit = model.fit(
        x_train,
        x_train,
        batch_size=config.batch_size,
        epochs=config.autoencoder_epochs,
        shuffle=True,
        validation_data=(x_test, x_test),
        callbacks=[timer],
        verbose=2,
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    history["seconds"] = [round(s, 2) for s in timer.seconds]
    return model, history


def reconstruction_metrics(reconstructed: np.ndarray, originals: np.ndarray) -> dict:
    """Binary cross-entropy (the training loss) and mean squared error of reconstructions of the test images."""
    p = np.clip(reconstructed, 1e-7, 1 - 1e-7)
    bce = -(originals * np.log(p) + (1 - originals) * np.log(1 - p)).mean()
    return {
        "test_reconstruction_loss": float(bce),
        "test_mse": float(((reconstructed - originals) ** 2).mean()),
        "test_images": int(len(originals)),
    }
