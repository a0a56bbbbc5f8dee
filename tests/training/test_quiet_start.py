"""TensorFlow's C++ start-up lines stay out of the commands' output unless CONVLENS_TF_LOGS=1 asks for them."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT

START_UP_LINES = ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers")
IMPORT_KERAS = "import training, keras, tensorflow as tf; print(int(tf.constant(7)))"


def _run(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("CONVLENS_TF_LOGS", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run(
        [sys.executable, "-c", IMPORT_KERAS], cwd=ROOT, env=environment | env, capture_output=True, text=True
    )


def test_importing_tensorflow_through_keras_writes_none_of_its_start_up_lines():
    done = _run()
    assert done.returncode == 0 and done.stdout.strip() == "7"
    assert [line for line in START_UP_LINES if line in done.stderr] == []


def test_convlens_tf_logs_lets_the_start_up_lines_through():
    done = _run(CONVLENS_TF_LOGS="1")
    assert done.returncode == 0
    assert "oneDNN custom operations" in done.stderr
