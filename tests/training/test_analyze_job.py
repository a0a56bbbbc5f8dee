"""deploy/kubernetes/analyze-job.yaml run locally: the shard pod's exact command (read from the YAML) for indexes 0
and 1, then the merge Job's exact command, in a temporary working folder standing for the pod's /convlens, with the
shared volume's analysis/models (the shipped models) and analysis/images (500 real MNIST test images as PNGs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from PIL import Image

from service.contract import STATISTICS_FILE, TOP_IMAGES_FILE
from tests.helpers import MODELS, ROOT
from training.stream_analysis import analyze_images

ANALYZE_JOB = ROOT / "deploy" / "kubernetes" / "analyze-job.yaml"
IMAGES = 500


def container(job: str) -> dict:
    """The one container of the Job named ``job``."""
    for document in yaml.safe_load_all(ANALYZE_JOB.read_text()):
        if document and document["kind"] == "Job" and document["metadata"]["name"] == job:
            (found,) = document["spec"]["template"]["spec"]["containers"]
            return found
    raise AssertionError(f"no Job {job} in {ANALYZE_JOB}")


def run_container(spec: dict, work: Path, **env: str) -> subprocess.CompletedProcess:
    """The container's exact command and arguments in ``work``, with this Python for the image's ``python``."""
    command = [*spec["command"], *spec["args"]]
    assert command[0] == "python"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    for variable in spec.get("env", []):
        environment[variable["name"]] = variable["value"].replace("/tmp/", f"{work}/tmp/")
    return subprocess.run(
        [sys.executable, *command[1:]], cwd=work, env=environment, capture_output=True, text=True, timeout=600
    )


def test_the_shard_pods_then_the_merge_give_the_statistics_of_one_run(mnist_test, tmp_path):
    work = tmp_path / "convlens"
    images, labels = mnist_test
    for index in range(IMAGES):
        folder = work / "analysis" / "images" / str(labels[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(folder / f"{index:05d}.png")
    models = work / "analysis" / "models"
    models.mkdir(parents=True)
    for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx"):
        (models / name).symlink_to(MODELS / name)

    shard, merge = container("convlens-analyze"), container("convlens-analyze-merge")
    for index in (0, 1):
        done = run_container(shard, work, JOB_COMPLETION_INDEX=str(index))
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"wrote analysis/parts/part-{index}-of-2.npz" in done.stdout
    merged = run_container(merge, work)
    assert merged.returncode == 0, merged.stderr[-3000:]

    single = tmp_path / "single"
    analyze_images(models, "classifier", work / "analysis" / "images", single, plots=False, progress=False)
    assert (models / TOP_IMAGES_FILE).read_bytes() == (single / TOP_IMAGES_FILE).read_bytes()
    statistics = json.loads((models / STATISTICS_FILE).read_text())
    assert statistics.pop("plots") and {**statistics, "plots": {}} == json.loads((single / STATISTICS_FILE).read_text())
    assert any((models / "plots").glob("norms-conv2*.png")), "the merge draws the plots"
