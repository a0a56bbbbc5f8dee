"""Shared fixtures: where real MNIST lies, and the real test split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# torch's Linux wheels (dev extra) bring triton, whose compiler library crashes the process (SIGSEGV) when it loads
# after TensorFlow's: loaded here, before any test module imports TensorFlow, it loads first.
try:
    import triton  # noqa: F401
except ImportError:
    pass

from tests import helpers
from training.data import MnistError, load_split


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST folder, found as the Makefile finds it (``tests.helpers.mnist_dir``). Skipped when absent on a
    developer's machine; in CI (``CI=true``) a missing data set fails: a skipped test proves nothing there."""
    try:
        return helpers.mnist_dir()
    except MnistError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{exc} (CI needs the real data set: ../shared/mnist beside the checkout)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def mnist_test(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 real test images (uint8, N x 28 x 28) and labels."""
    return load_split(mnist_dir, "test")


@pytest.fixture(scope="session")
def tiny_sweep(mnist_dir: Path, tmp_path_factory) -> Path:
    """``python -m training sweep`` on a small slice: {relu, tanh} x {adam, sgd}, 1 epoch, 2,000 training and 500
    test images; the folder holding the variants and the comparison (shared by the training and API tests)."""
    from training.sweep import sweep

    out = tmp_path_factory.mktemp("sweep") / "variants"
    sweep(mnist_dir, out, ("relu", "tanh"), ("adam", "sgd"), epochs=1, train_limit=2000, test_limit=500)
    return out


# The slow lanes, by where a test lives or what it needs; `make test-fast` runs everything else.
SLOW_PATHS = {
    "training": ("tests/training/",),
    "containers": ("tests/deploy/test_containers.py",),
    "browser": ("tests/e2e/",),
    "load": (
        "tests/test_bench.py",
        "tests/test_bench_peers.py",
        "tests/test_schemathesis.py",
        "tests/test_hostile_clients.py",
        "tests/test_mixed_load.py",
    ),
}
SLOW_FIXTURES = {"training": ("tiny_sweep", "tanh")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the slow lanes it belongs to (see ``[tool.pytest.ini_options] markers``)."""
    for item in items:
        path = Path(item.path).relative_to(helpers.ROOT).as_posix()
        for marker, prefixes in SLOW_PATHS.items():
            if path.startswith(prefixes):
                item.add_marker(marker)
        for marker, fixtures in SLOW_FIXTURES.items():
            params = getattr(item, "callspec", None)
            used = [*item.fixturenames, *(params.params.values() if params else ())]
            if any(isinstance(name, str) and name in fixtures for name in used):
                item.add_marker(marker)
