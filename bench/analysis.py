"""``python -m bench.analysis``: the streamed dataset analysis (``python -m training analyze --images``) against bare
onnxruntime, its peak memory at 10x the data, and two shards at once against one run.

The MNIST training images are written once into a temporary folder as ``.npy`` shards with ``labels.npy`` (1x: one
shard; 10x: the same shard ten times) and, for the decoding figure, the first ``--png-images`` as a folder of PNGs,
one subfolder per digit. Every run is a fresh process, so its peak RSS (``VmHWM``) is its own; in each round the
measures run one after another in the same order (alternating), and the table shows the medians over the rounds.

- Throughput: the engine (``training.stream_analysis.analyze_images`` on ``--threads`` = the cores, timed in its
  process from loading the model to ``statistics.json`` written) against bare onnxruntime computing the same outputs
  (conv1, conv2, pool and the class scores) over the same memory-mapped ``.npy`` shard, scaled to [0, 1] in float32,
  from creating the session to the last run, in two configurations, of which the faster is the reference: one
  thread per core on one session of one intra-op thread each taking runs of ``BARE_ROWS`` images (as the engine
  does), and one run of ``BARE_ROWS`` at a time on a session with one intra-op thread per core. The engine's side
  adds the norms, the accumulators, the top pictures, the checkpoints and the statistics file.
- Memory: the engine's peak RSS over 10x the training images against the median of its runs over 1x.
- Shards: two processes, shard 0/2 and 1/2 with ``--threads 1`` each, started together, wall time from the start
  until both have written their part (the merge after is timed apart), against one process over all the images with
  a thread per core; both walls include starting Python and loading the model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.load import MODELS, ROOT
from bench.measure import Row, markdown, ratio
from bench.results import RESULTS, machine, say, write_results

BARE_ROWS = 32
OUTPUTS = ("conv1", "conv2", "pool", "output")


def cpu_seconds() -> float:
    """The CPU time (user and system, all threads) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def write_datasets(images: np.ndarray, labels: np.ndarray, root: Path, repeat: int, png_images: int) -> dict:
    """The folders the runs read: ``npy1`` (the images once), ``npy10`` (``repeat`` times), ``png`` (the first
    ``png_images`` as PNGs in class folders)."""
    from PIL import Image

    folders = {"npy1": root / "npy1", "npy10": root / "npy10", "png": root / "png"}
    folders["npy1"].mkdir(parents=True)
    np.save(folders["npy1"] / "images-00.npy", images)
    np.save(folders["npy1"] / "labels.npy", labels.astype(np.int64))
    folders["npy10"].mkdir()
    for copy in range(repeat):
        (folders["npy10"] / f"images-{copy:02d}.npy").symlink_to(folders["npy1"] / "images-00.npy")
    np.save(folders["npy10"] / "labels.npy", np.tile(labels.astype(np.int64), repeat))
    for index in range(min(png_images, len(images))):
        target = folders["png"] / str(labels[index])
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(target / f"{index:05d}.png")
    return folders


def engine_worker(images: Path, out_dir: Path, threads: int, shard: tuple[int, int]) -> dict:
    """One analysis in this process: its seconds, images analysed and peak RSS."""
    from training.stream_analysis import analyze_images

    started, cpu = time.perf_counter(), cpu_seconds()
    written = analyze_images(MODELS, "classifier", images, out_dir, shard, plots=False, progress=False, threads=threads)
    seconds = time.perf_counter() - started
    if shard[1] == 1:
        count = json.loads(written.read_text())["images"]
    else:
        with np.load(written) as part:
            count = int(part["group_counts"].sum())
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "images": count, "peak_rss_mb": peak_rss_mb()}


