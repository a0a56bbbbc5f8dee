"""``python -m bench.gradient_paths [REVISION]``: the shipped classifier's attribution methods on the gradient
builder's graph against the hand-written backward graph of an earlier revision (its
service/graphs/backward_graph.py, read with ``git show``; default 8857d8b, the last revision that has it), in
one process, alternating rounds, one intra-op thread per run, runs of 32 images or more cut into one part per
core as the service does by default. Prints a Markdown table of the median ratios;
each method's maps are checked equal (within 1e-5 of the largest entry) first.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

import service.attribution.backward as backward_module
from service.attribution import METHODS, classifier_weights
from service.graphs.backward_graph import graphs_of
from training.data import load_split

ROOT = Path(__file__).resolve().parents[1]
GRADIENT_METHODS = ("saliency", "gradient-x-input", "guided-backprop", "grad-cam", "integrated-gradients", "smoothgrad")


def hand_written(revision: str, folder: Path):
    """The backward_graph module of ``revision``, loaded under its own name."""
    source = subprocess.run(
        ["git", "show", f"{revision}:service/graphs/backward_graph.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = folder / "hand_written_backward_graph.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("hand_written_backward_graph", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", default="8857d8b")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--mnist-dir", default=str(ROOT.parent / "shared" / "mnist"))
    args = parser.parse_args()
    weights = classifier_weights(onnx.load(str(ROOT / "models" / "classifier.onnx")))
    images, labels = load_split(args.mnist_dir, "test")
    images, labels = images[:64].astype(np.float32) / 255, labels[:64].astype(np.intp)
    with tempfile.TemporaryDirectory() as folder:
        old = hand_written(args.revision, Path(folder))
        print("| method | images | hand-written (ms) | builder (ms) | builder / hand-written |")
        print("|---|---:|---:|---:|---:|")
        for name in GRADIENT_METHODS:
            method = METHODS[name]
            parameters = {key: spec.default for key, spec in method.parameters.items()}
            heavy = name in ("integrated-gradients", "smoothgrad")
            for count in (1, 16, 64):
                x, t = images[:count], labels[:count]
                repeats = (1 if count > 1 else 8) if heavy else max(3, 128 // count)
                rounds = max(5, args.rounds // 2) if heavy and count == 64 else args.rounds

                def timed(graphs, x=x, t=t, method=method, parameters=parameters, repeats=repeats):
                    backward_module.graphs_of = graphs
                    maps = method.compute(None, weights, x, t, **parameters)
                    start = time.perf_counter()
                    for _ in range(repeats):
                        method.compute(None, weights, x, t, **parameters)
                    return (time.perf_counter() - start) / repeats, maps

                theirs, ours, ratios = [], [], []
                for _ in range(rounds):
                    (a, expected), (b, actual) = timed(old.graphs_of), timed(graphs_of)
                    theirs.append(a)
                    ours.append(b)
                    ratios.append(b / a)
                np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
                print(
                    f"| {name} | {count} | {np.median(theirs) * 1e3:.2f} | {np.median(ours) * 1e3:.2f} | "
                    f"{np.median(ratios):.2f} |",
                    flush=True,
                )
        backward_module.graphs_of = graphs_of


if __name__ == "__main__":
    main()
