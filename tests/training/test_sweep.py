"""``python -m training sweep`` end to end on a small slice of real MNIST: four variants trained alike, exported,
analysed and compared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.contract import SPATIAL_LAYERS
from training.__main__ import main
from training.config import DEFAULT_LEARNING_RATES
from training.data import sha256_of

VARIANTS = ("relu-adam", "relu-sgd", "tanh-adam", "tanh-sgd")


def test_every_variant_has_its_onnx_manifest_and_statistics(tiny_sweep):
    for name in VARIANTS:
        folder = tiny_sweep / name
        entry = json.loads((folder / "manifest.json").read_text())["models"]["classifier"]
        assert entry["sha256"] == sha256_of(folder / entry["file"])
        assert [output["name"] for output in entry["outputs"]] == ["conv1", "conv2", "pool", "dense1", "output"]
        statistics = json.loads((folder / "statistics.json").read_text())
        assert statistics["model_sha256"] == entry["sha256"] and statistics["images"] == 500
        assert statistics["plots"] == {}


def test_variants_share_the_recipe_but_activation_and_optimizer(tiny_sweep):
    trainings = {
        name: json.loads((tiny_sweep / name / "manifest.json").read_text())["models"]["classifier"]["training"]
        for name in VARIANTS
    }
    for name, training in trainings.items():
        activation, optimizer = name.split("-")
        assert (training["activation"], training["optimizer"]) == (activation, optimizer)
        assert training["learning_rate"] == DEFAULT_LEARNING_RATES[optimizer]
        assert (training["schedule"], training["shift"], training["epochs"]) == ("constant", 0, 1)
        assert (training["seed"], training["train_images"]) == (42, 2000)


def test_comparison_has_one_row_per_variant_with_every_column(tiny_sweep):
    """Every column, and each layer's "never active" equal to the filters active in no image of the variant's own
    statistics (the paper's rule)."""
    comparison = json.loads((tiny_sweep / "comparison.json").read_text())
    rows = {row["model"]: row for row in comparison["variants"]}
    assert sorted(rows) == list(VARIANTS)
    statistics = {name: json.loads((tiny_sweep / name / "statistics.json").read_text()) for name in VARIANTS}
    assert comparison["recipe"]["test_images"] == 500
    for row in rows.values():
        assert 0.1 < row["test_accuracy"] <= 1 and row["test_loss"] > 0 and row["seconds_per_epoch"] > 0
        assert len(row["val_accuracy"]) == 1
        for layer in SPATIAL_LAYERS:
            stats = row["layers"][layer]
            assert 0 < stats["mean_active_fraction"] < 1
            counts = np.asarray(statistics[row["model"]]["layers"][layer]["active_counts"]["image-mean"])
            assert stats["never_active"] == int((counts.sum(axis=0) == 0).sum())
            assert stats["mean_norm"] > 0
    table = (tiny_sweep / "comparison.md").read_text().splitlines()
    assert table[0].startswith("| variant | test accuracy | test loss | s/epoch | conv1 active |")
    assert len(table) == 2 + len(VARIANTS)


def test_unknown_activation_is_refused_by_the_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--activations", "relu,swish"])
    assert exit_info.value.code == 2
    assert "choose from relu, tanh, sigmoid, elu" in capsys.readouterr().err
