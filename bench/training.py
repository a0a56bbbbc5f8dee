"""``python -m bench.training``: the classifier's training speed, every alternative beside a plain float32
``model.fit`` of the same network on the same images, measured in the same run.

Each alternative runs in a fresh process, since oneDNN, the thread pools and the dtype policy are fixed when
TensorFlow starts. A process trains the paper's classifier (Adam, cosine schedule, batch 128) on the 60,000 real
training images for a warm-up epoch of ``--steps`` batches (tracing, XLA compilation, shuffle set-up), then times
``--steps`` more; seconds per epoch are that time scaled to the 469 batches of a full epoch, training only (the
per-epoch validation pass is the same forward work in every alternative). Each alternative runs at the same time
as a run of the plain fit, so that a figure and its reference share whatever else loads the machine; ``--repeats``
rounds (the far slower XLA and bfloat16 once), of which the least disturbed pair (the shortest together) counts.
Wall and CPU seconds (all threads of the process) are both recorded: on a busy shared machine wall time swings
several-fold from one minute to the next, CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.load import ROOT
from bench.measure import Row, markdown, ratio
from bench.results import RESULTS, machine, say, write_results

BATCH = 128
TRAIN_IMAGES = 60_000
EPOCH_STEPS = math.ceil(TRAIN_IMAGES / BATCH)


@dataclass(frozen=True)
class Alternative:
    """One way of training the classifier: its input pipeline and the TensorFlow settings of its process."""

    title: str
    data: str  # "arrays": model.fit(x, y), no augmentation; "translation": the recipe before; "shipped": the recipe's
    onednn: bool = False
    threads: tuple[int, int] | None = None  # (intra-op, inter-op); None: TensorFlow's defaults
    precision: str = "float32"
    xla: bool = False
    once: bool = False  # measured in the first round only (far slower: more rounds would add minutes, not insight)


def shipped() -> Alternative:
    """What ``python -m training train`` runs by default: its config's precision and XLA setting, and the oneDNN
    setting the ``training`` package makes."""
    import training  # noqa: F401  (sets TF_ENABLE_ONEDNN_OPTS unless the environment did)
    from training.config import TrainConfig

    config, onednn = TrainConfig(), os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    settings = [config.precision, f"XLA {'on' if config.jit_compile else 'off'}", f"oneDNN {'on' if onednn else 'off'}"]
    return Alternative(
        f"the shipped recipe (`python -m training train`: {', '.join(settings)}, ±{config.shift} px batch shift)",
        "shipped",
        onednn=onednn,
        precision=config.precision,
        xla=config.jit_compile,
    )


REFERENCE, SHIPPED = "plain", "shipped"
ALTERNATIVES = {
    REFERENCE: Alternative("plain float32 `model.fit(x, y, batch_size=128)`, no augmentation, TF defaults", "arrays"),
    SHIPPED: shipped(),
    "before": Alternative(
        "the recipe before #19: ±2 px `RandomTranslation` mapped over tf.data batches, TF defaults", "translation"
    ),
    "pipeline": Alternative("tensors + whole-pixel batch shift in the graph + prefetch, TF defaults", "shipped"),
    "threads": Alternative("the pipeline, 2 intra-op and 1 inter-op threads", "shipped", threads=(2, 1)),
    "onednn-threads": Alternative(
        "the pipeline, oneDNN, 2 intra-op and 1 inter-op threads", "shipped", onednn=True, threads=(2, 1)
    ),
    "xla": Alternative(
        "the pipeline, oneDNN and XLA (`jit_compile=True`)", "shipped", onednn=True, xla=True, once=True
    ),
    "bf16": Alternative(
        "the pipeline, oneDNN and `mixed_bfloat16`", "shipped", onednn=True, precision="mixed_bfloat16", once=True
    ),
    "plain-onednn": Alternative("plain float32 `model.fit`, no augmentation, oneDNN", "arrays", onednn=True),
}


def child(name: str, steps: int) -> dict:
    """Run in a fresh process: configure TensorFlow for ``name``, train, and return the timed seconds."""
    alternative = ALTERNATIVES[name]
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if alternative.onednn else "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from training.config import TrainConfig
    from training.data import load_split
    from training.networks import build_classifier
    from training.train import make_optimizer, to_input

    if alternative.threads:
        tf.config.threading.set_intra_op_parallelism_threads(alternative.threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(alternative.threads[1])
    images, labels = load_split(os.environ.get("MNIST_DIR"), "train")
    x, y = to_input(images), labels.astype(np.int64)
    config = TrainConfig()
    keras.utils.set_random_seed(config.seed)
    model = build_classifier(precision=alternative.precision)
    model.compile(
        optimizer=make_optimizer("adam", 1e-3, "cosine", config.epochs * EPOCH_STEPS),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=alternative.xla,
    )
    seconds: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):
        """Wall and CPU seconds (every thread of the process) of each epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append((time.perf_counter() - self.started[0], time.process_time() - self.started[1]))

    fit = {"epochs": 2, "steps_per_epoch": steps, "callbacks": [Clock()], "verbose": 0}
    if alternative.data == "arrays":
        model.fit(x, y, batch_size=BATCH, shuffle=True, **fit)
    else:
        model.fit(_batches(alternative.data, x, y, config).repeat(), **fit)
    (warmup, _), (wall, cpu) = seconds
    return {"name": name, "warmup_seconds": warmup, "seconds": wall, "cpu_seconds": cpu, "steps": steps}


