"""Max-sensitivity (Yeh et al. 2019): how much the map can change when the image moves by at most ``radius``.

SENS_MAX = max over ``samples`` draws of ‖Φ(x + δ) − Φ(x)‖₂, δ uniform in [−radius, radius] per pixel (the
paper's Monte Carlo estimate over the L∞ ball; the noisy image is not clipped), Φ the attribution method itself
run again on each noisy copy for the same target.

Against Quantus 0.6.0's MaxSensitivity: the same draws (uniform per pixel, its ``lower_bound`` as the radius) and
the same Frobenius norm of the difference, but Quantus divides each sample by ‖Φ(x)‖₂ (a relative sensitivity);
the paper's is not divided, and that is what ``max_sensitivity`` returns (``relative`` is Quantus's). Quantus's
noise comes from numpy's global generator, ours from a seeded one (or the caller's ``noise``).

Images (N, C, H, W) in an imported model's normalised input: the radius stays in [0, 1] pixel units, each
channel's noise times the model's 1 / std of that channel (``scale``), so that the ball is the same in the picture
whatever the normalisation (Quantus draws in the input space it is given: the same for an unnormalised model).
"""

from __future__ import annotations

import numpy as np

from service.quality.callables import ExplainFn

RADIUS = 0.2  # Yeh et al.'s and Quantus's default, in pixel units of [0, 1] images
SAMPLES = 10


def draw_noise(
    shape: tuple[int, ...], samples: int, radius: float, seed: int, scale: np.ndarray | None = None
) -> np.ndarray:
    """(samples, *shape) uniform perturbations in [−radius, radius]; with ``scale`` (C,) and images' ``shape``
    (N, C, H, W), each channel's times its scale."""
    drawn = np.random.default_rng(seed).uniform(-radius, radius, (samples, *shape))
    if scale is None:
        return drawn
    return drawn * np.asarray(scale, np.float64).reshape(1, 1, -1, 1, 1)


def max_sensitivity(
    explain: ExplainFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) the largest ‖Φ(x + δ_s) − Φ(x)‖₂ over the ``noise`` samples δ_s (samples, N, ...) and (N,) the same
    divided by ‖Φ(x)‖₂ (Quantus's relative form; NaN for an all-zero map). The method runs once per sample, on
    all images at once."""
    n, samples = len(images), len(noise)
    flat_maps = np.asarray(maps, np.float64).reshape(n, -1)
    noisy = (np.asarray(images, np.float64)[None] + noise).astype(np.float32).reshape(samples * n, *images.shape[1:])
    changed = np.asarray(explain(noisy, np.tile(np.asarray(targets), samples)), np.float64)
    distances = np.linalg.norm(changed.reshape(samples, n, -1) - flat_maps[None], axis=2)
    largest = distances.max(axis=0)
    norms = np.linalg.norm(flat_maps, axis=1)
    return largest, np.divide(largest, norms, out=np.full(n, np.nan), where=norms > 0)
