"""convlens beside the servers users would pick instead, on the Open Inference Protocol, with the same requests.

Every server serves the shipped ``models/classifier.onnx`` in onnxruntime as the model ``classifier``; every request
is the same body, one image or 256 asking for ``output``, as JSON or as binary tensors (tritonclient's encoding).
Before any timing, each server's answers are checked against bare onnxruntime in this process: a server that gives
other probabilities, or fails an encoding, is left out of that encoding's rows and the reason is reported. A peer
that is not installed or does not start is reported and skipped, never faked.

The peers run from interpreters of their own, because they pin FastAPI, Starlette, pydantic and protobuf versions of
their own: MLServer and PyTriton from ``--peers-python`` (``CONVLENS_PEERS_PYTHON``; ``make bench-peers`` makes it
from ``bench/peers-requirements.txt``), KServe and LitServe from ``--kserve-python`` (``CONVLENS_KSERVE_PYTHON``;
from ``bench/peers-kserve-requirements.txt``). convlens runs from this interpreter as ``python -m service`` with its
defaults.

Every measure runs in rounds; each round measures every server once, in an order that rotates from round to round,
so that all see the same stretch of a shared machine. A ratio is convlens' figure over the peer's in the same round;
the median of the rounds' ratios counts, their range is its spread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench import inprocess
from bench.__main__ import v2_binary_body
from bench.load import ROOT, Load, serving, wrk
from bench.results import RESULTS, machine, say, write_results
from service.contract import INPUT_NAME

PEERS_PYTHON_VARIABLE = "CONVLENS_PEERS_PYTHON"
DEFAULT_PEERS_PYTHON = ROOT.parent / "venv-peers" / "bin" / "python"
KSERVE_PYTHON_VARIABLE = "CONVLENS_KSERVE_PYTHON"
DEFAULT_KSERVE_PYTHON = ROOT.parent / "venv-kserve" / "bin" / "python"
HERE = Path(__file__).resolve().parent
MODEL = ROOT / "models" / "classifier.onnx"
DIGIT = ROOT / "examples" / "digit-7.png"
INFER_PATH = "/v2/models/classifier/infer"
READY_PATH = "/v2/models/classifier/ready"
HEADER_LENGTH = "Inference-Header-Content-Length"
BATCH = 256
CONVLENS = "convlens"
# Probabilities from different servers' onnxruntime sessions agree to float32 rounding; JSON adds none (every
# server writes each float32's shortest repr, or more digits).
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Server:
    """A server to measure: its name, the package its interpreter must have (none: convlens), and its command on
    the PORT that ``serving`` sets, given that interpreter and a folder for its files; ``environment`` names the
    interpreter (``peers``: MLServer's and PyTriton's, ``kserve``: KServe's and LitServe's)."""

    name: str
    package: str | None
    command: Callable[[str, Path], list[str]]
    ready_path: str = READY_PATH
    environment: str = "peers"


def convlens_command(_python: str, _files: Path) -> list[str]:
    """The service as users start it, from this interpreter (``WEB_CONCURRENCY`` worker processes: 1 unless
    ``--convlens-workers`` sets it)."""
    return [sys.executable, "-m", "service"]


def mlserver(parallel_workers: int, max_batch_size: int = 0, max_batch_time: float = 0.0) -> Callable:
    """MLServer with the custom runtime ``bench/peers/mlserver_model.py``: ``parallel_workers`` 0 runs inference
    in the server's process, more in its worker pool; ``max_batch_size`` above 1 turns adaptive batching on."""

    def command(python: str, files: Path) -> list[str]:
        folder = files / f"mlserver-{parallel_workers}-{max_batch_size}"
        (folder / "classifier").mkdir(parents=True, exist_ok=True)
        (folder / "settings.json").write_text(json.dumps({"parallel_workers": parallel_workers, "debug": False}))
        model = {
            "name": "classifier",
            "implementation": "mlserver_model.OnnxClassifier",
            "parameters": {"uri": str(MODEL), "extra": {"threads": 1}},
        }
        if max_batch_size > 1:
            model |= {"max_batch_size": max_batch_size, "max_batch_time": max_batch_time}
        (folder / "classifier" / "model-settings.json").write_text(json.dumps(model))
        script = Path(python).parent / "mlserver"
        return [
            "sh",
            "-c",
            f'MLSERVER_HTTP_PORT="$PORT" MLSERVER_GRPC_PORT=$((PORT + 1)) MLSERVER_METRICS_PORT=$((PORT + 2)) '
            f'PYTHONPATH="{HERE}" exec "{script}" start "{folder}"',
        ]

    return command


