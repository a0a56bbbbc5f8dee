"""Deployment tests: the Dockerfiles, docker-compose.yml and deploy/kubernetes/, checked statically and,
where podman runs (``.ci/run`` installs it), built and run for real by the container smoke test."""

from __future__ import annotations

import time

import pytest

from tests.helpers import ROOT  # noqa: F401  (the deploy tests take it from here)

# numbers the smoke test measures (image size, times to healthy, ...), printed at the end of the run
MEASURED: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "containers: builds and runs container images with podman "
        "(skipped where podman is absent; deselect with -m 'not containers')",
    )


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if MEASURED:
        terminalreporter.write_sep("-", "convlens container smoke test")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name:<46} {value}")


@pytest.fixture(scope="session")
def measured() -> dict[str, str]:
    return MEASURED


class Stopwatch:
    """Seconds since creation, for reporting."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start
