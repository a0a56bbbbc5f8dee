"""deploy/kubernetes/sweep-job.yaml run locally: each pod's exact command (read from the YAML, on a small slice of
real MNIST) for indexes 0 and 1 into one shared folder, then the collect Job's exact command, then the service on
what it collected. The slice flags are appended to the pod's arguments; the rest is the YAML's, run in a temporary
working folder standing for the pod's /convlens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from service.contract import VARIANTS_DIR
from service.runtime.registry import model_files
from tests.helpers import ROOT, encode, link_shipped_models, post_image
from training.config import VARIANT_NAMES

SWEEP_JOB = ROOT / "deploy" / "kubernetes" / "sweep-job.yaml"
SLICE = ["--train-limit", "2000", "--test-limit", "500", "--epochs", "1"]
TRAINED = ("relu-adadelta", "relu-adam")  # indexes 0 and 1


def container(job: str) -> dict:
    """The one container of the Job named ``job``."""
    for document in yaml.safe_load_all(SWEEP_JOB.read_text()):
        if document and document["kind"] == "Job" and document["metadata"]["name"] == job:
            (found,) = document["spec"]["template"]["spec"]["containers"]
            return found
    raise AssertionError(f"no Job {job} in {SWEEP_JOB}")


def local_command(spec: dict, extra: list[str] = ()) -> list[str]:
    """The container's command and arguments, with this Python for the image's ``python``."""
    command = [*spec["command"], *spec["args"], *extra]
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def local_env(spec: dict, mnist_dir: Path, work: Path, **extra: str) -> dict[str, str]:
    """The container's environment, MNIST where it lies here and /tmp in the working folder; this checkout first."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for variable in spec.get("env", []):
        env[variable["name"]] = variable["value"].replace("/tmp/", f"{work}/tmp/")
    env["MNIST_DIR"] = str(mnist_dir)
    env.pop("JOB_COMPLETION_INDEX", None)
    return {**env, **extra}


def shared_folder(spec: dict, work: Path) -> Path:
    """The folder the pods train into, as the working folder sees it."""
    return work / spec["args"][spec["args"].index("--out-dir") + 1]


@pytest.fixture(scope="module")
def job_run(mnist_dir, tmp_path_factory) -> dict:
    """Pods 0 and 1 one after the other, then collect; their outputs and the folders."""
    work = tmp_path_factory.mktemp("convlens")
    train, collect = container("convlens-sweep"), container("convlens-sweep-collect")
    pods = []
    for index in (0, 1):
        env = local_env(train, mnist_dir, work, JOB_COMPLETION_INDEX=str(index))
        done = subprocess.run(
            local_command(train, SLICE), cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr[-3000:]
        pods.append(done.stdout)
    collected = subprocess.run(
        local_command(collect), cwd=work, env=local_env(collect, mnist_dir, work), capture_output=True, text=True
    )
    assert collected.returncode == 0, collected.stderr[-3000:]
    out = collect["args"][collect["args"].index("--out-dir") + 1]
    return {"pods": pods, "collect": collected.stdout, "shared": shared_folder(train, work), "out": work / out}


def test_each_pod_trains_the_variant_of_its_index_into_the_shared_folder(job_run):
    shared = job_run["shared"]
    assert sorted(path.name for path in shared.iterdir()) == sorted(TRAINED), "nothing half-written left beside"
    for name, log in zip(TRAINED, job_run["pods"], strict=True):
        assert f"{name}: training 1 epoch(s) on 2,000 images" in log
        assert f"{name} epoch 1/1: " in log, "progress per epoch"
        manifest = json.loads((shared / name / "manifest.json").read_text())
        training = manifest["models"]["classifier"]["training"]
        assert f"{training['activation']}-{training['optimizer']}" == name
        assert len(manifest["models"]["classifier"]["history"]["val_accuracy"]) == 1
        assert {"classifier.onnx", "statistics.json", "top_images.npz"} <= {p.name for p in (shared / name).iterdir()}


def test_collect_compares_the_two_and_names_the_fourteen_missing(job_run):
    out = job_run["out"]
    comparison = json.loads((out / "comparison.json").read_text())
    assert [row["model"] for row in comparison["variants"]] == list(TRAINED)
    assert comparison["missing"] == [name for name in VARIANT_NAMES if name not in TRAINED]
    assert comparison["recipe"]["epochs"] == 1 and comparison["recipe"]["train_images"] == 2000
    assert comparison["recipe"]["test_images"] == 500
    table = (out / "comparison.md").read_text()
    assert table.count("\n| relu-") == 2 and "Missing (14, not collected): relu-sgd, relu-rmsprop" in table
    assert "collected 2 of 16 variants" in job_run["collect"] and "elu-rmsprop (no folder)" in job_run["collect"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*TRAINED, "comparison.json", "comparison.md"])


def test_the_service_serves_what_was_collected(job_run, tmp_path, mnist_test):
    digit_png = encode(mnist_test[0][0])
    models = link_shipped_models(tmp_path / "models")
    (models / VARIANTS_DIR).symlink_to(job_run["out"], target_is_directory=True)
    with TestClient(create_app(Settings(model_dir=models))) as client:
        listed = [model["name"] for model in client.get("/v1/models").json()["models"]]
        assert listed == ["classifier", "autoencoder", *TRAINED]
        for name in TRAINED:
            answer = post_image(client, "/v1/classify", digit_png, model=name)
            assert answer.status_code == 200 and answer.json()["model"] == name


def test_a_pod_killed_midway_leaves_no_variant_to_serve_or_collect(mnist_dir, tmp_path, job_run):
    """SIGKILL while training: only a hidden temporary folder is left, which neither the service nor collect reads,
    and a later pod (a retry) still finishes the variant."""
    train = container("convlens-sweep")
    shared = shared_folder(train, tmp_path)
    env = local_env(train, mnist_dir, tmp_path, JOB_COMPLETION_INDEX="2")
    process = subprocess.Popen(
        local_command(train, SLICE), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while not list(shared.glob(".relu-sgd-partial-*")) and time.monotonic() < deadline:
            assert process.poll() is None, "finished before it could be killed"
            time.sleep(0.1)
        time.sleep(1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    (partial,) = shared.glob(".relu-sgd-partial-*")
    assert not (shared / "relu-sgd").exists()

    models = link_shipped_models(tmp_path / "models")
    (models / VARIANTS_DIR).symlink_to(shared, target_is_directory=True)
    assert [name for name, *_ in model_files(models)][2:] == []
    (job_run["shared"] / ".relu-adam-partial-0000").symlink_to(job_run["shared"] / "relu-adam")  # a complete one
    models_with_two = link_shipped_models(tmp_path / "two")
    (models_with_two / VARIANTS_DIR).symlink_to(job_run["shared"], target_is_directory=True)
    assert [name for name, *_ in model_files(models_with_two)][2:] == list(TRAINED)
    (job_run["shared"] / ".relu-adam-partial-0000").unlink()

    collected = subprocess.run(
        [sys.executable, "-m", "training", "collect", str(shared)],
        cwd=ROOT,
        env=local_env(train, mnist_dir, tmp_path),
        capture_output=True,
        text=True,
    )
    assert collected.returncode == 2 and "no complete variant" in collected.stderr
    assert len(collected.stderr.strip().splitlines()) == 1
    assert partial.exists(), "collect leaves other folders alone"
