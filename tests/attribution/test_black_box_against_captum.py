"""The black-box methods on the shipped classifier against independent implementations: Captum's FeatureAblation,
ShapleyValues and KernelShap with the same feature mask (the softmax output, baseline 0; KernelShap also over the
coalitions convlens drew), and a loop of RISE's definition over the same masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum._utils.models.linear_model import SkLearnLinearRegression
from captum.attr import FeatureAblation, KernelShap, ShapleyValues
from torch.utils.data import DataLoader, TensorDataset

from references.captum_maps import torch_classifier
from service.attribution import METHODS
from service.attribution.kernel_shap import coalitions_of
from service.attribution.perturbation import classifier_scores, segment_labels
from service.attribution.rise import rise_masks
from tests.attribution.maps import pearson, relative_max_diff

COUNT = 4


def labels_of(images: np.ndarray, segments: str) -> np.ndarray:
    return np.stack([segment_labels(image[None], segments) for image in images])


def captum(attribution, shipped, images, targets, segments, **options) -> np.ndarray:
    model = torch_classifier(shipped.weights, True)
    mask = torch.from_numpy(labels_of(images, segments)[:, None].astype(np.int64))
    x = torch.from_numpy(images[:, None].copy())
    target = torch.from_numpy(targets.astype(np.int64))
    if attribution is KernelShap:  # one image at a time: Captum's KernelShap fits one regression per call
        return np.concatenate(
            [
                KernelShap(model)
                .attribute(x[i : i + 1], target=target[i : i + 1], feature_mask=mask[i : i + 1], **options)
                .detach()
                .numpy()[:, 0]
                for i in range(len(x))
            ]
        )
    return attribution(model).attribute(x, target=target, feature_mask=mask, **options).detach().numpy()[:, 0]


@pytest.mark.parametrize("segments", ["grid:7", "slic:30"])
def test_feature_ablation_equals_captum_s_feature_ablation(shipped, digits, segments):
    images, targets = digits[0][:COUNT], digits[1][:COUNT]
    ours = METHODS["feature-ablation"].compute(shipped.run, shipped.weights, images, targets, segments=segments)
    reference = captum(FeatureAblation, shipped, images, targets, segments, perturbations_per_eval=64)
    assert np.abs(ours - reference).max() < 1e-5
    assert np.abs(reference).max() > 1e-3


def test_kernel_shap_with_every_coalition_equals_exact_shapley_values(shipped, digits):
    images, targets = digits[0][:COUNT], digits[1][:COUNT]
    ours = METHODS["kernel-shap"].compute(
        shipped.run, shipped.weights, images, targets, segments="grid:2", coalitions=14, seed=0
    )
    reference = captum(ShapleyValues, shipped, images, targets, "grid:2", perturbations_per_eval=64)
    assert np.abs(ours - reference).max() < 1e-5


def test_kernel_shap_on_grid_3_equals_shapley_values_by_their_subset_formula(shipped, digits):
    """9 segments: Captum's ShapleyValues would take 9! orderings; the subset formula takes 2^9 evaluations."""
    from itertools import product
    from math import factorial

    image, target = digits[0][0], int(digits[1][0])
    ours = METHODS["kernel-shap"].compute(
        shipped.run, shipped.weights, image[None], np.array([target]), segments="grid:3", coalitions=510
    )[0]
    labels = segment_labels(image[None], "grid:3")
    subsets = np.array(list(product((False, True), repeat=9)))
    copies = np.where(subsets[:, labels], image[None], 0).astype(np.float32)
    value = dict(
        zip(map(tuple, subsets), classifier_scores(shipped.run)(copies[:, None])[:, target].astype(np.float64))
    )
    phi = np.zeros(9)
    for subset, v in value.items():
        for j in range(9):
            if not subset[j]:
                size = sum(subset)
                with_j = subset[:j] + (True,) + subset[j + 1 :]
                phi[j] += factorial(size) * factorial(9 - size - 1) / factorial(9) * (value[with_j] - v)
    assert np.abs(ours - phi[labels]).max() < 1e-5


def test_sampled_kernel_shap_correlates_with_captum_s_kernel_shap(shipped, digits):
    images, targets = digits[0][:COUNT], digits[1][:COUNT]
    ours = METHODS["kernel-shap"].compute(
        shipped.run, shipped.weights, images, targets, segments="grid:4", coalitions=2000, seed=0
    )
    torch.manual_seed(0)
    reference = captum(KernelShap, shipped, images, targets, "grid:4", n_samples=2000, perturbations_per_eval=64)
    assert pearson(ours, reference) >= 0.95