def pytriton(dynamic_batching: bool) -> Callable:
    """PyTriton (the Triton server in its wheel) with ``bench/peers/pytriton_server.py``."""

    def command(python: str, _files: Path) -> list[str]:
        flag = " --dynamic-batching" if dynamic_batching else ""
        script = HERE / "pytriton_server.py"
        return ["sh", "-c", f'exec "{python}" "{script}" "{MODEL}" "$PORT" --threads 1{flag}']

    return command


def script(name: str) -> Callable:
    """A peer served by ``bench/peers/NAME`` with one onnxruntime thread (KServe's and LitServe's)."""

    def command(python: str, _files: Path) -> list[str]:
        return ["sh", "-c", f'exec "{python}" "{HERE / name}" "{MODEL}" "$PORT" --threads 1']

    return command


SERVERS = (
    Server(CONVLENS, None, convlens_command),
    Server("MLServer (inference in-process)", "mlserver", mlserver(0)),
    Server("MLServer (worker pool of 1)", "mlserver", mlserver(1)),
    Server("MLServer (adaptive batching, 16, 1 ms)", "mlserver", mlserver(0, 16, 0.001)),
    Server("PyTriton (no batching)", "nvidia-pytriton", pytriton(False)),
    Server("PyTriton (dynamic batching, 0 µs delay)", "nvidia-pytriton", pytriton(True)),
    Server("KServe (Python model server)", "kserve", script("kserve_server.py"), environment="kserve"),
    Server("LitServe", "litserve", script("litserve_server.py"), ready_path="/health", environment="kserve"),
)


@dataclass(frozen=True)
class Measure:
    """One row: the body (a file ``bodies`` writes), the connections, and what counts: ``rps``, ``p50`` or
    ``img_s`` (requests/s x the images in a request)."""

    key: str
    title: str
    body: str
    connections: int
    figure: str

    @property
    def higher_is_better(self) -> bool:
        return self.figure != "p50"


MEASURES = (
    Measure("json_c16", "one image, JSON, 16 connections, req/s", "one.json", 16, "rps"),
    Measure("json_c1", "one image, JSON, 1 connection, p50 ms", "one.json", 1, "p50"),
    Measure("binary_c16", "one image, binary tensors, 16 connections, req/s", "one.bin", 16, "rps"),
    Measure("json_256", f"{BATCH} images in one request, JSON, 1 connection, images/s", "many.json", 1, "img_s"),
    Measure("binary_256", f"{BATCH} images in one request, binary, 1 connection, images/s", "many.bin", 1, "img_s"),
)


@dataclass(frozen=True)
class Body:
    """A request body on disk, its content type, its headers and the images it holds."""

    path: Path
    content_type: str
    headers: dict[str, str]
    images: np.ndarray

    @property
    def binary(self) -> bool:
        return HEADER_LENGTH in self.headers


def json_body(images: np.ndarray) -> bytes:
    """An Open Inference Protocol JSON request for ``images`` (N, 28, 28) in [0, 1] asking for ``output``."""
    tensor = {"name": INPUT_NAME, "shape": [len(images), 28, 28, 1], "datatype": "FP32", "data": images.tolist()}
    return json.dumps({"inputs": [tensor], "outputs": [{"name": "output"}]}).encode()


def bodies(files: Path) -> dict[str, Body]:
    """The four bodies: ``digit-7.png`` alone, and BATCH deterministic images, each as JSON and as binary."""
    one = (np.asarray(Image.open(DIGIT).convert("L"), dtype=np.float32) / 255.0)[None]
    many = inprocess.images(BATCH)[..., 0]
    written = {}
    for name, images in (("one", one), ("many", many)):
        (files / f"{name}.json").write_bytes(json_body(images))
        written[f"{name}.json"] = Body(files / f"{name}.json", "application/json", {}, images)
        binary, header_length = v2_binary_body(images)
        (files / f"{name}.bin").write_bytes(binary)
        written[f"{name}.bin"] = Body(
            files / f"{name}.bin", "application/octet-stream", {HEADER_LENGTH: str(header_length)}, images
        )
    return written


