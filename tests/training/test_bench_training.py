"""A tiny run of `python -m bench.training`, so that the training rows of the performance table cannot rot."""

import json
import os
import subprocess
import sys

from tests.helpers import ROOT


def test_a_short_run_writes_each_alternative_beside_a_plain_fit_run_at_the_same_time(tmp_path, mnist_dir):
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
    rows = results["rows"]
    assert [row["measure"].split(":")[0] for row in rows] == ["training s/epoch"] * 2 + ["training CPU s/epoch"] * 2
    assert "the shipped recipe (`python -m training train`" in rows[0]["measure"]
    assert rows[2]["measure"] == rows[0]["measure"].replace("s/epoch", "CPU s/epoch")
    assert "the recipe before #19" in rows[1]["measure"]
    for row in rows:
        assert row["reference"].startswith("plain float32 `model.fit(x, y, batch_size=128)`")
        assert row["value"] > 0 and row["reference_value"] > 0
        assert row["ratio"] == round(row["value"] / row["reference_value"], 2)
    assert results["markdown"].startswith("| measure |")
