"""The transforms of ``service.studies.invariance``: direction conventions checked on impulses, ranges and their
limits."""

from __future__ import annotations

import numpy as np
import pytest

from service.studies.invariance import UnknownTransform, amounts, transformed
from service.studies.layers import NotApplicable

CENTRE = 13.5


def impulse(row: int, column: int) -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[row, column] = 1.0
    return image


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the image's weighted centre."""
    rows, columns = np.mgrid[0:28, 0:28]
    return float((rows * image).sum() / image.sum()), float((columns * image).sum() / image.sum())


def test_a_positive_shift_x_moves_the_digit_right_by_whole_pixels():
    moved = transformed(impulse(10, 12), "shift-x", np.array([3.0, -2.0]))
    assert moved[0, 10, 15] == 1.0 and moved[0].sum() == 1.0
    assert moved[1, 10, 10] == 1.0 and moved[1].sum() == 1.0


def test_a_positive_shift_y_moves_the_digit_down():
    moved = transformed(impulse(10, 12), "shift-y", np.array([4.0]))
    assert moved[0, 14, 12] == 1.0 and moved[0].sum() == 1.0


def test_what_leaves_the_image_is_gone_and_the_rest_is_filled_with_zero():
    image = np.ones((28, 28), np.float32)
    moved = transformed(image, "shift-x", np.array([5.0]))[0]
    assert (moved[:, :5] == 0).all() and (moved[:, 5:] == 1).all()


def test_a_positive_rotation_turns_counter_clockwise_on_screen():
    # right of the centre, on its row: a quarter turn counter-clockwise puts it above the centre
    right = np.zeros((28, 28), np.float32)
    right[13:15, 20] = 0.5
    up = transformed(right, "rotate", np.array([90.0]))[0]
    row, column = centre_of_mass(up)
    assert row == pytest.approx(CENTRE - 6.5, abs=1e-4) and column == pytest.approx(CENTRE, abs=1e-4)
    row, column = centre_of_mass(transformed(right, "rotate", np.array([-90.0]))[0])
    assert row == pytest.approx(CENTRE + 6.5, abs=1e-4)


def test_a_small_rotation_moves_an_impulse_along_its_circle():
    # y points down: turning by a counter-clockwise maps (dx, dy) to (dx cos a + dy sin a, -dx sin a + dy cos a)
    moved = transformed(impulse(13, 20), "rotate", np.array([30.0]))[0]
    angle = np.deg2rad(30.0)
    dx, dy = 6.5, -0.5
    expected = (CENTRE + (-dx * np.sin(angle) + dy * np.cos(angle)), CENTRE + (dx * np.cos(angle) + dy * np.sin(angle)))
    assert centre_of_mass(moved) == pytest.approx(expected, abs=0.1)  # bilinear spreads the impulse a little
    assert moved.sum() == pytest.approx(1.0, abs=0.1)


def test_scaling_moves_points_away_from_the_centre_by_the_factor():
    row, column = centre_of_mass(transformed(impulse(13, 17), "scale", np.array([2.0]))[0])
    assert (row, column) == pytest.approx((CENTRE - 1.0, CENTRE + 7.0), abs=1e-4)
    block = np.zeros((28, 28), np.float32)
    block[12:16, 18:22] = 1.0  # centred at (13.5, 19.5): 6 px right of the centre; shrinking needs more than a pixel
    row, column = centre_of_mass(transformed(block, "scale", np.array([0.5]))[0])
    assert (row, column) == pytest.approx((CENTRE, CENTRE + 3.0), abs=1e-4)


def test_the_identity_amounts_leave_the_image_as_it_is():
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    for name, identity in (("shift-x", 0.0), ("shift-y", 0.0), ("rotate", 0.0), ("scale", 1.0)):
        np.testing.assert_allclose(transformed(image, name, np.array([identity]))[0], image, atol=1e-6)


def test_default_amounts_and_whole_pixel_shifts():
    assert amounts("shift-x").tolist() == list(range(-8, 9))
    assert amounts("rotate")[[0, -1]].tolist() == [-60.0, 60.0] and len(amounts("rotate")) == 17
    assert amounts("scale")[[0, 8, -1]].tolist() == pytest.approx([0.5, 1.0, 1.5])
    assert amounts("shift-y", -1, 1, 5).tolist() == [-1.0, -0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("name", "start", "stop", "steps", "message"),
    [
        ("shift-x", -15, 8, 17, "shift-x accepts amounts from -14 to 14 px, got from=-15 to=8"),
        ("rotate", 0, 200, 17, "rotate accepts amounts from -180 to 180 degrees"),
        ("scale", 0.1, 1, 17, "scale accepts amounts from 0.25 to 3 factor"),
        ("rotate", None, None, 65, "steps must be between 2 and 64, got 65"),
    ],
)
def test_ranges_outside_the_limits_are_refused_saying_the_range(name, start, stop, steps, message):
    with pytest.raises(NotApplicable, match=message):
        amounts(name, start, stop, steps)


def test_an_unknown_transform_is_refused_listing_them():
    with pytest.raises(UnknownTransform, match="transforms: shift-x, shift-y, rotate, scale"):
        amounts("shear")
