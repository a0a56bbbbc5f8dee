"""A tiny run of `python -m bench.training`, so that the training rows of the performance table cannot rot."""

import json
import os
import subprocess
import sys

from tests.helpers import ROOT


def test_a_short_run_writes_each_alternative_beside_the_plain_fit_run_just_before_it(tmp_path, mnist_dir):
    out = tmp_path / "training.json"
    command = ["-m", "bench.training", "--steps", "2", "--repeats", "1", "--only", "shipped,before", "--out", str(out)]
    subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env={**os.environ, "MNIST_DIR": str(mnist_dir)},
        check=True,
        capture_output=True,
        timeout=900,
    )
    results = json.loads(out.read_text())
    assert set(results["pairs"]) == {"shipped", "before"}
    reference, *rows = results["rows"]
    assert reference["measure"].startswith("training s/epoch: plain float32 `model.fit")
    assert rows[0]["measure"].startswith("training s/epoch: the shipped recipe (`python -m training train`")
    assert rows[1]["measure"].startswith("training s/epoch: the recipe before #19")
    for row in rows:
        assert row["value"] > 0 and row["reference_value"] > 0
        assert row["ratio"] == round(row["value"] / row["reference_value"], 2)
    assert results["markdown"].startswith("| measure |")
