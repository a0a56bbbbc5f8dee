"""``python -m bench.hotpath``: the hot path's table, every figure beside its reference measured in the same run.

The service and the raw-ASGI reference (``bench/raw_asgi.py``) run at the same time under the same HTTP server with
the same settings; each round measures one, then the other, so that both see the same load from the rest of the
machine. What it prints, each as a ratio to its reference:

- ``/v1/classify`` req/s at concurrency 16, one worker, against the raw-ASGI app doing the same work;
- (classify p50 - ``/healthz`` p50) at concurrency 1 against bare onnxruntime's batch-1 p50 in-process, and the
  same difference for the raw-ASGI reference (its classification against its readiness GET), the floor of that;
- p99 / p50 at concurrency 16;
- ``/v1/classify/batch`` of 1,000 images against bare onnxruntime with every core;
- RSS of each worker after all of the above;
- throughput with ``WEB_CONCURRENCY=2`` against one worker, measured in alternation.

``--server granian`` serves both apps with granian instead of uvicorn (``--python`` names an interpreter that has it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import numpy as np

from bench import inprocess
from bench.__main__ import npy_body
from bench.load import ROOT, Load, rss_mb, serving, wrk
from bench.measure import Row, latencies_ms, markdown, p50, ratio
from bench.results import RESULTS, machine, say, write_results
from service.contract import INPUT_NAME

DIGIT = ROOT / "examples" / "digit-7.png"


def server_command(server: str, python: str, app: str, files: Path) -> list[str]:
    """Serve ``app`` (``service`` or ``raw``) with ``server`` on the HOST and PORT that ``serving`` sets; granian
    gets the service's logging (its JSON access log) from a file in ``files``."""
    if server == "uvicorn":
        return [python, "-m", "service"] if app == "service" else [python, "-m", "bench.raw_asgi"]
    from service.__main__ import log_config

    config = files / "log-config.json"
    config.write_text(json.dumps(log_config()))
    target = "--factory service.api.app:create_app" if app == "service" else "bench.raw_asgi:app"
    return [
        "sh",
        "-c",
        f'exec "{python}" -m granian --interface asgi --loop uvloop --host "$HOST" --port "$PORT" '
        f'--workers "${{WEB_CONCURRENCY:-1}}" --no-ws --log-config "{config}" {target}',
    ]


class BareBatch:
    """Bare onnxruntime over 1,000 images with every core (one session, one intra-op thread per core), asking for the
    two outputs the classification and its digit judge need, in runs of its own fastest size: whichever of CHUNKS
    is fastest in a calibration (3 alternating rounds) before the measures."""

    CHUNKS = (8, 16, 32)

    def __init__(self, model: Path) -> None:
        self.session = inprocess.session(model, len(os.sched_getaffinity(0)))
        self.batch = inprocess.images(1000)
        rounds = {chunk: [] for chunk in self.CHUNKS}
        for _ in range(3):
            for chunk, times in rounds.items():
                times.append(float(np.median(latencies_ms(partial(self.run, chunk), 0.5, warmup=1))))
        self.chunk = min(rounds, key=lambda chunk: np.median(rounds[chunk]))

    def run(self, chunk: int) -> None:
        from service.studies.digit_judge import OUTPUTS

        for start in range(0, len(self.batch), chunk):
            self.session.run(list(OUTPUTS), {INPUT_NAME: self.batch[start : start + chunk]})

    def img_s(self, seconds: float) -> float:
        return 1000 / (float(np.median(latencies_ms(partial(self.run, self.chunk), seconds, warmup=1))) / 1000)


