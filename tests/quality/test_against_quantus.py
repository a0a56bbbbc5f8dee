"""Every metric of service.quality against Quantus 0.6.0 on the PyTorch copy of the shipped classifier, for the
same images, maps and random draws (Quantus draws from numpy's global generator: each test seeds it and hands our
metric the draws Quantus will make); where the paper and Quantus differ, the difference itself is tested."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
from quantus.functions import perturb_func, similarity_func
from quantus.helpers.model.pytorch_model import PyTorchModel

from references.torch_classifier import TorchClassifier
from service.graphs.classifier_weights import classifier_weights
from service.quality import randomisation
from service.quality.callables import normalised_by_max
from service.quality.completeness import completeness_gap
from service.quality.effective_complexity import effective_complexity
from service.quality.faithfulness_correlation import faithfulness_correlation
from service.quality.max_sensitivity import max_sensitivity
from service.quality.road import PERCENTAGES, imputed, road
from service.quality.similarity import spearman, ssim
from service.quality.sparseness import sparseness
from tests.quality.conftest import logits_of, saliency_of, torch_saliency

SEED = 7


def channels(array: np.ndarray) -> np.ndarray:
    return np.asarray(array)[:, None]


def test_spearman_equals_quantus_correlation_spearman(sample):
    a, b = sample[2][0], sample[2][1]
    expected = similarity_func.correlation_spearman(a.ravel(), b.ravel())
    assert spearman(a, b) == pytest.approx(expected, abs=1e-12)


def test_ssim_equals_quantus_ssim(sample):
    a, b = normalised_by_max(sample[2][:2])
    assert ssim(a, b) == pytest.approx(similarity_func.ssim(a, b), abs=1e-12)


def test_sparseness_equals_quantus_up_to_its_epsilon(sample):
    expected = quantus.Sparseness(disable_warnings=True)(
        model=None, x_batch=channels(sample[0]), y_batch=sample[1], a_batch=channels(sample[2])
    )
    np.testing.assert_allclose(sparseness(sample[2]), expected, atol=1e-4)


def test_sparseness_leaves_out_quantus_epsilon_as_the_gini_index_defines_it():
    """Two equal pixels and the rest zero: the Gini index is exactly 1 − 2/d; Quantus's 1e-7 lowers it."""
    d = 784
    flat = np.zeros((1, d))
    flat[0, :2] = 1.0
    maps = flat.reshape(1, 28, 28)
    quantus_value = quantus.Sparseness(disable_warnings=True)(
        model=None, x_batch=channels(maps), y_batch=np.zeros(1, int), a_batch=channels(maps)
    )[0]
    assert sparseness(maps)[0] == pytest.approx(1 - 2 / d, abs=1e-12)
    assert quantus_value < 1 - 2 / d - 1e-6


def test_effective_complexity_equals_quantus(sample):
    maps = sample[2].astype(np.float64)  # Quantus normalises in the maps' dtype, ours in float64
    expected = quantus.EffectiveComplexity(disable_warnings=True)(
        model=None, x_batch=channels(sample[0]), y_batch=sample[1], a_batch=channels(maps)
    )
    # a pixel whose |map| / max is within float32 rounding of eps may fall either side (Quantus divides in float32)
    np.testing.assert_allclose(effective_complexity(maps), expected, atol=1)


def test_faithfulness_correlation_equals_a_brute_force_loop_in_torch(sample, weights, torch_model):
    """Bhatt et al.'s μ_F one subset at a time: the PyTorch copy's logit drop against the map's sum over S."""
    import torch

    images, targets, maps = sample[0][:3], sample[1][:3], sample[2][:3]
    subsets = [draw for draw in np.random.default_rng(SEED).integers(0, 784, (3, 20, 78))]
    expected = []
    for image, target, heat, rows in zip(images, targets, maps, subsets):
        sums, drops = [], []
        with torch.no_grad():
            full = torch_model(torch.from_numpy(image[None, None]))[0, target].item()
            for subset in rows:
                masked = image.ravel().copy()
                masked[subset] = 0
                drops.append(full - torch_model(torch.from_numpy(masked.reshape(1, 1, 28, 28)))[0, target].item())
                sums.append(heat.ravel()[subset].sum())
        expected.append(np.corrcoef(sums, drops)[0, 1])
    ours = faithfulness_correlation(logits_of(weights), images, targets, maps, subsets)
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_max_sensitivity_equals_quantus_without_its_division_by_the_map_norm(sample, weights, torch_model):
    """The paper's SENS_MAX is the largest change itself; Quantus's default divides it by ‖Φ(x)‖ (``relative``)."""
    images, targets, maps = sample
    samples, radius = 5, 0.2
    np.random.seed(SEED)
    noise = np.stack([np.random.uniform(-radius, radius, (len(images), 784)) for _ in range(samples)])
    kwargs = dict(nr_samples=samples, lower_bound=radius, disable_warnings=True)
    call = dict(
        model=torch_model,
        x_batch=channels(images),
        y_batch=targets,
        a_batch=channels(maps),
        explain_func=torch_saliency,
        batch_size=len(images),
    )
    np.random.seed(SEED)
    paper = quantus.MaxSensitivity(norm_denominator=lambda a: np.ones(len(a)), **kwargs)(**call)
    np.random.seed(SEED)
    relative = quantus.MaxSensitivity(**kwargs)(**call)
    largest, ours_relative = max_sensitivity(
        saliency_of(weights), images, targets, maps, noise.reshape(samples, len(images), 28, 28)
    )
    np.testing.assert_allclose(largest, paper, rtol=1e-4)
    np.testing.assert_allclose(ours_relative, relative, rtol=1e-4)
    assert not np.allclose(largest, relative)


