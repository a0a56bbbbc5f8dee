"""Occlusion against a brute-force loop: one image at a time, one square at a time."""

from __future__ import annotations

import numpy as np
import pytest

from service.attribution.occlusion import occlusion


def brute_force(run, image: np.ndarray, target: int, patch: int, stride: int, fill: float):
    """grid[i, j] = p(x) - p(x with the square at (i·stride, j·stride) filled) and each pixel's mean over the
    squares covering it, from the definitions."""
    p = run(image[None], ["output"])["output"][0, target]
    positions = range(0, 28 - patch + 1, stride)
    grid = np.zeros((len(positions), len(positions)))
    covering: dict[tuple[int, int], list[float]] = {}
    for i, row in enumerate(positions):
        for j, col in enumerate(positions):
            occluded = image.copy()
            occluded[row : row + patch, col : col + patch] = fill
            grid[i, j] = p - run(occluded[None], ["output"])["output"][0, target]
            for r in range(row, row + patch):
                for c in range(col, col + patch):
                    covering.setdefault((r, c), []).append(grid[i, j])
    pixels = np.zeros((28, 28))
    for (r, c), drops in covering.items():
        pixels[r, c] = np.mean(drops)
    return grid, pixels


@pytest.mark.parametrize(("patch", "stride", "fill"), [(4, 2, 0.0), (5, 3, 0.5), (1, 9, 0.0), (13, 5, 1.0)])
def test_occlusion_equals_a_brute_force_loop(shipped, digits, patch, stride, fill):
    images, targets = digits[0][:2], digits[1][:2]
    result = occlusion(shipped.run, shipped.weights, images, targets, patch=patch, stride=stride, fill=fill)
    for n in range(len(images)):
        grid, pixels = brute_force(shipped.run, images[n], int(targets[n]), patch, stride, fill)
        np.testing.assert_allclose(result.grid[n], grid, atol=1e-6)
        np.testing.assert_allclose(result.pixels[n], pixels, atol=1e-6)


def test_the_grid_has_one_cell_per_square_position(shipped, digits):
    result = occlusion(shipped.run, shipped.weights, digits[0][:2], digits[1][:2])
    assert result.grid.shape == (2, 13, 13) and result.pixels.shape == (2, 28, 28)
    np.testing.assert_array_equal(result.starts, np.arange(0, 25, 2))


def test_pixels_that_no_square_covers_are_zero(shipped, digits):
    result = occlusion(shipped.run, shipped.weights, digits[0][:2], digits[1][:2], patch=5, stride=3)
    assert result.starts[-1] + 5 == 26
    assert not result.pixels[:, 26:].any() and not result.pixels[:, :, 26:].any()


def test_a_square_that_leaves_the_image_as_it_is_scores_exactly_zero(shipped, digits):
    images, targets = digits[0][:2], digits[1][:2]
    result = occlusion(shipped.run, shipped.weights, images, targets)
    starts = result.starts
    for n, image in enumerate(images):
        unchanged = np.array([[not image[r : r + 4, c : c + 4].any() for c in starts] for r in starts])
        assert unchanged.any() and not unchanged.all()
        assert not result.grid[n][unchanged].any()


def test_an_image_that_is_all_fill_gets_a_zero_map(shipped):
    result = occlusion(shipped.run, shipped.weights, np.ones((1, 28, 28), np.float32), np.array([3]), fill=1.0)
    assert not result.grid.any() and not result.pixels.any()
