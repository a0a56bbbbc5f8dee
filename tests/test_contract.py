"""The contract between training and service: the shipped files validate, and a malformed one is refused with a
one-line error naming the file and the field."""

from __future__ import annotations

import json
import shutil

import pytest

from service.contract import (
    MANIFEST_FILE,
    STATISTICS_FILE,
    ContractError,
    Manifest,
    Statistics,
    plot_name,
    read_document,
)
from service.registry import ModelLoadError, load_registry
from service.statistics import StatisticsUnavailable, load_statistics
from tests.helpers import MODELS, link_shipped_models


def test_the_shipped_manifest_and_statistics_follow_the_contract():
    manifest = read_document(MODELS / MANIFEST_FILE, Manifest)
    statistics = read_document(MODELS / STATISTICS_FILE, Statistics)
    assert set(manifest.models) == {"classifier", "autoencoder"}
    assert statistics.model_sha256 == manifest.models["classifier"].sha256
    assert set(statistics.layers) == {"conv1", "conv2", "pool"}


def test_every_shipped_plot_is_named_as_plot_name_builds_it():
    statistics = read_document(MODELS / STATISTICS_FILE, Statistics)
    expected = {plot_name("active-filters", "conv2", "image-mean", 3), plot_name("norms", "pool"), "confusion-matrix"}
    assert expected <= set(statistics.plots)
    assert all(ref.file == f"plots/{name}.png" for name, ref in statistics.plots.items())


def copy_with(tmp_path, name: str, change) -> None:
    """The shipped models linked into ``tmp_path`` with ``name`` replaced by a changed copy of its JSON."""
    link_shipped_models(tmp_path)
    (tmp_path / name).unlink()
    document = json.loads((MODELS / name).read_text())
    change(document)
    (tmp_path / name).write_text(json.dumps(document))


def test_a_manifest_missing_a_field_is_refused_naming_the_file_and_the_field(tmp_path):
    copy_with(tmp_path, MANIFEST_FILE, lambda d: d["models"]["classifier"].pop("sha256"))
    with pytest.raises(ModelLoadError) as refused:
        load_registry(tmp_path)
    message = str(refused.value)
    assert "\n" not in message
    assert str(tmp_path / MANIFEST_FILE) in message and "models.classifier.sha256" in message


def test_a_manifest_field_of_the_wrong_type_is_refused(tmp_path):
    copy_with(tmp_path, MANIFEST_FILE, lambda d: d["models"]["autoencoder"].__setitem__("total_params", "many"))
    with pytest.raises(ModelLoadError, match=r"models\.autoencoder\.total_params"):
        load_registry(tmp_path)


def test_malformed_statistics_are_unavailable_naming_the_field_and_the_command(tmp_path):
    copy_with(tmp_path, STATISTICS_FILE, lambda d: d["layers"]["conv2"].pop("dataset_threshold"))
    registry = load_registry(tmp_path)
    with pytest.raises(StatisticsUnavailable) as refused:
        load_statistics(tmp_path, registry)
    message = str(refused.value)
    assert "layers.conv2.dataset_threshold" in message and "python -m training analyze" in message


def test_json_that_is_not_json_is_a_contract_error(tmp_path):
    path = tmp_path / MANIFEST_FILE
    shutil.copy(MODELS / MANIFEST_FILE, path)
    path.write_text(path.read_text()[:100])
    with pytest.raises(ContractError, match=str(path)):
        read_document(path, Manifest)
