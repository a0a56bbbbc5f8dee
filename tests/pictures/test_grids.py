"""Specification of 8-bit scaling, mosaics and upscaling."""

import warnings

import numpy as np
import pytest

from service.pictures.grids import tile, to_uint8, upscale_nearest


def test_to_uint8_maps_min_to_0_and_max_to_255_linearly():
    out = to_uint8(np.array([0.0, 1.0, 3.0]))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 85, 255])


def test_to_uint8_of_a_constant_array_is_all_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = to_uint8(np.full((3, 4), 7.5, dtype=np.float32))
    np.testing.assert_array_equal(out, np.zeros((3, 4), dtype=np.uint8))


def test_to_uint8_clips_values_outside_the_given_range():
    np.testing.assert_array_equal(to_uint8(np.array([-5.0, 0.0, 5.0, 20.0]), lo=0.0, hi=10.0), [0, 0, 128, 255])


def test_to_uint8_accepts_per_map_ranges_including_constant_maps():
    maps = np.stack([np.array([[0.0, 2.0]]), np.array([[4.0, 4.0]])])
    lo, hi = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = to_uint8(maps, lo, hi)
    np.testing.assert_array_equal(out, [[[0, 255]], [[0, 0]]])


def test_tile_of_32_maps_26x26_with_6_columns_and_pad_1_is_161x161():
    maps = np.random.default_rng(0).random((32, 26, 26), dtype=np.float32)
    mosaic = tile(maps, columns=6, pad=1)
    assert mosaic.shape == (6 * 26 + 5, 6 * 26 + 5)
    assert mosaic.dtype == np.uint8


def test_tile_defaults_to_ceil_sqrt_columns():
    assert tile(np.ones((10, 4, 5)), pad=0).shape == (3 * 4, 4 * 5)


def test_tile_places_maps_row_major_in_filter_order():
    maps = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((6, 2, 2))
    mosaic = tile(maps, columns=3, pad=0, normalize_each=False)
    np.testing.assert_array_equal(mosaic[::2, ::2], [[0, 51, 102], [153, 204, 255]])


def test_tile_scales_each_map_independently_by_default():
    maps = np.stack([np.array([[0.0, 1.0]]), np.array([[0.0, 100.0]])])
    np.testing.assert_array_equal(tile(maps, columns=2, pad=0), [[0, 255, 0, 255]])


def test_tile_can_scale_all_maps_together():
    maps = np.stack([np.array([[0.0, 1.0]]), np.array([[0.0, 100.0]])])
    np.testing.assert_array_equal(tile(maps, columns=2, pad=0, normalize_each=False), [[0, 3, 0, 255]])


def test_tile_gaps_are_mid_gray_by_default_so_black_tiles_stay_apart():
    mosaic = tile(np.zeros((4, 2, 2)), pad=1)
    assert (mosaic[2] == 128).all() and (mosaic[:, 2] == 128).all()
    assert not mosaic[:2, :2].any()


def test_tile_fills_gaps_and_unused_cells_with_the_pad_value():
    mosaic = tile(np.zeros((3, 2, 2)), columns=2, pad=1, pad_value=200)
    expected = np.full((5, 5), 200, dtype=np.uint8)
    expected[0:2, 0:2] = expected[0:2, 3:5] = expected[3:5, 0:2] = 0
    np.testing.assert_array_equal(mosaic, expected)


def test_tile_of_constant_maps_is_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mosaic = tile(np.full((4, 3, 3), 2.0), pad=0)
    assert not mosaic.any()


def test_tile_takes_raw_channels_last_activations():
    activations = np.random.default_rng(1).random((26, 26, 32), dtype=np.float32)
    np.testing.assert_array_equal(
        tile(activations, columns=6, channels_last=True), tile(np.moveaxis(activations, -1, 0), columns=6)
    )


def test_tile_rejects_a_single_2d_map():
    with pytest.raises(ValueError):
        tile(np.zeros((4, 4)))


def test_upscale_nearest_multiplies_both_sides_by_the_scale():
    assert upscale_nearest(np.zeros((28, 28), dtype=np.uint8), 4).shape == (112, 112)


def test_upscale_nearest_turns_each_pixel_into_a_block():
    np.testing.assert_array_equal(upscale_nearest(np.array([[1, 2]]), 2), [[1, 1, 2, 2], [1, 1, 2, 2]])


def test_upscale_nearest_rejects_a_scale_below_one():
    with pytest.raises(ValueError):
        upscale_nearest(np.zeros((2, 2)), 0)
