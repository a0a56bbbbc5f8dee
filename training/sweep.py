"""``python -m training sweep`` and ``train-variant``: the paper's classifier under every activation x optimizer,
trained alike and compared.

Every variant gets the same seed, data, batch size and epoch budget, its optimizer's customary learning rate
with a constant schedule, and no shift augmentation (so that only the activation and the optimizer differ).
``train_variant`` trains one into ``<out_dir>/<activation>-<optimizer>/``: ``classifier.onnx`` (parity-checked),
``manifest.json`` (the main manifest's format, with the history) and its dataset statistics (``training.analyze``,
without plots or studies), written in a hidden temporary folder (``.<name>-partial-<hex>``) renamed when done, so a
variant killed midway is never served. ``sweep`` is ``train_variant`` for each variant into a temporary sibling of
``out_dir``, then ``training.collect`` (``comparison.json``, ``comparison.md``), then that sibling swapped in, so
``out_dir`` holds one sweep's results, never a mix of two.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
import uuid
from itertools import product
from pathlib import Path

import keras
import numpy as np

from service.contract import COMPARISON_JSON, COMPARISON_MD, VARIANT_MODEL
from training.analyze import analyze
from training.collect import (  # noqa: F401  (re-exported: the sweep's pieces)
    collect,
    comparison_markdown,
    comparison_row,
    layer_summary,
    replace_folder,
    sibling,
)
from training.config import ACTIVATIONS, OPTIMIZERS, SWEEP_EPOCHS, SWEEP_OPTIMIZERS, TrainConfig, variant_name
from training.export import write_manifest
from training.pipeline import load_data, train_classifier_entry


def sweep_config(
    epochs: int = SWEEP_EPOCHS,
    batch_size: int = 128,
    seed: int = 42,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> TrainConfig:
    """What every variant shares: the budget and data, a constant schedule, no augmentation, no autoencoder."""
    return TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        schedule="constant",
        shift=0,
        autoencoder_epochs=0,
        seed=seed,
        train_limit=train_limit,
        test_limit=test_limit,
    )


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch, naming the variant: ``[3/16] relu-sgd epoch 2/5: val accuracy 97.81 %``."""

    def __init__(self, label: str, epochs: int) -> None:
        super().__init__()
        self.label, self.epochs = label, epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        print(
            f"{self.label} epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
            f"val accuracy {100 * logs.get('val_accuracy', float('nan')):.2f} %",
            flush=True,
        )


def train_variant(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    data_dir: str | os.PathLike[str] | None,
    out_dir: Path,
    base: TrainConfig,
    activation: str,
    optimizer: str,
    label: str = "",
) -> Path:
    """Train, export and analyse one variant into ``out_dir/<activation>-<optimizer>/`` (replacing it whole if it
    is there); the folder appears only once complete. Returns it."""
    name, began = variant_name(activation, optimizer), time.perf_counter()
    label = f"{label} {name}".strip()
    print(f"{label}: training {base.epochs} epoch(s) on {len(data[0]):,} images", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".{name}-partial-{uuid.uuid4().hex[:8]}"
    try:
        config = dataclasses.replace(base, activation=activation, optimizer=optimizer)
        entry = train_classifier_entry(*data, config, partial, callbacks=[EpochProgress(label, base.epochs)])
        write_manifest(partial, {VARIANT_MODEL: entry})
        analyze(partial, data_dir, limit=base.test_limit, plots=False, progress=False)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    replace_folder(partial, out_dir / name)
    print(
        f"{label}: test accuracy {100 * entry.metrics['test_accuracy']:.2f} %, "
        f"{entry.metrics['seconds_per_epoch']:.1f} s/epoch, {time.perf_counter() - began:.0f} s",
        flush=True,
    )
    return out_dir / name


def sweep(
    data_dir: str | os.PathLike[str] | None,
    out_dir: Path,
    activations: tuple[str, ...] = ACTIVATIONS,
    optimizers: tuple[str, ...] = SWEEP_OPTIMIZERS,
    epochs: int = SWEEP_EPOCHS,
    batch_size: int = 128,
    seed: int = 42,
    train_limit: int | None = None,
    test_limit: int | None = None,
) -> Path:
    """Train, export and analyse every variant, then replace ``out_dir`` with the results as a whole; returns the
    path of ``comparison.json``."""
    unknown = sorted(set(activations) - set(ACTIVATIONS)) + sorted(set(optimizers) - set(OPTIMIZERS))
    if unknown:
        raise ValueError(f"unknown activation or optimizer: {', '.join(unknown)}")
    base = sweep_config(epochs, batch_size, seed, train_limit, test_limit)
    data = load_data(data_dir, base)
    combinations = list(product(activations, optimizers))
    staging = sibling(out_dir, "new")
    staging.mkdir(parents=True)
    started = time.perf_counter()
    try:
        for number, (activation, optimizer) in enumerate(combinations, 1):
            train_variant(data, data_dir, staging, base, activation, optimizer, f"[{number}/{len(combinations)}]")
            print(f"{time.perf_counter() - started:.0f} s in all", flush=True)
        collect(staging, staging, tuple(variant_name(*combination) for combination in combinations))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, out_dir)
    path = out_dir / COMPARISON_JSON
    print(f"wrote {out_dir}: one folder per variant, {path.name} and {COMPARISON_MD}")
    return path
