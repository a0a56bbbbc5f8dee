"""``python -m bench.explanation_quality``: ``?metrics=all`` on one saliency map and each CAM method over HTTP beside
``POST /v1/classify`` on the same service and digit (alternating wrk rounds, one connection each), and in-process
what each metric of ``metrics=all`` costs on its own. Aims: ``metrics=all`` within 100 ms, each CAM within 3 times
classify.

Ratios, not digits, carry over from a shared machine: the load average before and after is printed with them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from bench.load import ROOT, serving, wrk
from bench.measure import Row, latencies_ms, markdown, p50, ratio
from bench.results import RESULTS, machine, say, write_results

METRICS_ALL = "/v1/attribution/saliency?format=json&metrics=all"
CAMS = (
    "grad-cam",
    "grad-cam-plus-plus",
    "xgrad-cam",
    "hires-cam",
    "layer-cam",
    "eigen-cam",
    "score-cam",
    "ablation-cam",
)
PATHS = {
    "classify": "/v1/classify",
    "saliency, metrics=all (JSON)": METRICS_ALL,
    **{f"{name} conv2 (PNG)": f"/v1/attribution/{name}" for name in CAMS},
}
# the forward passes of metrics=all on saliency: deletion and insertion curves of the map's and a random order
# (4 x 33), ROAD's two orders (2 x 10), faithfulness correlation's 50 subsets and the image; besides, 15 backward
FORWARD_IMAGES = 4 * 33 + 2 * 10 + 51
AIMS = {"saliency, metrics=all (JSON)": "aim: 100 ms"} | {f"{name} conv2 (PNG)": "aim <= 3" for name in CAMS}


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def http_figures(rounds: int, seconds: float) -> dict[str, list[float]]:
    """Per path, the p50 in ms of each round; the paths alternate within every round on one running service."""
    digit = ROOT / "examples" / "digit-7.png"
    found: dict[str, list[float]] = {name: [] for name in PATHS}
    with serving([sys.executable, "-m", "service"]) as service:
        for path in PATHS.values():
            wrk(f"{service.url}{path}", digit, "image/png", 1, 1)
        for round_number in range(rounds):
            say(f"round {round_number + 1} of {rounds}, load average {load_average()}")
            for name, path in PATHS.items():
                load = wrk(f"{service.url}{path}", digit, "image/png", 1, seconds)
                if load.non2xx or load.socket_errors:
                    raise RuntimeError(f"{path}: {load.non2xx} non-2xx answers, {load.socket_errors} socket errors")
                found[name].append(load.p50_ms)
    return found


def metric_figures(seconds: float) -> dict[str, float]:
    """p50 in ms of ``explanation_quality`` for each metric of ``metrics=all`` alone and all together, on saliency
    of the example digit, in this process (the randomised copies' sessions made in the warm-up)."""
    from service.graphs.backward_graph import graphs_of
    from service.graphs.classifier_graph import forward_model
    from service.images import decoding
    from service.quality.report import chosen_metrics
    from service.runtime.registry import load_registry
    from service.studies.explain import explain, weights_of
    from service.studies.explanation_quality import explanation_quality

    model = load_registry(ROOT / "models", variants=False).models["classifier"]
    data = (ROOT / "examples" / "digit-7.png").read_bytes()
    digit = decoding.prepare(decoding.decode(data, max_pixels=16_000_000), "auto").reshape(1, 28, 28)
    explanation = explain(model, digit, "saliency")
    every = chosen_metrics("all", complete=False)
    share = seconds / (len(every) + 1)
    figures = {
        name: p50(latencies_ms(lambda names=(name,): explanation_quality(model, digit, explanation, names), share, 3))
        for name in every
    }
    figures["all"] = p50(latencies_ms(lambda: explanation_quality(model, digit, explanation, every), share, 3))
    batch, graphs = np.repeat(digit, FORWARD_IMAGES, axis=0), graphs_of(weights_of(model))
    figures[f"reference: one forward run of {FORWARD_IMAGES} images (the forward passes of all)"] = p50(
        latencies_ms(lambda: graphs.run("forward", forward_model, {"input": batch}, ["logits"]), share, 3)
    )
    return figures


def rows(http: dict[str, list[float]]) -> list[Row]:
    classify = float(np.median(http["classify"]))
    found = [Row("HTTP classify p50 (median of the rounds)", classify, "ms", "—", None)]
    for name in [name for name in http if name != "classify"]:
        value = float(np.median(http[name]))
        per_round = ", ".join(f"{ratio(a, b):g}" for a, b in zip(http[name], http["classify"], strict=True))
        found.append(
            Row(
                f"HTTP {name} p50",
                value,
                "ms",
                "HTTP classify p50, alternating rounds",
                classify,
                ratio(value, classify),
                f"times classify (rounds: {per_round}); {AIMS[name]}",
            )
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explanation_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per path and round")
    parser.add_argument("--out", type=Path, default=RESULTS / "explanation_quality.json")
    args = parser.parse_args(argv)
    before = load_average()
    http = http_figures(args.rounds, args.seconds)
    metrics = metric_figures(4 * args.seconds)
    after = load_average()
    table = rows(http)
    print(f"load average before: {before}; after: {after}; {os.cpu_count()} cores\n")
    print(markdown(table))
    print("\nin-process p50 of explanation_quality on saliency of the example digit, per metric:\n")
    print("| metrics | p50 (ms) |\n|---|---:|")
    for name, value in metrics.items():
        print(f"| {name} | {value:.1f} |")
    write_results(
        args.out,
        {
            "machine": machine(),
            "load_average": {"before": before, "after": after},
            "rounds": http,
            "rows": [row.as_dict() for row in table],
            "metrics_in_process_ms": metrics,
        },
    )
    say(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if len(sys.argv) > 1 else None))
