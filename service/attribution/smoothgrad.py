"""SmoothGrad (Smilkov et al. 2017): the mean saliency over noisy copies of the image.

The noise is Gaussian with standard deviation ``noise`` in pixel units (the image range is [0, 1], so this is
also σ/(max - min) of the paper), drawn from ``seed`` once per call as ``samples`` 28x28 fields that every image
of the batch shares: an image's map does not depend on what else is in its batch. The noisy images are not
clipped to [0, 1] (Captum's NoiseTunnel does not clip either).
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from service.attribution.any_model import noise_fields, served_smoothgrad
from service.attribution.backward import summed_input_gradients
from service.attribution.inputs import Range, RunFn, batch
from service.attribution.method import AnyModel, Method
from service.graphs.classifier_weights import IMAGE_SIZE, ClassifierWeights

SAMPLES = Range(default=25, low=1, high=200, text="noisy copies", limit="max_samples")
NOISE = Range(default=0.15, low=0.0, high=1.0, integer=False, text="noise standard deviation, {low:g}-{high:g}")
SEED = Range(default=0, low=0, high=2**32 - 1, text="the noise's random seed")


def smoothgrad_noise(samples: int, noise: float, seed: int) -> np.ndarray:
    """The (samples, 28, 28) float32 noise fields that smoothgrad adds for these parameters.

    ``abs``: a noise of -0.0 passes the range check and means no noise, but numpy refuses a negative-signed scale.
    """
    return noise_fields((IMAGE_SIZE, IMAGE_SIZE), samples, noise, seed)


def smoothgrad(
    run: RunFn,
    weights: ClassifierWeights,
    images: np.ndarray,
    targets: np.ndarray,
    samples: int = SAMPLES.default,
    noise: float = NOISE.default,
    seed: int = SEED.default,
) -> np.ndarray:
    """Mean over the noisy copies x + ε_s of ∂logit_target/∂x, for each image (N,28,28); signed."""
    SAMPLES.check("samples", samples)
    NOISE.check("noise", noise)
    SEED.check("seed", seed)
    x, t = batch(images, targets)
    fields = smoothgrad_noise(samples, noise, seed)
    scale = np.full(samples, 1 / samples)
    return summed_input_gradients(weights, t, samples, lambda i, k: x[i] + fields[k], scale).astype(np.float32)


METHOD = Method(
    "smoothgrad",
    smoothgrad,
    title="SmoothGrad",
    parameters={"samples": SAMPLES, "noise": NOISE, "seed": SEED},
    evaluations=itemgetter("samples"),
    any_model=AnyModel(served_smoothgrad),
)
