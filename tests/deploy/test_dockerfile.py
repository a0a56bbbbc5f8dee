"""The Dockerfiles, read as text: what the images promise, checked where no container engine runs.

The container smoke test (test_containers.py) checks the same promises on the built image."""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import ROOT


def instructions(path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages(path) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (global ARGs before the first FROM are dropped)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.train"])
def test_images_are_multi_stage_on_python_3_11_slim(name):
    dockerfile = ROOT / name
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", dockerfile.read_text(), re.M)
    built = stages(dockerfile)
    assert len(built) == 2 and all(stage[0][1].startswith("${PYTHON_IMAGE}") for stage in built)
    final = dict(built[-1])
    assert "COPY --from=build /opt/venv /opt/venv" in {f"COPY {args}" for kind, args in built[-1] if kind == "COPY"}
    assert "pip install" not in " ".join(args for kind, args in built[-1] if kind == "RUN"), (
        "dependencies are installed in the build stage only"
    )
    assert final["USER"] == "${APP_UID}:${APP_UID}" and "ARG" in final


def test_the_service_image_installs_the_serve_extra_only_with_the_constraints():
    build = " ".join(args for kind, args in stages(ROOT / "Dockerfile")[0] if kind == "RUN")
    assert "['optional-dependencies']['serve']" in build and "-c constraints.txt" in build
    assert "['train']" not in build and "tensorflow" not in build.lower()


def test_the_service_image_runs_unprivileged_with_baked_models_and_a_health_check():
    final = stages(ROOT / "Dockerfile")[-1]
    text = " ".join(f"{kind} {args}" for kind, args in final)
    assert re.search(r"ARG APP_UID=(\d+)", text) and int(re.search(r"ARG APP_UID=(\d+)", text)[1]) >= 1000
    assert "COPY models/ /app/models/" in text and "CONVLENS_MODEL_DIR=/app/models" in text
    assert "WEB_CONCURRENCY=1" in text and "HOST=0.0.0.0" in text
    healthcheck = dict(final)["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "CMD" in healthcheck
    assert dict(final)["CMD"] == '["python", "-m", "service"]'


def test_the_training_image_runs_the_training_cli_on_mounted_data():
    final = dict(stages(ROOT / "Dockerfile.train")[-1])
    assert final["ENTRYPOINT"] == '["python", "-m", "training"]'
    assert final["CMD"] == '["train"]'
    assert "MNIST_DIR=/data/mnist" in final["ENV"]
    # the CLI's relative defaults (models/, reports/paper) land in the mounted volumes
    assert final["WORKDIR"] == "/convlens" and "/convlens/models /convlens/reports" in final["RUN"]


def test_the_build_context_is_an_allowlist_that_keeps_data_and_secrets_out():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*", "everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"service", "training", "models", "pyproject.toml", "constraints.txt", "README.md"}
