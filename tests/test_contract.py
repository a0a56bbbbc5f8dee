"""The contract between training and service: the shipped files validate, and a malformed one is refused with a
one-line error naming the file and the field."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from service.contract import (
    MANIFEST_FILE,
    STATISTICS_FILE,
    ContractError,
    FileRef,
    Manifest,
    Statistics,
    plot_name,
    read_document,
    read_verified,
)
from service.runtime.registry import ModelLoadError, load_registry
from service.studies.statistics import StatisticsUnavailable, load_statistics
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


def test_the_shipped_statistics_carry_invariance_optimized_inputs_and_the_digit_judge():
    statistics = read_document(MODELS / STATISTICS_FILE, Statistics)
    assert set(statistics.invariance.transforms) == {"shift-x", "shift-y", "rotate", "scale"}
    assert set(statistics.optimized_inputs.layers) == {"conv1", "conv2", "pool", "classes"}
    assert 0 < statistics.digit_judge.flagged_digits <= 0.03 and "judge" in statistics.digit_judge.auc


def test_statistics_without_the_new_sections_still_load(tmp_path):
    def drop(document: dict) -> None:
        for section in ("invariance", "optimized_inputs", "digit_judge"):
            document.pop(section)

    copy_with(tmp_path, STATISTICS_FILE, drop)
    loaded = load_statistics(tmp_path, load_registry(tmp_path))
    assert loaded.judge is None and loaded.data.invariance is None
    with pytest.raises(StatisticsUnavailable, match="no optimized inputs; run `python -m training analyze"):
        loaded.optimized_inputs()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["invariance"]["transforms"]["rotate"]["all"].pop("accuracy"), "invariance.transforms.rotate.all"),
        (lambda d: d["digit_judge"].__setitem__("threshold", "high"), "digit_judge.threshold"),
        (lambda d: d["optimized_inputs"]["layers"]["conv1"].pop("dataset_max"), "optimized_inputs.layers.conv1"),
    ],
)
def test_a_malformed_new_section_is_refused_naming_its_field(tmp_path, change, field):
    copy_with(tmp_path, STATISTICS_FILE, change)
    with pytest.raises(StatisticsUnavailable, match=field.replace(".", r"\.")):
        load_statistics(tmp_path, load_registry(tmp_path))


def test_a_changed_judge_file_is_refused_with_its_checksum(tmp_path):
    link_shipped_models(tmp_path)
    (tmp_path / "digit_judge.npz").unlink()
    (tmp_path / "digit_judge.npz").write_bytes((MODELS / "digit_judge.npz").read_bytes() + b"\0")
    with pytest.raises(StatisticsUnavailable, match="digit_judge.npz has SHA-256"):
        load_statistics(tmp_path, load_registry(tmp_path))


def test_a_listed_file_is_read_when_its_sha256_is_the_listed_one(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"listed")
    ref = FileRef(file="data.bin", sha256=hashlib.sha256(b"listed").hexdigest())
    assert read_verified(tmp_path, ref, LookupError, str, lambda path, actual: actual) == b"listed"


def test_a_changed_listed_file_is_the_callers_error_with_the_actual_sha256(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"changed")
    ref = FileRef(file="data.bin", sha256=hashlib.sha256(b"listed").hexdigest())
    with pytest.raises(LookupError, match=hashlib.sha256(b"changed").hexdigest()):
        read_verified(tmp_path, ref, LookupError, str, lambda path, actual: actual)


def test_a_missing_listed_file_is_the_callers_error_naming_the_path(tmp_path):
    ref = FileRef(file="data.bin", sha256="0" * 64)
    with pytest.raises(LookupError, match="data.bin"):
        read_verified(tmp_path, ref, LookupError, str, lambda path, actual: actual)