def test_noisy_linear_imputation_equals_quantus_for_the_same_noise(sample):
    image = sample[0][0]
    removed = np.argsort(-sample[2][0].ravel(), kind="stable")[:300]
    np.random.seed(SEED)
    expected = perturb_func.noisy_linear_imputation(image[None], removed, noise=0.01)[0]
    noise = 0.01 * np.random.RandomState(SEED).randn(len(removed))
    np.testing.assert_allclose(imputed(image, removed, noise), expected, atol=1e-9)


@pytest.mark.parametrize("most_relevant_first", [True, False], ids=["morf", "lerf"])
def test_road_equals_quantus_road_without_noise(sample, weights, torch_model, most_relevant_first):
    """Quantus ranks most relevant first; least relevant first is its ROAD on the negated map."""
    images, targets, maps = sample
    ranked = maps if most_relevant_first else -maps
    expected = quantus.ROAD(percentages=list(PERCENTAGES), noise=0.0, disable_warnings=True)(
        model=torch_model, x_batch=channels(images), y_batch=targets, a_batch=channels(ranked), batch_size=len(images)
    )
    correct, _ = road(logits_of(weights), images, targets, maps, most_relevant_first, noise=0.0)
    np.testing.assert_allclose(correct.mean(axis=0), [expected[p] for p in PERCENTAGES])


def test_completeness_gap_is_the_map_sum_minus_the_torch_logit_change(sample, weights, torch_model):
    import torch

    from service.attribution.integrated_gradients import integrated_gradients

    images, targets = sample[0][:4], sample[1][:4]
    maps = integrated_gradients(None, weights, images, targets, steps=16)
    with torch.no_grad():
        logits = torch_model(torch.from_numpy(np.concatenate([images, 0 * images])[:, None])).numpy()
    change = logits[np.arange(4), targets] - logits[4 + np.arange(4), targets]
    np.testing.assert_allclose(
        completeness_gap(logits_of(weights), images, targets, maps), maps.sum(axis=(1, 2)) - change, atol=1e-4
    )


def test_random_logit_is_the_2d_ssim_of_the_normalised_maps_where_quantus_flattens_them(sample, weights, torch_model):
    """Quantus's RandomLogit reshapes the maps to (N, 784) before its SSIM, a 1-D signal; SSIM is defined over the
    image (Wang et al. 2004), so ours is scikit-image's over the 28 x 28 maps, and Quantus's is its 1-D one."""
    from skimage.metrics import structural_similarity

    images, targets, maps = sample[0][:1], sample[1][:1], sample[2][:1]
    others = np.array([(targets[0] + 1) % 10])
    other_map = saliency_of(weights)(images, others)
    a, b = normalised_by_max(maps)[0], normalised_by_max(other_map)[0]
    span = float(max(a.max(), b.max()) - min(a.min(), b.min()))
    ours = randomisation.random_logit(saliency_of(weights), images, maps, others)[0][0]
    assert ours == pytest.approx(structural_similarity(a, b, data_range=span), abs=1e-9)
    assert similarity_func.ssim(a.ravel(), b.ravel()) != pytest.approx(ours, abs=1e-3)


def test_parameter_randomisation_equals_quantus_mprt_for_the_same_redrawn_layers(
    sample, graph, weights, torch_model, monkeypatch
):
    """Quantus's layer generator is given the ONNX copies' re-drawn weights, in the same cascade."""
    images, targets, maps = sample[0][:4], sample[1][:4], sample[2][:4]
    cascade = randomisation.parametrised_layers(graph)[::-1]
    copies = [classifier_weights(randomisation.randomised(graph, cascade[: k + 1], SEED)) for k in range(len(cascade))]

    def same_draws(self, order="top_down", seed=42):
        for layer, copy in zip(cascade, copies):
            yield layer.name, TorchClassifier(copy, softmax=False).eval()

    monkeypatch.setattr(PyTorchModel, "get_random_layer_generator", same_draws)
    monkeypatch.setattr(PyTorchModel, "random_layer_generator_length", property(lambda self: len(cascade)))
    expected = quantus.MPRT(disable_warnings=True)(
        model=torch_model,
        x_batch=channels(images),
        y_batch=targets,
        a_batch=channels(maps),
        explain_func=torch_saliency,
        batch_size=len(images),
    )
    ours = randomisation.parameter_randomisation(
        graph, lambda g: saliency_of(classifier_weights(g)), images, targets, maps, SEED
    )
    for step in ours:
        np.testing.assert_allclose(step.spearman, expected[step.layer], atol=1e-3)