def _batches(data: str, x, y, config):
    """The shipped recipe's batches, or Keras' ``RandomTranslation`` in a ``tf.data`` map (the alternative)."""
    import keras
    import tensorflow as tf

    from training.train import training_batches

    if data == "shipped":
        return training_batches(x, y, config)
    factor = config.shift / 28
    translate = keras.layers.RandomTranslation(factor, factor, fill_mode="constant", seed=config.seed)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed).batch(BATCH)
    batches = batches.map(lambda a, b: (translate(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)


def measure_pair(name: str, steps: int) -> tuple[dict, dict]:
    """The plain fit and ``name``, each in its own process, both at once: they share the machine's load alike."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.training", "--child", which, "--steps", str(steps)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for which in (REFERENCE, name)
    ]
    runs = []
    for which, process in zip((REFERENCE, name), processes):
        out, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{which} failed:\n{err[-3000:]}")
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return runs[0], runs[1]


def epoch_seconds(run: dict, clock: str = "seconds") -> float:
    """The timed batches scaled to a full epoch of 469: wall (``seconds``) or CPU (``cpu_seconds``) time."""
    return run[clock] * EPOCH_STEPS / run["steps"]


def best_pair(pairs: list[tuple[dict, dict]], clock: str) -> tuple[float, float]:
    """(alternative, reference) seconds per epoch of the least disturbed pair: the shortest together."""
    return min(((epoch_seconds(alt, clock), epoch_seconds(ref, clock)) for ref, alt in pairs), key=sum)


def rows(pairs: dict[str, list[tuple[dict, dict]]]) -> list[Row]:
    """Every alternative's seconds per epoch, wall and CPU, beside those of the plain fit run at the same time."""
    title = ALTERNATIVES[REFERENCE].title
    found = []
    for clock, unit in (("seconds", "s"), ("cpu_seconds", "CPU s")):
        for name, measured in pairs.items():
            seconds, beside = best_pair(measured, clock)
            found.append(
                Row(
                    f"training {unit}/epoch: {ALTERNATIVES[name].title}",
                    seconds,
                    unit,
                    f"{title}, run at the same time",
                    beside,
                    ratio(seconds, beside),
                    "times the plain fit's",
                )
            )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__)
    parser.add_argument("--steps", type=int, default=60, help="batches timed per run (469 = one epoch)")
    parser.add_argument(
        "--repeats", type=int, default=2, help="rounds over the alternatives; the least disturbed counts"
    )
    parser.add_argument("--only", default=",".join(ALTERNATIVES), help="comma-separated alternatives")
    parser.add_argument("--out", type=Path, default=RESULTS / "training.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return 0
    names = [name for name in args.only.split(",") if name != REFERENCE]
    pairs: dict[str, list[tuple[dict, dict]]] = {name: [] for name in names}
    for round_ in range(1, args.repeats + 1):
        for name in names:
            if ALTERNATIVES[name].once and round_ > 1:
                continue
            say(f"round {round_}/{args.repeats}: {name} beside {REFERENCE}")
            reference, alternative = measure_pair(name, args.steps)
            pairs[name].append((reference, alternative))
            for clock in ("seconds", "cpu_seconds"):
                mine, beside = epoch_seconds(alternative, clock), epoch_seconds(reference, clock)
                say(f"  {clock} per epoch {mine:.1f} against {beside:.1f}")
    table = markdown(rows(pairs))
    print(table)
    write_results(
        args.out,
        {
            "machine": machine(),
            "steps": args.steps,
            "repeats": args.repeats,
            "load_average_after": os.getloadavg(),
            "alternatives": {name: asdict(ALTERNATIVES[name]) for name in [REFERENCE, *names]},
            "pairs": pairs,
            "rows": [row.as_dict() for row in rows(pairs)],
            "markdown": table,
        },
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
