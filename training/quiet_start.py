"""TensorFlow's first import with its C++ start-up lines kept out of stderr.

TensorFlow's shared libraries write a few lines to file descriptor 2 as they load (absl's "All log messages before
absl::InitializeLog() is called are written to STDERR", then oneDNN's and CUDA's notes), before any log level
applies. A finder at the front of ``sys.meta_path`` takes the first import of ``tensorflow``, whoever asks for it,
and runs it with descriptor 2 pointed at a temporary file; the file's text is written to stderr after all if the
import fails, so a broken installation still says why.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from types import ModuleType

PACKAGE = "tensorflow"


class _SilencedLoader(importlib.abc.Loader):
    """Runs the wrapped loader with descriptor 2 redirected."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            except BaseException:
                os.dup2(saved, 2)
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                raise
            finally:
                os.dup2(saved, 2)
                os.close(saved)


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of the first ``tensorflow`` import, then steps aside."""

    def find_spec(self, name: str, path: object = None, target: ModuleType | None = None):
        if name != PACKAGE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _SilencedLoader(spec.loader)
        return spec


def silence_tensorflow_start() -> None:
    """Silence the start-up lines of TensorFlow's first import in this process (nothing if it is imported already
    or the finder is in place)."""
    if PACKAGE in sys.modules or any(isinstance(f, _FirstTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FirstTensorFlowImport())
