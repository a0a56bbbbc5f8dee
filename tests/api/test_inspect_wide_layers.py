"""POST /v1/inspect for an imported model with a layer of more than 64 feature maps: its grid holds the 64 most
active and names the filter each tile shows, so the web page clicks and outlines the right filter."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the wide test network is exported from PyTorch (dev extra)")

from service.importer import main  # noqa: E402
from tests.api.test_inspect import data_url_pixels  # noqa: E402
from tests.helpers import encode  # noqa: E402
from tests.importer.frameworks import export_torch  # noqa: E402
from tests.importer.over_http import serving  # noqa: E402

WIDE = 80  # feature maps of the wide layers: past the grid's 64
NARROW = 8  # feature maps of the layers after them
NAME = "wide"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wide")
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(1, WIDE, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(WIDE, NARROW, 1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(NARROW, 10),
    )
    onnx_file = export_torch(network, folder / "wide.onnx", 28, channels=1)
    models = folder / "models"
    assert main([str(onnx_file), "--name", NAME, "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    with serving(models) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def inspected(client, mnist_test) -> dict:
    image = encode(mnist_test[0][0])
    answer = client.post("/v1/inspect", params={"model": NAME}, content=image, headers={"content-type": "image/png"})
    assert answer.status_code == 200
    return {"image": image, "layers": answer.json()["layers"]}


def wide_layer(inspected: dict) -> dict:
    return next(layer for layer in inspected["layers"] if layer["shape"][-1] == WIDE)


def test_a_grid_past_64_maps_names_the_64_most_active_filters_most_active_first(inspected):
    layer = wide_layer(inspected)
    norms = np.array(layer["norms"])
    assert len(norms) == WIDE
    assert layer["grid"]["channels"] == [int(k) for k in np.argsort(-norms, kind="stable")[:64]]


def test_each_tile_of_a_wide_grid_shows_the_filter_it_names(client, inspected):
    layer = wide_layer(inspected)
    grid = layer["grid"]
    mosaic = data_url_pixels(grid["image"])
    height, width = grid["tile"]
    for tile in (0, 1, 63):
        filter = grid["channels"][tile]
        values = client.post(
            f"/v1/activations/{layer['layer']}/{filter}",
            params={"model": NAME},
            content=inspected["image"],
            headers={"content-type": "image/png"},
        ).json()["values"]
        expected = np.array(values, np.float64)
        expected = np.round(255 * (expected - expected.min()) / (expected.max() - expected.min()))
        row, column = divmod(tile, grid["columns"])
        top, left = row * (height + grid["pad"]), column * (width + grid["pad"])
        shown = mosaic[top : top + height, left : left + width].astype(np.float64)
        assert np.abs(shown - expected).max() <= 1, f"tile {tile} does not show filter {filter}"


def test_a_grid_of_64_maps_or_fewer_names_no_channels(inspected):
    narrow = [layer for layer in inspected["layers"] if layer["shape"][-1] == NARROW]
    assert narrow and all(layer["grid"]["channels"] is None for layer in narrow)
