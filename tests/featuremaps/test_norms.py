"""Specification of per-filter norms and the active-filter rule."""

import numpy as np
import pytest

from service.featuremaps.norms import (
    NORMS,
    THRESHOLD_RULES,
    active_filters,
    active_mask,
    feature_map_norms,
    threshold,
)


@pytest.fixture
def hand_maps() -> np.ndarray:
    """Three 2x2 maps: a 3-4-5 triangle, all -1, all zero."""
    maps = np.zeros((2, 2, 3), dtype=np.float32)
    maps[..., 0] = [[3, 0], [0, 4]]
    maps[..., 1] = -1
    return maps


def test_the_web_layer_can_list_the_norms_and_rules():
    assert NORMS == ("l2", "l1", "max")
    assert THRESHOLD_RULES == ("mean", "median")


def test_l2_norm_is_the_frobenius_norm_of_each_map(hand_maps):
    np.testing.assert_allclose(feature_map_norms(hand_maps, "l2"), [5, 2, 0])


def test_l2_is_the_default_norm(hand_maps):
    np.testing.assert_array_equal(feature_map_norms(hand_maps), feature_map_norms(hand_maps, "l2"))


def test_l1_norm_is_the_sum_of_absolute_values(hand_maps):
    np.testing.assert_allclose(feature_map_norms(hand_maps, "l1"), [7, 4, 0])


def test_max_norm_is_the_largest_absolute_value(hand_maps):
    np.testing.assert_allclose(feature_map_norms(hand_maps, "max"), [4, 1, 0])


def test_float32_maps_give_float32_norms(hand_maps):
    assert feature_map_norms(hand_maps).dtype == np.float32


@pytest.mark.parametrize("norm", NORMS)
def test_batched_norms_equal_per_image_norms(norm):
    batch = np.random.default_rng(0).normal(size=(5, 6, 7, 8)).astype(np.float32)
    per_image = np.stack([feature_map_norms(m, norm) for m in batch])
    batched = feature_map_norms(batch, norm)
    assert batched.shape == (5, 8)
    np.testing.assert_allclose(batched, per_image, rtol=1e-6)


def test_unknown_norm_raises_value_error_naming_the_choices(hand_maps):
    with pytest.raises(ValueError) as err:
        feature_map_norms(hand_maps, "l3")
    assert all(choice in str(err.value) for choice in NORMS)


def test_maps_that_are_not_3d_or_4d_are_rejected():
    with pytest.raises(ValueError):
        feature_map_norms(np.zeros((4, 4)))


def test_mean_threshold_is_the_mean_of_the_layers_norms():
    assert threshold(np.array([1.0, 2.0, 6.0])) == pytest.approx(3.0)


def test_median_threshold_is_the_median_of_the_layers_norms():
    assert threshold(np.array([1.0, 2.0, 6.0]), "median") == pytest.approx(2.0)


def test_numeric_threshold_is_used_as_given():
    assert threshold(np.array([1.0, 2.0, 6.0]), 4.5) == pytest.approx(4.5)


def test_threshold_of_one_image_is_a_float():
    assert isinstance(threshold(np.array([1.0, 2.0], dtype=np.float32)), float)


@pytest.mark.parametrize("rule", ["mean", "median", 0.25])
def test_batched_threshold_is_one_value_per_image(rule):
    norms = np.random.default_rng(1).random((4, 9))
    batched = threshold(norms, rule)
    assert batched.shape == (4,)
    np.testing.assert_allclose(batched, [threshold(row, rule) for row in norms])


@pytest.mark.parametrize("rule", ["average", True, None])
def test_unknown_threshold_rule_raises_value_error_naming_the_choices(rule):
    with pytest.raises(ValueError) as err:
        threshold(np.array([1.0, 2.0]), rule)
    assert all(choice in str(err.value) for choice in THRESHOLD_RULES)


def test_active_filters_are_those_strictly_above_the_image_mean_norm():
    norms = np.array([1.0, 2.0, 3.0, 2.0, 0.0])
    assert active_filters(norms, threshold(norms, "mean")) == [1, 2, 3]


def test_a_filter_exactly_at_the_threshold_is_not_active():
    assert active_filters(np.array([2.0, 3.0, 1.0]), 2.0) == [1]


def test_active_filters_are_ascending_python_ints():
    active = active_filters(np.array([9.0, 0.0, 7.0, 8.0]), 1.0)
    assert active == [0, 2, 3]
    assert all(type(i) is int for i in active)


def test_active_filters_rejects_a_batch():
    with pytest.raises(ValueError):
        active_filters(np.ones((2, 3)), 0.5)


def test_active_mask_applies_each_images_own_threshold():
    norms = np.random.default_rng(2).random((6, 10))
    thresh = threshold(norms, "mean")
    mask = active_mask(norms, thresh)
    assert mask.shape == (6, 10) and mask.dtype == bool
    for row, t, m in zip(norms, thresh, mask):
        assert np.flatnonzero(m).tolist() == active_filters(row, t)


def test_active_mask_accepts_one_scalar_threshold_for_all_images():
    norms = np.array([[0.1, 0.6], [0.5, 0.9]])
    np.testing.assert_array_equal(active_mask(norms, 0.5), [[False, True], [False, True]])