def answer_output(answer: bytes, header_length: str | None) -> np.ndarray:
    """The ``output`` tensor of an inference answer, JSON or JSON followed by binary tensors."""
    text = answer if header_length is None else answer[: int(header_length)]
    document = json.loads(text)
    offset = len(text)
    for tensor in document["outputs"]:
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if tensor["name"] == "output":
            if size is None:
                return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            return np.frombuffer(answer[offset : offset + size], dtype="<f4").reshape(tensor["shape"])
        offset += size or 0
    raise ValueError("the answer has no output tensor")


def check_answer(url: str, body: Body, expected: np.ndarray) -> str | None:
    """None when ``url`` answers ``body`` with ``expected`` (to TOLERANCE), else what went wrong."""
    request = urllib.request.Request(
        url + INFER_PATH, body.path.read_bytes(), {"Content-Type": body.content_type, **body.headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            got = answer_output(response.read(), response.headers.get(HEADER_LENGTH))
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')}"
    except (OSError, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if got.size != expected.size or not np.allclose(got.ravel(), expected.ravel(), rtol=0, atol=TOLERANCE):
        gap = np.abs(got.ravel() - expected.ravel()).max() if got.size == expected.size else "shape"
        return f"other probabilities than bare onnxruntime (largest difference {gap})"
    return None


def expected_outputs(all_bodies: dict[str, Body]) -> dict[str, np.ndarray]:
    """Bare onnxruntime's ``output`` for each body's images: the answer every server must give."""
    session = inprocess.session(MODEL, 1)
    return {
        name: session.run(["output"], {INPUT_NAME: body.images[..., None].astype(np.float32)})[0]
        for name, body in all_bodies.items()
    }


def peer_versions(python: str) -> dict[str, str]:
    """The peers' interpreter's Python and its serving packages' versions (empty when it cannot run)."""
    code = (
        "import importlib.metadata as m, json, platform\n"
        "names = ('mlserver', 'nvidia-pytriton', 'kserve', 'litserve', 'onnxruntime', 'numpy', 'fastapi', "
        "'uvicorn')\n"
        "found = {}\n"
        "for name in names:\n"
        "    try: found[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps({'python': platform.python_version(), **found}))"
    )
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return {}
    return json.loads(done.stdout)


def figure(load: Load, measure: Measure) -> float:
    """What counts of one wrk run: successful req/s, successful images/s, or p50 ms."""
    if measure.figure == "p50":
        return load.p50_ms
    good = (load.requests - load.non2xx) / load.seconds
    return good * BATCH if measure.figure == "img_s" else good


def ratios(ours: list[float], theirs: list[float]) -> dict[str, float | list[float | None] | None]:
    """convlens over the peer, round by round: the median, the lowest and highest, and each round's; a round in
    which the peer completed no request (a figure of 0) has no ratio, and a peer with none in any round none at all."""
    each = [round(a / b, 3) if b else None for a, b in zip(ours, theirs)]
    found = [value for value in each if value is not None]
    if not found:
        return {"median": None, "low": None, "high": None, "rounds": each}
    return {"median": round(float(np.median(found)), 3), "low": min(found), "high": max(found), "rounds": each}


def measure_rounds(
    urls: dict[str, str], measure: Measure, body: Body, rounds: int, seconds: float
) -> dict[str, list[Load]]:
    """Each server's wrk runs of ``measure``, one per round, the servers' order rotating each round."""
    names = list(urls)
    runs: dict[str, list[Load]] = {name: [] for name in names}
    for turn in range(rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            url = urls[name] + INFER_PATH
            runs[name].append(
                wrk(url, body.path, body.content_type, measure.connections, seconds, headers=body.headers)
            )
    return runs


def compare(runs: dict[str, list[Load]], measure: Measure) -> dict[str, dict]:
    """Per peer of ``runs``: its figures and convlens' ratio to them."""
    ours = [figure(load, measure) for load in runs[CONVLENS]]
    compared = {}
    for name, loads in runs.items():
        if name != CONVLENS:
            theirs = [figure(load, measure) for load in loads]
            compared[name] = {"figures": theirs, "ratio": ratios(ours, theirs)}
    return compared


def table(document: dict) -> str:
    """The results as a markdown table: one line per measure and peer."""
    lines = [
        "| measure | peer | convlens (median) | peer (median) | convlens ÷ peer, median of rounds (low–high) |",
        "|---|---|---|---|---|",
    ]
    for measure in MEASURES:
        row = document["measures"].get(measure.key)
        if not row:
            continue
        ours = float(np.median(row["convlens"]))
        better = "higher is better" if measure.higher_is_better else "lower is better"
        for name, peer in row["peers"].items():
            ratio = peer["ratio"]
            shown = (
                f"{ratio['median']:.2f}× ({ratio['low']:.2f}–{ratio['high']:.2f}; {better})"
                if ratio["median"] is not None
                else f"— (no request completed within a {document['seconds']:g} s run)"
            )
            lines.append(
                f"| {measure.title} | {name} | {ours:,.4g} | {float(np.median(peer['figures'])):,.4g} | {shown} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument(
        "--peers-python",
        default=os.environ.get(PEERS_PYTHON_VARIABLE, str(DEFAULT_PEERS_PYTHON)),
        help=f"the interpreter that has the peers (default: ${PEERS_PYTHON_VARIABLE}, else {DEFAULT_PEERS_PYTHON})",
    )
    parser.add_argument(
        "--kserve-python",
        default=os.environ.get(KSERVE_PYTHON_VARIABLE, str(DEFAULT_KSERVE_PYTHON)),
        help=f"the interpreter that has KServe and LitServe (default: ${KSERVE_PYTHON_VARIABLE}, else "
        f"{DEFAULT_KSERVE_PYTHON})",
    )
    parser.add_argument(
        "--convlens-workers",
        type=int,
        default=1,
        help="convlens' worker processes (WEB_CONCURRENCY; default 1, its default; each peer keeps its own)",
    )
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per measure (the median counts)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--out", type=Path, default=RESULTS / "peers.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    pythons = {"peers": args.peers_python, "kserve": args.kserve_python}
    versions = {environment: peer_versions(python) for environment, python in pythons.items()}
    skipped: dict[str, str] = {}
    checks: dict[str, dict[str, str | None]] = {}
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        files = Path(folder)
        all_bodies = bodies(files)
        expected = expected_outputs(all_bodies)
        urls: dict[str, str] = {}
        for server in SERVERS:
            if server.package and server.package not in versions[server.environment]:
                skipped[server.name] = f"{server.package} is not installed in {pythons[server.environment]}"
                say(f"skipping {server.name}: {skipped[server.name]}")
                continue
            say(f"starting {server.name}")
            command = server.command(pythons[server.environment], files)
            try:
                env = {"WEB_CONCURRENCY": str(args.convlens_workers)} if server.name == CONVLENS else None
                service = stack.enter_context(serving(command, env, timeout=180, ready_path=server.ready_path))
            except RuntimeError as exc:
                skipped[server.name] = f"did not start: {exc}"
                say(f"skipping {server.name}: {skipped[server.name]}")
                continue
            urls[server.name] = service.url
            checks[server.name] = {
                name: check_answer(service.url, body, expected[name]) for name, body in all_bodies.items()
            }
            found = ", ".join(
                f"{name}: {problem or 'same probabilities'}" for name, problem in checks[server.name].items()
            )
            say(f"{server.name}: {found}")
        if CONVLENS not in urls or any(checks[CONVLENS].values()):
            raise SystemExit(f"convlens did not answer every body correctly: {checks.get(CONVLENS)}")
        for body in all_bodies.values():  # warm every server on every body it answers
            for name, url in urls.items():
                if checks[name][body.path.name] is None:
                    wrk(url + INFER_PATH, body.path, body.content_type, 4, 1, headers=body.headers)
        measures = {}
        for measure in MEASURES:
            body = all_bodies[measure.body]
            answering = {name: url for name, url in urls.items() if checks[name][measure.body] is None}
            if len(answering) < 2:
                continue
            say(f"{measure.title}: {', '.join(answering)}")
            runs = measure_rounds(answering, measure, body, args.rounds, args.seconds)
            measures[measure.key] = {
                "title": measure.title,
                "connections": measure.connections,
                "figure": measure.figure,
                "convlens": [figure(load, measure) for load in runs[CONVLENS]],
                "peers": compare(runs, measure),
                "runs": {name: [asdict(load) for load in loads] for name, loads in runs.items()},
            }
    document = {
        "machine": machine(),
        "peers_python": args.peers_python,
        "kserve_python": args.kserve_python,
        "convlens_workers": args.convlens_workers,
        "peer_versions": versions,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "skipped": skipped,
        "checks": checks,
        "measures": measures,
    }
    document["markdown"] = table(document)
    print(document["markdown"])
    print(f"\nload average before {load_before[0]:.2f}, after {document['load_average']['after'][0]:.2f}")
    write_results(args.out, document)
    print(f"wrote {args.out}")
    return 0
