"""Comparing attribution maps: per-map max abs difference relative to the reference map's max abs, and Pearson."""

from __future__ import annotations

import numpy as np


def relative_max_diff(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per map (first axis): max |ours - reference| / max |reference| (0 where both maps are all zero, inf where
    only the reference is)."""
    n = len(reference)
    diff = np.abs(ours - reference).reshape(n, -1).max(axis=1).astype(np.float64)
    scale = np.abs(reference).reshape(n, -1).max(axis=1).astype(np.float64)
    return np.divide(diff, scale, out=np.where(diff > 0, np.inf, 0.0), where=scale > 0)


def assert_maps_close(ours: np.ndarray, reference: np.ndarray, tolerance: float = 1e-4) -> None:
    """Every map within ``tolerance`` of its reference, relative to the reference map's max abs."""
    assert ours.shape == reference.shape
    relative = relative_max_diff(ours, reference)
    assert relative.max() <= tolerance, f"map {relative.argmax()} differs by {relative.max():.2e} of its max abs"


def pearson(ours: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation of all maps' values together."""
    return float(np.corrcoef(ours.ravel(), reference.ravel())[0, 1])