class Float64LinearRegression(SkLearnLinearRegression):
    """Captum's default interpretable model of KernelShap (scikit-learn's LinearRegression with an intercept and
    the similarity weights), fitted in float64: LimeBase hands it float32 tensors, and scikit-learn solves float32
    data in float32, whose rounding (about 1e-4 on 30 segments) would hide the comparison."""

    def fit(self, train_data: DataLoader, **kwargs):
        tensors = [tensor.double() for tensor in train_data.dataset.tensors]
        return super().fit(DataLoader(TensorDataset(*tensors), batch_size=len(tensors[0])), **kwargs)


class KernelShapOverCoalitions(KernelShap):
    """Captum's KernelShap evaluating given coalitions (K, M) after its own first two, all segments and none,
    instead of drawing them: its similarity weights, baseline substitution, forward runs and scikit-learn
    regression, solved in float64 and with the end points weighed ``inf_weight``."""

    def __init__(self, forward_func, rows: np.ndarray, inf_weight: float) -> None:
        super().__init__(forward_func)
        self.rows = rows
        self.inf_weight = inf_weight
        self.interpretable_model = Float64LinearRegression()

    def kernel_shap_perturb_generator(self, original_inp, **kwargs):
        count = self.rows.shape[1]
        yield torch.ones(1, count, dtype=torch.long)
        yield torch.zeros(1, count, dtype=torch.long)
        for row in self.rows:
            yield torch.from_numpy(row[None].astype(np.int64))


@pytest.mark.parametrize("segments", ["grid:4", "slic:30"])
def test_sampled_kernel_shap_equals_captum_s_kernel_shap_over_the_same_coalitions(shipped, digits, segments):
    """Captum weighs all segments and none by ``inf_weight`` (1e6) in an unconstrained regression with an intercept;
    convlens imposes f(∅) and Σφ = f(all) − f(∅) exactly, the limit of Captum's solution as that weight grows. With
    the weight at 1e10 and the regression in float64 the two agree to about 5e-8 (at Captum's 1e6 they differ by
    about 7e-6 in float64 and 2e-4 in Captum's float32, on 30 segments)."""
    images, targets = digits[0][:COUNT], digits[1][:COUNT]
    coalitions, seed = 300, 5
    ours = METHODS["kernel-shap"].compute(
        shipped.run, shipped.weights, images, targets, segments=segments, coalitions=coalitions, seed=seed
    )
    model = torch_classifier(shipped.weights, True)
    for image, target, our_map in zip(images, targets, ours, strict=True):
        labels = segment_labels(image[None], segments)
        rows, _ = coalitions_of(int(labels.max()) + 1, coalitions, seed)
        expected = KernelShapOverCoalitions(model, rows, inf_weight=1e10).attribute(
            torch.from_numpy(image[None, None].copy()),
            target=int(target),
            feature_mask=torch.from_numpy(labels[None, None].astype(np.int64)),
            n_samples=coalitions + 2,
            perturbations_per_eval=64,
        )
        assert np.abs(our_map - expected.detach().numpy()[0, 0]).max() < 1e-5
        assert np.abs(our_map).max() > 1e-3


def test_rise_equals_a_loop_over_its_definition(shipped, digits):
    images, targets = digits[0][:COUNT], digits[1][:COUNT]
    parameters = {"masks": 300, "cells": 7, "keep": 0.5, "seed": 3}
    ours = METHODS["rise"].compute(shipped.run, shipped.weights, images, targets, **parameters)
    masks = rise_masks(300, 7, 0.5, 3, 28, 28)
    scores = classifier_scores(shipped.run)
    for image, target, map_ in zip(images, targets, ours, strict=True):
        loop = np.zeros((28, 28))
        for mask in masks:
            loop += scores((image * mask)[None, None])[0, target] * mask
        assert relative_max_diff(map_[None], (loop / (300 * 0.5))[None]).max() < 1e-5


def test_rise_masks_are_reproducible_by_seed_and_differ_between_seeds():
    assert np.array_equal(rise_masks(50, 7, 0.5, 11, 28, 28), rise_masks(50, 7, 0.5, 11, 28, 28))
    assert not np.array_equal(rise_masks(50, 7, 0.5, 11, 28, 28), rise_masks(50, 7, 0.5, 12, 28, 28))