def worker_rss(service_pid: int) -> list[float]:
    """RSS of each Python process serving (one per worker; the supervisor too when there are several)."""
    from bench.load import _descendants

    pids = [service_pid, *_descendants(service_pid)]
    return [rss_mb(pid) for pid in pids if b"python" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def median_p50(loads: list[Load]) -> float:
    """The median of the rounds' p50 latencies, ms."""
    return p50(np.array([load.p50_ms for load in loads]))


def best(loads: list[Load]) -> Load:
    """The round with the median throughput (its latencies come with it)."""
    return sorted(loads, key=lambda load: load.rps)[len(loads) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__)
    parser.add_argument(
        "--rounds",
        type=int,
        default=8,
        help="alternating rounds per pair (the median of the rounds' ratios counts): many short rounds, because this "
        "machine's speed drifts by 10-40 %% from one few-second stretch to the next",
    )
    parser.add_argument("--seconds", type=float, default=2.5, help="seconds per wrk run")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the servers")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the service (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS / "hotpath.json")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    seconds, rounds = args.seconds, args.rounds
    load_before = os.getloadavg()
    model = ROOT / "models" / "classifier.onnx"

    say("onnxruntime in-process")
    ort = inprocess.onnxruntime_figures(model, seconds / 2)
    bare = BareBatch(model)
    rows, raw_runs = [], {}
    with tempfile.TemporaryDirectory() as files, ExitStack() as stack:
        batch = Path(files) / "batch.npy"
        batch.write_bytes(npy_body(1000))
        say(f"serving the service and the raw-ASGI reference with {args.server}")
        service = stack.enter_context(
            serving(server_command(args.server, args.python, "service", Path(files)), env=env)
        )
        raw = stack.enter_context(serving(server_command(args.server, args.python, "raw", Path(files)), env=env))
        for target in (service, raw):
            wrk(f"{target.url}/v1/classify", DIGIT, "image/png", 4, 2)
        c16, ref16, c1, health1, ref1, ref_get1 = [], [], [], [], [], []
        for _ in range(rounds):
            c16.append(wrk(f"{service.url}/v1/classify", DIGIT, "image/png", 16, seconds))
            ref16.append(wrk(f"{raw.url}/v1/classify", DIGIT, "image/png", 16, seconds))
        for _ in range(rounds):
            c1.append(wrk(f"{service.url}/v1/classify", DIGIT, "image/png", 1, seconds))
            health1.append(wrk(f"{service.url}/healthz", DIGIT, "", 1, seconds, method="GET"))
            ref1.append(wrk(f"{raw.url}/v1/classify", DIGIT, "image/png", 1, seconds))
            ref_get1.append(wrk(f"{raw.url}/healthz", DIGIT, "", 1, seconds, method="GET"))
        ours, ref = best(c16), best(ref16)
        one_p50, health_p50 = median_p50(c1), median_p50(health1)
        ref_added = median_p50(ref1) - median_p50(ref_get1)
        b1 = ort["b1_p50_ms_1t"]
        served, bare_runs = [], []
        for _ in range(rounds):  # alternating, so that both see the same machine
            served.append(wrk(f"{service.url}/v1/classify/batch", batch, "application/x-npy", 1, max(seconds, 4.0)))
            bare_runs.append(bare.img_s(max(seconds, 4.0) / 2))
        batch_load = best(served)
        bare_batch = float(np.median(bare_runs))
        rss = worker_rss(service.pid)
        raw_runs = {
            "classify_c16": [vars(load) for load in c16],
            "raw_c16": [vars(load) for load in ref16],
            "classify_c1": [vars(load) for load in c1],
            "healthz_c1": [vars(load) for load in health1],
            "raw_c1": [vars(load) for load in ref1],
            "raw_get_c1": [vars(load) for load in ref_get1],
        }
        rows += [
            Row(
                "`/v1/classify` req/s at c=16, one worker (median of the rounds)",
                ours.rps,
                "req/s",
                "raw-ASGI reference doing the same work, same server, alternating rounds",
                ref.rps,
                round(float(np.median([a.rps / b.rps for a, b in zip(c16, ref16)])), 2),
                "times the reference (median of the rounds' ratios); target >= 0.6; per round: "
                + ", ".join(f"{a.rps / b.rps:.2f}" for a, b in zip(c16, ref16)),
            ),
            Row(
                "classify p50 - /healthz p50, c=1",
                one_p50 - health_p50,
                "ms",
                "bare onnxruntime batch-1 p50 in-process (1 thread)",
                b1,
                ratio(one_p50 - health_p50, b1),
                f"times the bare run; target <= 2 (classify p50 {one_p50:.3g} ms, /healthz p50 {health_p50:.3g} ms)",
            ),
            Row(
                "the raw-ASGI reference's own classify p50 - its GET p50, c=1 (what no framework costs)",
                ref_added,
                "ms",
                "bare onnxruntime batch-1 p50 in-process (1 thread)",
                b1,
                ratio(ref_added, b1),
                "times the bare run: the floor for the row above",
            ),
            Row(
                "classify p99 at c=16",
                ours.p99_ms,
                "ms",
                "classify p50 at c=16",
                ours.p50_ms,
                ratio(ours.p99_ms, ours.p50_ms),
                f"times the p50; target <= 3 (the reference: {ref.p99_ms / ref.p50_ms:.2f})",
            ),
            Row(
                "`/v1/classify/batch` of 1,000 images (.npy)",
                batch_load.rps * 1000,
                "img/s",
                f"bare onnxruntime in-process, every core, the same 1,000 images in its fastest chunks ({bare.chunk}), "
                "alternating",
                bare_batch,
                round(float(np.median([a.rps * 1000 / b for a, b in zip(served, bare_runs)])), 2),
                "times the bare run (median of the rounds' ratios); target >= 0.9; per round: "
                + ", ".join(f"{a.rps * 1000 / b:.2f}" for a, b in zip(served, bare_runs)),
            ),
            Row(
                "RSS per worker after the measures above",
                max(rss),
                "MB",
                "the target",
                200.0,
                ratio(max(rss), 200.0),
                "times the 200 MB target",
            ),
        ]
        stack.close()
        say("WEB_CONCURRENCY=2 against one worker, alternating")
        one_worker = stack.enter_context(
            serving(server_command(args.server, args.python, "service", Path(files)), env=env)
        )
        two = stack.enter_context(
            serving(
                server_command(args.server, args.python, "service", Path(files)), env={**env, "WEB_CONCURRENCY": "2"}
            )
        )
        for target in (one_worker, two):
            wrk(f"{target.url}/v1/classify", DIGIT, "image/png", 4, 2)
        w1, w2 = [], []
        for _ in range(rounds):
            w1.append(wrk(f"{one_worker.url}/v1/classify", DIGIT, "image/png", 16, seconds))
            w2.append(wrk(f"{two.url}/v1/classify", DIGIT, "image/png", 16, seconds))
        raw_runs["one_worker_c16"] = [vars(load) for load in w1]
        raw_runs["two_workers_c16"] = [vars(load) for load in w2]
        rows.append(
            Row(
                "`/v1/classify` req/s at c=16, WEB_CONCURRENCY=2",
                best(w2).rps,
                "req/s",
                "one worker, alternating rounds",
                best(w1).rps,
                round(float(np.median([a.rps / b.rps for a, b in zip(w2, w1)])), 2),
                "times one worker (median of the rounds' ratios); target >= 1.8; per round: "
                + ", ".join(f"{a.rps / b.rps:.2f}" for a, b in zip(w2, w1)),
            )
        )
        rows.append(
            Row(
                "RSS per worker, WEB_CONCURRENCY=2, after its load",
                max(worker_rss(two.pid)),
                "MB",
                "one worker after the same load",
                max(worker_rss(one_worker.pid)),
                ratio(max(worker_rss(two.pid)), max(worker_rss(one_worker.pid))),
                "times one worker's",
            )
        )
    load_after = os.getloadavg()
    table = markdown(rows)
    print(table)
    print(f"\nserver {args.server}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    write_results(
        args.out,
        {
            "machine": machine(),
            "server": args.server,
            "env": env,
            "load_average": {"before": load_before, "after": load_after},
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "onnxruntime": {**ort, "batch_1000_all_cores_img_s": bare_runs},
            "rows": [row.as_dict() for row in rows],
            "runs": raw_runs,
            "markdown": table,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
