"""``python -m bench.sequential``: what a sequential keep-alive Python client pays per ``/v1/classify``, beside the
raw-ASGI reference (``bench/raw_asgi.py``) in the same run.

wrk writes each request in one piece; a Python client (httpx here) writes the headers and the body in separate
writes (a multipart form in six) and waits for each answer before it sends the next request. Each round sends
``--requests`` sequential uploads of ``examples/digit-7.png`` over one keep-alive connection (as a raw ``image/png``
body and as a multipart form), and as many ``GET /healthz``, the three kinds taking turns request by request, to the
service and to the reference; the targets' order alternates from round to round and the kinds' order rotates. The
figure is (classify p50 - /healthz p50) of the service over the same difference of the reference for the same upload
(the reference reads a form's first part with python-multipart's parser): what the service's own machinery adds to
a classification, over what no framework adds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from bench.hotpath import server_command
from bench.load import ROOT, serving
from bench.results import RESULTS, machine, say, write_results

DIGIT = ROOT / "examples" / "digit-7.png"
TARGETS = ("service", "raw")
KINDS = ("raw_body", "multipart", "healthz")
UPLOADS = ("raw_body", "multipart")


def senders(client: httpx.Client, image: bytes) -> dict[str, Callable[[], httpx.Response]]:
    """Each kind's request on ``client``."""
    return {
        "raw_body": lambda: client.post("/v1/classify", content=image, headers={"Content-Type": "image/png"}),
        "multipart": lambda: client.post("/v1/classify", files={"image": ("digit-7.png", image, "image/png")}),
        "healthz": lambda: client.get("/healthz"),
    }


def interleaved_ms(client: httpx.Client, image: bytes, count: int, first: int) -> dict[str, np.ndarray]:
    """Each kind's ``count`` sequential requests' wall times in ms (the answer read in full), the kinds taking turns
    request by request from kind ``first`` on (a slow spell of the machine falls on every kind alike), after 20
    unmeasured of each."""
    send = senders(client, image)
    order = list(send)[first:] + list(send)[:first]
    times: dict[str, list[float]] = {kind: [] for kind in order}
    for index in range(count + 20):
        for kind in order:
            start = time.perf_counter_ns()
            response = send[kind]()
            elapsed = (time.perf_counter_ns() - start) / 1e6
            if response.status_code != 200:
                raise SystemExit(f"{kind}: HTTP {response.status_code}: {response.text[:200]}")
            if index >= 20:
                times[kind].append(elapsed)
    return {kind: np.array(each) for kind, each in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sequential", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (the median of their ratios counts)")
    parser.add_argument("--requests", type=int, default=400, help="sequential requests per kind, target and round")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the service (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS / "sequential.json")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    image = DIGIT.read_bytes()
    load_before = os.getloadavg()
    p50s: dict[str, dict[str, list[float]]] = {target: {kind: [] for kind in KINDS} for target in TARGETS}
    with (
        serving(server_command("uvicorn", sys.executable, "service", Path()), env=env) as service,
        serving(server_command("uvicorn", sys.executable, "raw", Path()), env=env) as raw,
    ):
        urls = {"service": service.url, "raw": raw.url}
        clients = {target: httpx.Client(base_url=url, timeout=30) for target, url in urls.items()}
        for turn in range(args.rounds):
            order = TARGETS if turn % 2 == 0 else TARGETS[::-1]
            say(f"round {turn + 1} of {args.rounds}: {', '.join(order)}")
            for target in order:
                for kind, times in interleaved_ms(clients[target], image, args.requests, turn % len(KINDS)).items():
                    p50s[target][kind].append(float(np.percentile(times, 50)))
        for client in clients.values():
            client.close()
    added = {
        target: {kind: [a - b for a, b in zip(p50s[target][kind], p50s[target]["healthz"])] for kind in UPLOADS}
        for target in TARGETS
    }
    ratios = {
        kind: [round(a / b, 3) for a, b in zip(added["service"][kind], added["raw"][kind], strict=True)]
        for kind in UPLOADS
    }
    lines = [
        "| upload | service: classify p50 - /healthz p50 | raw reference: the same | service ÷ reference, median "
        "of rounds (low–high) |",
        "|---|---|---|---|",
    ]
    for kind in UPLOADS:
        lines.append(
            f"| {kind.replace('_', ' ')} | {np.median(added['service'][kind]):.3f} ms | "
            f"{np.median(added['raw'][kind]):.3f} ms | {np.median(ratios[kind]):.2f}× "
            f"({min(ratios[kind]):.2f}–{max(ratios[kind]):.2f}) |"
        )
    table = "\n".join(lines)
    load_after = os.getloadavg()
    print(table)
    print(f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    write_results(
        args.out,
        {
            "machine": machine(),
            "env": env,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "rounds": args.rounds,
            "requests": args.requests,
            "load_average": {"before": load_before, "after": load_after},
            "p50_ms": p50s,
            "added_ms": added,
            "ratio": {kind: {"median": float(np.median(each)), "rounds": each} for kind, each in ratios.items()},
            "markdown": table,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
