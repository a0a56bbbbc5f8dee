"""``python -m training`` as a newcomer meets it: a small run never writes over the shipped results, a full sweep
replaces ``models/variants/`` as a whole, and a missing data folder is named with the two ways to give it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import MODELS, ROOT
from training import sweep as sweep_module
from training.__main__ import _parser, main
from training.sweep import replace_folder, sweep

COMMANDS = ("train", "sweep", "download", "analyze", "report")


def documented_small_run() -> list[str]:
    """The docs' "small run" of the sweep (the Variants page), as arguments, continuation lines joined, with the
    venv's Python named as ``python``."""
    text = (ROOT / "docs" / "variants.md").read_text().replace("\\\n", " ").replace(".venv/bin/python", "python")
    lines = [line for line in text.splitlines() if line.startswith("python -m training sweep")]
    return shlex.split(next(line for line in lines if "small run" in line).split("#")[0])


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def models_snapshot() -> dict[str, tuple[int, int]]:
    """Every file under models/, ignored ONNX files included: its modification time and size."""
    return {str(path): (path.stat().st_mtime_ns, path.stat().st_size) for path in MODELS.rglob("*") if path.is_file()}


def test_the_documented_sweep_small_run_leaves_the_checkout_unchanged_and_says_where_it_wrote(mnist_dir, tmp_path):
    command = documented_small_run()
    assert command[:3] == ["python", "-m", "training"] and "--train-limit" in command and "--out-dir" not in command
    before, files_before = git_status(), models_snapshot()
    environment = {**os.environ, "MNIST_DIR": str(mnist_dir), "TMPDIR": str(tmp_path)}
    arguments = [str(mnist_dir) if argument == "$MNIST_DIR" else argument for argument in command[1:]]
    done = subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert git_status() == before
    assert models_snapshot() == files_before
    written = Path(re.search(r"writing to (\S+), not models/variants", done.stdout).group(1)) / "variants"
    assert written.is_relative_to(tmp_path)
    assert sorted(path.name for path in written.iterdir()) == [
        "comparison.json",
        "comparison.md",
        "relu-adam",
        "relu-sgd",
        "tanh-adam",
        "tanh-sgd",
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_without_a_data_folder_names_both_ways_to_give_one(command, monkeypatch, capsys):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    assert main([command]) == 2
    assert "pass --data-dir DIR or set MNIST_DIR" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_data_dir_as_from_an_unset_variable_is_treated_as_absent(command, monkeypatch, capsys):
    """``--data-dir $MNIST_DIR`` with MNIST_DIR unset reaches the program as a bare ``--data-dir``."""
    monkeypatch.delenv("MNIST_DIR", raising=False)
    assert main([command, "--data-dir"]) == 2
    assert "pass --data-dir DIR or set MNIST_DIR" in capsys.readouterr().err


def test_variants_may_be_named_with_commas_or_spaces():
    with_commas = _parser().parse_args(["sweep", "--activations", "relu,tanh", "--optimizers", "adam,sgd"])
    with_spaces = _parser().parse_args(["sweep", "--activations", "relu", "tanh", "--optimizers", "adam", "sgd"])
    assert (with_commas.activations, with_commas.optimizers) == (with_spaces.activations, with_spaces.optimizers)
    assert with_spaces.activations == ("relu", "tanh")


@pytest.mark.parametrize(
    "arguments",
    [
        ["train", "--train-limit", "512"],
        ["train", "--test-limit", "256"],
        ["sweep", "--test-limit", "256"],
        ["sweep", "--activations", "relu"],
        ["sweep", "--optimizers", "adam"],
        ["analyze", "--limit", "256"],
    ],
)
def test_a_small_run_without_out_dir_goes_to_a_new_scratch_folder(arguments, mnist_dir, tmp_path, monkeypatch):
    """Where each command would write, taken from the call it makes (the training itself replaced by a recorder)."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    chosen = record_out_dir(monkeypatch, arguments[0])
    assert main([*arguments, "--data-dir", str(mnist_dir)]) == 0
    assert Path(chosen[0]).is_relative_to(tmp_path)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [(["train"], "models"), (["sweep", "--epochs", "1"], "models/variants"), (["analyze"], None)],
)
def test_a_full_run_without_out_dir_writes_the_shipped_folder(arguments, expected, mnist_dir, monkeypatch):
    chosen = record_out_dir(monkeypatch, arguments[0])
    assert main([*arguments, "--data-dir", str(mnist_dir)]) == 0
    assert chosen == [None if expected is None else Path(expected)]


def record_out_dir(monkeypatch: pytest.MonkeyPatch, command: str) -> list:
    """Replace the function ``command`` runs by one that records the folder it was asked to write."""
    chosen: list = []
    target = {
        "train": "training.pipeline.train_and_export",
        "sweep": "training.sweep.sweep",
        "analyze": "training.analyze.analyze",
    }[command]
    position = {"train": 1, "sweep": 1, "analyze": 2}[command]
    monkeypatch.setattr(target, lambda *args, **kwargs: chosen.append(args[position]) or Path("recorded"))
    return chosen


def test_replacing_a_folder_drops_what_the_new_one_lacks_and_leaves_nothing_beside_it(tmp_path):
    target, new = tmp_path / "variants", tmp_path / ".variants-new"
    (target / "sigmoid-sgd").mkdir(parents=True)
    (target / "sigmoid-sgd" / "manifest.json").write_text("{}")
    (new / "relu-adam").mkdir(parents=True)
    (new / "comparison.json").write_text("{}")
    replace_folder(new, target)
    assert sorted(path.name for path in target.iterdir()) == ["comparison.json", "relu-adam"]
    assert [path.name for path in tmp_path.iterdir()] == ["variants"]


def test_a_sweep_that_fails_leaves_the_previous_results_untouched(mnist_dir, tmp_path, monkeypatch):
    out = tmp_path / "variants"
    (out / "relu-adam").mkdir(parents=True)
    (out / "relu-adam" / "manifest.json").write_text("previous")

    def fail(*args, **kwargs):
        raise RuntimeError("training broke")

    monkeypatch.setattr(sweep_module, "train_classifier_entry", fail)
    with pytest.raises(RuntimeError, match="training broke"):
        sweep(mnist_dir, out, ("relu",), ("adam",), epochs=1, train_limit=100, test_limit=100)
    assert (out / "relu-adam" / "manifest.json").read_text() == "previous"
    assert [path.name for path in tmp_path.iterdir()] == ["variants"]


@pytest.mark.parametrize("variant", ["16", "-1", "swish-adam", "relu_adam"])
def test_an_unknown_variant_or_an_index_out_of_range_stops_with_one_line_listing_the_valid_ones(
    variant, tmp_path, capsys
):
    assert main(["train-variant", variant, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "0 relu-adadelta, 1 relu-adam" in err and "15 elu-rmsprop" in err
    assert list(tmp_path.iterdir()) == []


def test_without_a_variant_the_index_comes_from_the_job(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    assert main(["train-variant", "--out-dir", str(tmp_path)]) == 2
    assert "set JOB_COMPLETION_INDEX" in capsys.readouterr().err
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "99")
    assert main(["train-variant", "--out-dir", str(tmp_path)]) == 2
    assert "variant index 99 out of range: choose 0-15" in capsys.readouterr().err


def test_the_variants_table_lists_activations_outer_and_optimizers_inner(capsys):
    assert main(["variants"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 17
    assert lines[1].split()[:4] == ["0", "relu-adadelta", "relu", "adadelta"]
    assert lines[2].split()[:2] == ["1", "relu-adam"] and lines[16].split()[:2] == ["15", "elu-rmsprop"]


def test_one_variant_never_trains_into_the_shipped_folder(capsys):
    before = models_snapshot()
    assert main(["train-variant", "relu-adam", "--out-dir", str(MODELS / "variants")]) == 2
    assert "not training one variant into the shipped models/variants" in capsys.readouterr().err
    assert models_snapshot() == before
