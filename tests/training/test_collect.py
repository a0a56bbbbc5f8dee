"""``python -m training collect`` on a tiny sweep's folder: the comparison of the variants present, the missing ones
named, half-written folders ignored, and never a partial set over the shipped models/variants."""

from __future__ import annotations

import json
import shutil

from tests.helpers import MODELS
from training.__main__ import main
from training.config import VARIANT_NAMES

PRESENT = ("relu-adam", "relu-sgd", "tanh-adam", "tanh-sgd")


def test_collect_with_missing_variants_compares_those_present_and_names_the_missing(tiny_sweep, tmp_path, capsys):
    out = tmp_path / "collected"
    assert main(["collect", str(tiny_sweep), "--out-dir", str(out)]) == 0
    said = capsys.readouterr().out
    assert "collected 4 of 16 variants" in said and "sigmoid-sgd (no folder)" in said
    comparison = json.loads((out / "comparison.json").read_text())
    assert sorted(row["model"] for row in comparison["variants"]) == sorted(PRESENT)
    assert comparison["missing"] == [name for name in VARIANT_NAMES if name not in PRESENT]
    original = json.loads((tiny_sweep / "comparison.json").read_text())
    assert comparison["recipe"] == original["recipe"]
    assert sorted(comparison["variants"], key=lambda row: row["model"]) == sorted(
        original["variants"], key=lambda row: row["model"]
    ), "the sweep's own comparison, row for row"
    assert "Missing (12, not collected)" in (out / "comparison.md").read_text()


def test_half_written_variants_are_not_collected(tiny_sweep, tmp_path, capsys):
    source = tmp_path / "variants"
    shutil.copytree(tiny_sweep, source)
    (source / "tanh-sgd" / "statistics.json").unlink()  # killed during the analysis (by an older sweep)
    (source / "tanh-adam" / "classifier.onnx").write_bytes(b"truncated")
    shutil.copytree(source / "relu-adam", source / ".relu-adam-partial-1a2b3c4d")
    assert main(["collect", str(source)]) == 0
    said = capsys.readouterr().out
    assert "tanh-sgd (" in said and "statistics.json not found" in said
    assert "tanh-adam (classifier.onnx is not the file manifest.json lists)" in said
    comparison = json.loads((source / "comparison.json").read_text())
    assert sorted(row["model"] for row in comparison["variants"]) == ["relu-adam", "relu-sgd"]


def test_collect_never_writes_a_partial_set_over_the_shipped_variants(tiny_sweep, capsys):
    before = {path: path.stat().st_mtime_ns for path in (MODELS / "variants").rglob("*")}
    assert main(["collect", str(tiny_sweep), "--out-dir", str(MODELS / "variants")]) == 2
    err = capsys.readouterr().err
    assert (
        len(err.strip().splitlines()) == 1 and "not writing into the shipped" in err and "12 variant(s) missing" in err
    )
    assert {path: path.stat().st_mtime_ns for path in (MODELS / "variants").rglob("*")} == before


def test_collect_refuses_a_folder_that_is_not_a_variants_folder(tiny_sweep, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["collect", str(tiny_sweep), "--out-dir", str(tmp_path)]) == 2
    assert "not a variants folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_variants_of_different_runs_are_not_compared(tiny_sweep, tmp_path, capsys):
    source = tmp_path / "variants"
    shutil.copytree(tiny_sweep, source)
    path = source / "relu-sgd" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["models"]["classifier"]["training"]["epochs"] = 5
    path.write_text(json.dumps(manifest))
    assert main(["collect", str(source), "--out-dir", str(tmp_path / "out")]) == 2
    assert "trained differently (epochs)" in capsys.readouterr().err


def test_a_full_set_on_the_full_data_replaces_the_shipped_folder_as_a_whole(tiny_sweep, tmp_path, monkeypatch, capsys):
    """16 complete variants of one recipe without data limits (made here from one tiny variant, relabelled) replace
    a stand-in for models/variants whole: what it held before is gone, hidden leftovers of the source are not copied."""
    from training import collect as collect_module

    source, shipped = tmp_path / "sweep" / "variants", tmp_path / "models" / "variants"
    for name in VARIANT_NAMES:
        shutil.copytree(tiny_sweep / "relu-adam", source / name)
        path = source / name / "manifest.json"
        manifest = json.loads(path.read_text())
        training = manifest["models"]["classifier"]["training"]
        training["activation"], training["optimizer"] = name.split("-")
        training["train_limit"] = training["test_limit"] = None
        path.write_text(json.dumps(manifest))
    (source / ".elu-sgd-partial-1a2b3c4d").mkdir()
    (shipped / "sigmoid-sgd").mkdir(parents=True)
    (shipped / "sigmoid-sgd" / "stale.txt").write_text("from an older sweep")
    monkeypatch.setattr(collect_module, "is_shipped", lambda folder: folder.resolve() == shipped.resolve())
    (source / "tanh-sgd" / "statistics.json").unlink()
    assert main(["collect", str(source), "--out-dir", str(shipped)]) == 2
    assert "1 variant(s) missing" in capsys.readouterr().err and (shipped / "sigmoid-sgd" / "stale.txt").is_file()
    shutil.copy(tiny_sweep / "relu-adam" / "statistics.json", source / "tanh-sgd")
    assert main(["collect", str(source), "--out-dir", str(shipped)]) == 0
    assert sorted(p.name for p in shipped.iterdir()) == sorted([*VARIANT_NAMES, "comparison.json", "comparison.md"])
    assert json.loads((shipped / "comparison.json").read_text())["missing"] == []
    assert not (shipped / "sigmoid-sgd" / "stale.txt").exists()
    assert sorted(p.name for p in shipped.parent.iterdir()) == ["variants"], "no staging folder left beside"
