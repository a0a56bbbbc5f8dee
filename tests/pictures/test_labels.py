"""Specification of the words on the pictures: tile indices, text under tiles and the one-line caption."""

import numpy as np

from service.pictures.grids import GAP, tile, upscale_nearest
from service.pictures.labels import (
    CAPTION_SIZE,
    UNDER_SIZE,
    caption,
    labelled_grid,
    line_height,
    text_width,
    tile_origins,
    with_caption,
    with_text_under,
    zero_note,
)

RNG = np.random.default_rng(7)
INDEX_CORNER = (16, 24)  # rows, columns of a tile's top-left corner that its index may cover


def outside_index_corners(image: np.ndarray, origins: list[tuple[int, int]]) -> np.ndarray:
    """``image`` with each tile's index corner blanked, to compare the rest."""
    out = image.copy()
    for x, y in origins:
        out[y : y + INDEX_CORNER[0], x : x + INDEX_CORNER[1]] = 0
    return out


def test_a_labelled_grid_is_the_plain_grid_with_the_caption_below_and_the_tiles_in_place():
    maps = RNG.random((10, 26, 26))
    plain = upscale_nearest(tile(maps), 2)
    labelled = labelled_grid(maps, 2, "conv1")
    height, width = plain.shape
    assert labelled.shape == (height + line_height(CAPTION_SIZE), max(width, text_width("conv1", CAPTION_SIZE)))
    origins = tile_origins(10, 4, (52, 52), 2)
    top = labelled[:height, :width]
    assert np.array_equal(outside_index_corners(top, origins), outside_index_corners(plain, origins))


def test_every_tile_gets_its_index_drawn_in_its_corner():
    maps = np.zeros((4, 30, 30))  # black tiles: the white index is all there is in a corner
    labelled = labelled_grid(maps, 1, "x")
    for x, y in tile_origins(4, 2, (30, 30), 1):
        corner = labelled[y : y + INDEX_CORNER[0], x : x + INDEX_CORNER[1]]
        assert corner.max() > 200
        assert not labelled[y + INDEX_CORNER[0] : y + 30, x : x + 30].any()


def test_a_caption_wider_than_the_picture_widens_the_canvas_with_mid_gray():
    image = np.zeros((10, 20), np.uint8)
    out = with_caption(image, "a caption far wider than twenty pixels")
    assert out.shape[1] == text_width("a caption far wider than twenty pixels", CAPTION_SIZE) > 20
    assert np.array_equal(out[:10, :20], image)
    assert (out[:10, 20:] == GAP).all()


def test_the_caption_is_dark_text_on_mid_gray():
    strip = with_caption(np.zeros((10, 300), np.uint8), "conv2 of classifier")[10:]
    assert (strip == GAP).mean() > 0.7 and strip.min() < 40


def test_zero_maps_are_counted_in_the_caption():
    maps = RNG.random((5, 4, 4))
    maps[[1, 3]] = 0
    assert zero_note(maps) == "2 of 5 maps are zero everywhere"
    assert zero_note(maps[:2], "kernels") == "1 of 2 kernels is zero everywhere"
    assert zero_note(maps[[0, 2, 4]]) == ""


def test_a_grid_with_zero_maps_draws_them_black_and_says_so_in_its_caption():
    maps = RNG.random((4, 6, 6)) + 0.1
    maps[2] = 0
    labelled = labelled_grid(maps, 5, "t")
    grid_height = 2 * 30 + 5
    expected = with_caption(np.zeros((grid_height, labelled.shape[1]), np.uint8), "t · 1 of 4 maps is zero everywhere")
    assert np.array_equal(labelled[grid_height:], expected[grid_height:])
    x, y = tile_origins(4, 2, (30, 30), 5)[2]
    assert not outside_index_corners(labelled, [(x, y)])[y : y + 30, x : x + 30].any()


def test_caption_parts_are_joined_with_dots_leaving_out_empty_ones():
    assert caption("conv1 of classifier", "", "each min-max scaled") == "conv1 of classifier · each min-max scaled"


def test_text_under_tiles_moves_each_row_down_by_the_strips_above_it():
    grid = upscale_nearest(tile(RNG.random((4, 8, 8)), columns=2), 4)
    origins = tile_origins(4, 2, (32, 32), 4)
    out = with_text_under(grid, origins, (32, 32), ["a", "b", "c", "d"])
    strip = line_height(UNDER_SIZE)
    assert out.shape == (grid.shape[0] + 2 * strip, grid.shape[1])
    assert np.array_equal(out[:32], grid[:32])
    assert np.array_equal(out[32 + strip : 32 + strip + 36], grid[32:68])  # the gap, then the second row
    assert out[32 : 32 + strip].min() < 40  # the text of the first row
