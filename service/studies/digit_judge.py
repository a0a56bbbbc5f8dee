""" "Is this a digit?": a judge built from what one classification already computes (no extra network run).

Two parts, each put on one scale against the analysed test digits (minus the part's own calibration point, over the
digits' inter-quartile range; see ``training.judge``); the judge's score is the larger of the two, so higher means
less like a digit:

- the *shape* part, a small network (one hidden ReLU layer) over the classifier's own view of the image: the dense1
  vector, the entropy and the log of the largest class probability, and the log of the Mahalanobis distance in
  dense1 space to the nearest class mean (shared covariance, Lee et al. 2018). It is trained by
  ``python -m training analyze`` on training digits against synthetic non-digits made of random strokes, arcs and
  rings (outlier exposure, Hendrycks et al. 2019); letters and noise are never shown to it;
- the *ink* part, the mean intensity of the 28x28 input: MNIST digits cover a small part of the field, so noise and
  clutter, which the classifier maps onto confident digits, stand out here.

The threshold is calibrated on the test set by ``analyze``; its parameters travel in ``DIGIT_JUDGE_FILE``.
Pure numpy: the extra work per image is a few small matrix products. The service runs the same formula as ONNX nodes
in the classifier's own run (``service.studies.digit_judge_graph``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.contract import DigitJudge as JudgeSection

OUTPUTS = ("dense1", "output")  # what ``DigitJudgeModel.scores`` reads of the classifier's run
SCORE = "digit_like_score"  # the judged classifier's extra output: the judge's score per image, (N,)
ARRAYS = ("means", "whitening", "mu", "sd", "w1", "b1", "w2", "b2", "centre", "spread")
PARTS = ("shape", "ink")


def features(dense1: np.ndarray, probabilities: np.ndarray, means: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """The shape part's inputs per image: dense1, the entropy, log of the top probability, log Mahalanobis distance
    to the nearest class mean (``whitening`` W with W W^T the inverse shared covariance): (N, units + 3)."""
    p = np.clip(probabilities.astype(np.float64), 1e-7, 1.0)
    entropy = -(p * np.log(p)).sum(axis=1, keepdims=True)
    top = np.log(p.max(axis=1, keepdims=True))
    return np.concatenate([dense1, entropy, top, mahalanobis(dense1, means, whitening)], axis=1)


def mahalanobis(dense1: np.ndarray, means: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """Log of the squared Mahalanobis distance to the nearest class mean, (N, 1)."""
    z = dense1.astype(np.float64) @ whitening
    centres = means @ whitening
    squared = (z * z).sum(axis=1, keepdims=True) - 2 * z @ centres.T + (centres * centres).sum(axis=1)[None, :]
    return np.log(np.maximum(squared.min(axis=1, keepdims=True), 1e-9))


def ink(images: np.ndarray) -> np.ndarray:
    """The ink part: each 28x28 input's mean intensity, (N,)."""
    return np.asarray(images, np.float64).reshape(len(images), -1).mean(axis=1)


def shape_logit(x: np.ndarray, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The shape network's logit (higher: less like a digit) for features ``x``, (N,)."""
    z = (x - arrays["mu"]) / arrays["sd"]
    hidden = np.maximum(z @ arrays["w1"] + arrays["b1"], 0.0)
    return (hidden @ arrays["w2"] + arrays["b2"]).reshape(-1)


def part_scores(
    arrays: dict[str, np.ndarray], images: np.ndarray, dense1: np.ndarray, probabilities: np.ndarray
) -> np.ndarray:
    """The raw score of each part per image (N, 2): the shape logit and the ink."""
    x = features(dense1, probabilities, arrays["means"], arrays["whitening"])
    return np.stack([shape_logit(x, arrays), ink(images)], axis=1)


@dataclass(frozen=True)
class DigitJudgeModel:
    """The calibrated judge: its arrays and the threshold on its score above which an input is not digit-like.

    ``scores`` computes what ``part_scores`` defines with the constant work done once at load: the standardisation
    folded into the first layer, the class means whitened, float32 throughout (a few microseconds per image)."""

    arrays: dict[str, np.ndarray]
    threshold: float

    def __post_init__(self) -> None:
        a = self.arrays
        w1 = a["w1"] / a["sd"][:, None]
        units = a["means"].shape[1]
        centres = a["means"] @ a["whitening"]
        folded = {
            "w_dense1": np.concatenate([a["whitening"], w1[:units]], axis=1),
            "w_summary": w1[units:],
            "b1": a["b1"] - (a["mu"] / a["sd"]) @ a["w1"],
            "w2": a["w2"].reshape(-1) / a["spread"][0],
            "centres_t": -2 * centres.T,
            "centre_norms": (centres * centres).sum(axis=1),
        }
        object.__setattr__(self, "_fast", {name: np.asarray(v, np.float32) for name, v in folded.items()})
        offsets = ((a["b2"][0] - a["centre"][0]) / a["spread"][0], a["centre"][1], a["spread"][1] * 28 * 28, units)
        object.__setattr__(self, "_offsets", offsets)

    def scores(self, images: np.ndarray, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The judge's score per image from the inputs (N, 28, 28) and the classifier's ``OUTPUTS`` (N,)."""
        f, (shape_offset, ink_centre, ink_scale, units) = self._fast, self._offsets
        p = np.maximum(outputs["output"], 1e-7)
        both = outputs["dense1"] @ f["w_dense1"]  # whitened dense1, and its part of the first layer
        z = both[:, :units]
        squared = np.einsum("ij,ij->i", z, z) + (z @ f["centres_t"] + f["centre_norms"]).min(axis=1)
        summary = np.stack([np.einsum("ij,ij->i", p, -np.log(p)), p.max(axis=1), np.maximum(squared, 1e-9)], axis=1)
        summary[:, 1:] = np.log(summary[:, 1:])
        hidden = np.maximum(both[:, units:] + summary @ f["w_summary"] + f["b1"], 0.0)
        ink = (images.reshape(len(images), -1).sum(axis=1) - ink_centre * 28 * 28) / ink_scale
        return np.maximum(hidden @ f["w2"] + shape_offset, ink)


def load_judge(arrays: dict[str, np.ndarray], section: JudgeSection) -> DigitJudgeModel:
    """The judge from its file's arrays and its section of the statistics; ValueError when an array is missing or
    the shapes disagree."""
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise ValueError(f"arrays {', '.join(missing)} are missing")
    units = arrays["means"].shape[1]
    expected = {"whitening": (units, units), "mu": (units + 3,), "sd": (units + 3,), "centre": (2,), "spread": (2,)}
    wrong = [name for name, shape in expected.items() if arrays[name].shape != shape]
    if wrong or arrays["w1"].shape[0] != units + 3:
        raise ValueError(f"arrays {', '.join(wrong) or 'w1'} have the wrong shape")
    return DigitJudgeModel({name: arrays[name].astype(np.float64) for name in ARRAYS}, float(section.threshold))