def bare_worker(images: Path, threads: int, split: bool) -> dict:
    """Bare onnxruntime over the ``.npy`` shards of ``images``: with ``split``, ``threads`` threads on one session
    of one intra-op thread each taking runs from a shared counter, else one session of ``threads`` intra-op threads
    taking the runs in turn."""
    import threading

    import onnxruntime as ort

    started, cpu = time.perf_counter(), cpu_seconds()
    arrays = [np.load(path, mmap_mode="r") for path in sorted(images.glob("images-*.npy"))]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1 if split else threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(MODELS / "classifier.onnx"), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    runs = [(array, start) for array in arrays for start in range(0, len(array), BARE_ROWS)]
    taken = iter(range(len(runs)))
    lock = threading.Lock()

    def take_runs() -> None:
        while True:
            with lock:
                number = next(taken, None)
            if number is None:
                return
            array, start = runs[number]
            piece = (array[start : start + BARE_ROWS] / np.float32(255.0)).astype(np.float32)[..., None]
            session.run(list(OUTPUTS), {name: piece})

    workers = [threading.Thread(target=take_runs) for _ in range(threads - 1 if split else 0)]
    for worker in workers:
        worker.start()
    take_runs()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    images = sum(len(array) for array in arrays)
    return {"seconds": seconds, "cpu": cpu_seconds() - cpu, "images": images, "peak_rss_mb": peak_rss_mb()}


