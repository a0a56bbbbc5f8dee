"""``python -m bench.analysis`` at tiny sizes: every measure runs for real and lands in the results file (no timing is
asserted: the figures depend on the machine)."""

import json

from bench.analysis import main


def test_the_analysis_bench_writes_every_measure_from_real_runs(mnist_dir, tmp_path):
    out = tmp_path / "analysis.json"
    args = ["--rounds", "1", "--images", "120", "--repeat", "2", "--png-images", "30", "--data-dir", str(mnist_dir)]
    assert main([*args, "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    samples = written["figures"]["samples"]
    assert {key: [sample["images"] for sample in runs] for key, runs in samples.items() if key != "two_shards"} == {
        "engine": [120],
        "bare_split": [120],
        "bare_intra": [120],
        "engine_png": [30],
        "engine_one_thread": [120],
        "engine_10x": [240],
    }
    assert all(run["wall"] > 0 and run["merge"] > 0 for run in samples["two_shards"])
    assert written["rows"][0]["measure"].startswith("engine, 120 .npy images, ")
    assert [row["measure"] for row in written["rows"][1:]] == [
        "engine, per CPU second (all threads)",
        "bare onnxruntime, a thread per core, runs of 32",
        "engine, 30 PNGs (decoding included)",
        "engine peak RSS, 2x the images",
        "two shards at once, 1 thread each (wall)",
        "two shards at once, 1 thread each (wall)",
        "merge of the two parts",
    ]
    assert all(row["value"] > 0 for row in written["rows"])
    assert written["markdown"].splitlines()[0] == "| measure | value | reference | reference value | ratio |"
