"""What a bench run leaves behind: progress on stderr, and its figures as JSON in ``bench/results/`` with the
machine they were measured on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime

from bench.load import ROOT

RESULTS = ROOT / "bench" / "results"


def say(text: str) -> None:
    """Progress on stderr, so the table on stdout stays clean."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine() -> dict:
    """The cores, CPU model, library versions and commit the figures were measured with."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    versions = {"python": platform.python_version(), "numpy": np.__version__, "onnxruntime": onnxruntime.__version__}
    try:
        import tensorflow

        versions["tensorflow"] = tensorflow.__version__
    except ImportError:
        versions["tensorflow"] = None
    return {"cores": os.cpu_count(), "cpu": cpu, "versions": versions, "commit": commit.strip()}


def write_results(path: Path, document: dict) -> Path:
    """Write ``document`` to ``path`` as indented JSON ending in a newline (its folder made if missing): one
    results file per bench command, ``RESULTS / "<name>.json"`` unless its ``--out`` says otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
