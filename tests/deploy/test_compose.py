"""docker-compose.yml: valid for docker-compose, portable, hardened, and configured only through the
environment with the service's own defaults. (test_containers.py brings it up for real.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from service.api.settings import Settings
from tests.deploy.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
PROXY = ROOT / "deploy" / "compose.proxy.yml"
DEFAULTED = re.compile(r"^\$\{(\w+):-(.*)\}$")


def compose_env() -> dict[str, str]:
    """The environment without anything a developer's shell could interpolate into the file."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONVLENS_", "COMPOSE_", "DOCKER_")) and key not in ("WEB_CONCURRENCY", "MNIST_DIR")
    }


@pytest.fixture(scope="module")
def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        reason = "docker-compose is not installed (apt-get install docker-compose; .ci/run does)"
        if os.environ.get("REQUIRE_CONTAINER_TESTS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, PROXY]], ids=["compose", "compose+proxy"])
def test_docker_compose_accepts_the_files(docker_compose, files):
    arguments = [part for path in files for part in ("-f", str(path))]
    result = subprocess.run(
        [docker_compose, *arguments, "config", "-q"],
        cwd=ROOT,
        env=compose_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_training_service_is_built_from_its_own_dockerfile_under_a_profile(docker_compose):
    result = subprocess.run(
        [docker_compose, "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        env=compose_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert "profiles" not in resolved["api"] and resolved["train"]["profiles"] == ["training"]
    assert resolved["train"]["build"]["dockerfile"] == "Dockerfile.train"
    assert resolved["api"]["image"] == "convlens:latest" and resolved["api"]["ports"][0]["target"] == 8000


def test_the_api_is_health_checked_restarted_limited_and_read_only(services):
    api = services["api"]
    assert api["build"]["dockerfile"] == "Dockerfile"
    assert any(port.endswith(":8000") for port in api["ports"])
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert api["restart"] in ("unless-stopped", "always")
    assert api["read_only"] is True and any(path.split(":")[0] == "/tmp" for path in api["tmpfs"])
    assert "cpus" in api and "mem_limit" in api and "pids_limit" in api
    assert api["cap_drop"] == ["ALL"] and "no-new-privileges:true" in api["security_opt"]


def test_ulimits_are_explicit_with_soft_equal_to_hard(services):
    """podman 4.3 swaps soft and hard limits that come through the Docker API (see ../shared/CONTAINERS.md)."""
    ulimits = services["api"]["ulimits"]
    assert {"nofile", "nproc"} <= set(ulimits)
    for limit in ulimits.values():
        assert isinstance(limit, int) or limit["soft"] == limit["hard"]


def test_the_file_stays_portable_and_the_api_scalable(services):
    text = COMPOSE.read_text()
    assert "service_healthy" not in text and "pull_policy" not in text
    assert all("container_name" not in service for service in services.values()), "--scale needs generated names"


def test_the_training_service_reads_mounted_mnist_and_writes_the_models_to_a_volume(services):
    train = services["train"]
    assert train["profiles"] == ["training"] and train["build"]["dockerfile"] == "Dockerfile.train"
    assert train["command"] == ["train"]
    targets = {re.search(r":(/[\w/]+)(:ro|:rw)?$", volume)[1]: volume for volume in train["volumes"]}
    assert targets["/data/mnist"].endswith(":ro") and {"/convlens/models", "/convlens/reports"} <= set(targets)


def test_every_setting_in_the_environment_defaults_to_the_service_default(services):
    environment = services["api"]["environment"]
    fields = Settings.model_fields
    settings = {key: value for key, value in environment.items() if key.startswith("CONVLENS_")}
    assert {"CONVLENS_CORS_ORIGINS", "CONVLENS_MAX_UPLOAD_BYTES", "CONVLENS_MAX_PIXELS"} <= set(settings)
    assert "CONVLENS_MODEL_DIR" not in settings, "the image sets it: /app/models"
    for key, value in settings.items():
        name = key.removeprefix("CONVLENS_").lower()
        assert name in fields, f"{key} is not a setting of the service"
        match = DEFAULTED.match(str(value))
        assert match and match[1] == key, f"{key} should read ${{{key}:-default}}"
        assert getattr(Settings(**{name: match[2]}), name) == fields[name].default, (
            f"{key} defaults to {match[2]!r} here but to {fields[name].default!r} in service/api/settings.py"
        )