def in_process(*args: str) -> dict:
    """``python -m bench.analysis --worker ...`` in a fresh process: its JSON line, and its wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.analysis", "--worker", *args], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"worker {args} failed: {done.stderr[-2000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": time.perf_counter() - started}


def two_shards(images: Path, out_dir: Path) -> dict:
    """Shards 0/2 and 1/2 at once, one thread each: the wall time until both have finished, then the merge's."""
    started = time.perf_counter()
    shards = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.analysis", "--worker", "engine", str(images), str(out_dir), "1", f"{i}/2"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for process in shards:
        _, error = process.communicate()
        if process.returncode:
            raise RuntimeError(f"shard failed: {error[-2000:]}")
    wall = time.perf_counter() - started
    merge_started = time.perf_counter()
    merged = subprocess.run(
        [sys.executable, "-m", "training", "merge", *map(str, sorted(out_dir.glob("part-*-of-2.npz"))),
         "--out-dir", str(out_dir / "merged"), "--images", str(images), "--no-plots"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )  # fmt: skip
    if merged.returncode:
        raise RuntimeError(f"merge failed: {merged.stderr[-2000:]}")
    return {"wall": wall, "merge": time.perf_counter() - merge_started}


def measure(rounds: int, memory_rounds: int, count: int, repeat: int, png_images: int, data_dir: str | None) -> dict:
    """Every measure, ``rounds`` alternating rounds (the 10x memory run in the first ``memory_rounds``)."""
    from training.data import load_split

    images, labels = load_split(data_dir, "train")
    images, labels = images[:count], labels[:count]
    cores = len(os.sched_getaffinity(0))
    samples: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as scratch:
        root = Path(scratch)
        say(f"writing {len(images):,} images as .npy (1x, {repeat}x) and {min(png_images, len(images)):,} as PNGs")
        folders = write_datasets(images, labels, root, repeat, png_images)

        def out(name: str) -> Path:
            target = root / "out" / name
            shutil.rmtree(target, ignore_errors=True)
            return target

        for number in range(rounds):
            say(f"round {number + 1} of {rounds}")
            plan = {
                "engine": ("engine", str(folders["npy1"]), str(out("engine")), str(cores), "0/1"),
                "bare_split": ("bare", str(folders["npy1"]), str(cores), "split"),
                "bare_intra": ("bare", str(folders["npy1"]), str(cores), "intra"),
                "engine_png": ("engine", str(folders["png"]), str(out("png")), str(cores), "0/1"),
                "engine_one_thread": ("engine", str(folders["npy1"]), str(out("one")), "1", "0/1"),
            }
            if number < memory_rounds:
                plan["engine_10x"] = ("engine", str(folders["npy10"]), str(out("10x")), str(cores), "0/1")
            for key, args in plan.items():
                samples.setdefault(key, []).append(in_process(*args))
                say(f"  {key}: {samples[key][-1]['images'] / samples[key][-1]['seconds']:,.0f} images/s")
            samples.setdefault("two_shards", []).append(two_shards(folders["npy1"], out("shards")))
            say(f"  two shards: {samples['two_shards'][-1]['wall']:.1f} s")
    return {"cores": cores, "images": len(images), "repeat": repeat, "png_images": png_images, "samples": samples}


def median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def rate(samples: list[dict]) -> float:
    return statistics.median(sample["images"] / sample["seconds"] for sample in samples)


def cpu_rate(samples: list[dict]) -> float:
    return statistics.median(sample["images"] / sample["cpu"] for sample in samples)


def rows(figures: dict) -> list[Row]:
    """The table: throughput against the faster bare configuration, memory at 10x against 1x, shards."""
    samples, images = figures["samples"], figures["images"]
    bare = max(rate(samples["bare_split"]), rate(samples["bare_intra"]))
    engine = rate(samples["engine"])
    table = [
        Row(f"engine, {images:,} .npy images, {figures['cores']} threads", engine, "images/s",
            "bare onnxruntime, same images and outputs, the faster configuration", bare, ratio(engine, bare),
            "engine / bare; target ≥ 0.8"),
        Row("engine, per CPU second (all threads)", cpu_rate(samples["engine"]), "images/CPU s",
            "bare onnxruntime, the faster configuration, per CPU second",
            max(cpu_rate(samples["bare_split"]), cpu_rate(samples["bare_intra"])),
            ratio(cpu_rate(samples["engine"]), max(cpu_rate(samples["bare_split"]), cpu_rate(samples["bare_intra"]))),
            "engine / bare"),
        Row("bare onnxruntime, a thread per core, runs of 32", rate(samples["bare_split"]), "images/s",
            "bare onnxruntime, one session of a thread per core, runs of 32", rate(samples["bare_intra"]),
            ratio(rate(samples["bare_split"]), rate(samples["bare_intra"])), "threads / intra-op"),
        Row(f"engine, {min(figures['png_images'], images):,} PNGs (decoding included)", rate(samples["engine_png"]),
            "images/s", "engine, .npy", engine, ratio(rate(samples["engine_png"]), engine), "PNG / .npy"),
        Row(f"engine peak RSS, {figures['repeat']}x the images", median(samples["engine_10x"], "peak_rss_mb"), "MB",
            "engine peak RSS, 1x", median(samples["engine"], "peak_rss_mb"),
            ratio(median(samples["engine_10x"], "peak_rss_mb"), median(samples["engine"], "peak_rss_mb")),
            f"{figures['repeat']}x / 1x; target ≤ 1.2"),
        Row("two shards at once, 1 thread each (wall)", median(samples["two_shards"], "wall"), "s",
            f"one run, {figures['cores']} threads (wall)", median(samples["engine"], "wall"),
            ratio(median(samples["two_shards"], "wall"), median(samples["engine"], "wall")),
            "shards / one run; target ≤ 0.6"),
        Row("two shards at once, 1 thread each (wall)", median(samples["two_shards"], "wall"), "s",
            "one run, 1 thread (wall)", median(samples["engine_one_thread"], "wall"),
            ratio(median(samples["two_shards"], "wall"), median(samples["engine_one_thread"], "wall")),
            "shards / one run on one thread"),
        Row("merge of the two parts", median(samples["two_shards"], "merge"), "s", "—", None),
    ]  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every measure (median)")
    parser.add_argument("--memory-rounds", type=int, default=1, help="rounds that also run the 10x analysis")
    parser.add_argument("--images", type=int, default=60_000, help="MNIST training images (1x)")
    parser.add_argument("--repeat", type=int, default=10, help="the memory measure's multiple of the images")
    parser.add_argument("--png-images", type=int, default=10_000, help="images written as PNGs for the PNG figure")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default $MNIST_DIR)")
    parser.add_argument("--out", type=Path, default=RESULTS / "analysis.json")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        if kind == "engine":
            images, out_dir, threads, shard = rest
            result = engine_worker(Path(images), Path(out_dir), int(threads), tuple(map(int, shard.split("/"))))
        else:
            images, threads, how = rest
            result = bare_worker(Path(images), int(threads), how == "split")
        print(json.dumps(result))
        return 0
    figures = measure(args.rounds, args.memory_rounds, args.images, args.repeat, args.png_images, args.data_dir)
    table = rows(figures)
    text = markdown(table)
    write_results(
        args.out,
        {"machine": machine(), "figures": figures, "rows": [row.as_dict() for row in table], "markdown": text},
    )
    print(text)
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
