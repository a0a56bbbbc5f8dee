"""The sample images the README's curl examples use are classified as their names say."""

from pathlib import Path

import pytest

from tests.helpers import post_image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("digit", range(10))
def test_example_digit_png_is_classified_as_its_name(client, digit):
    data = (EXAMPLES / f"digit-{digit}.png").read_bytes()
    assert post_image(client, "/v1/classify", data).json()["digit"] == digit


def test_example_photo_of_a_3_on_grey_paper_is_classified_as_3(client):
    data = (EXAMPLES / "photo-3.jpg").read_bytes()
    assert post_image(client, "/v1/classify", data, "image/jpeg").json()["digit"] == 3
