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
