"""Shared fixtures: where real MNIST lies, and the real test split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from training.data import load_split

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST folder: $MNIST_DIR, else ../shared/mnist beside the checkout."""
    path = Path(os.environ.get("MNIST_DIR") or ROOT.parent / "shared" / "mnist")
    if not (path / "t10k-images-idx3-ubyte.gz").exists() and not (path / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"real MNIST not found in {path}; set MNIST_DIR")
    return path


@pytest.fixture(scope="session")
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 real test images (uint8, N x 28 x 28) and labels."""
    return load_split(mnist_dir, "test")


@pytest.fixture(scope="session")
def tiny_sweep(mnist_dir: Path, tmp_path_factory) -> Path:
    """``python -m training sweep`` on a small slice: {relu, tanh} x {adam, sgd}, 1 epoch, 2,000 training and 500
    test images; the folder holding the variants and the comparison (shared by the training and API tests)."""
    from training.sweep import sweep

    out = tmp_path_factory.mktemp("sweep") / "variants"
    sweep(mnist_dir, out, ("relu", "tanh"), ("adam", "sgd"), epochs=1, train_limit=2000, test_limit=500)
    return out
