"""Keep TensorFlow's import-time log lines off the command line's output.

Why not ``TF_CPP_MIN_LOG_LEVEL`` alone: TensorFlow 2.21 logs through C++ absl before
``absl::InitializeLog()`` runs, and absl then writes every message to stderr whatever the level
(abseil-cpp PR #1718, tensorflow PR #102212). So ``import tensorflow`` prints "WARNING: All log
messages before absl::InitializeLog() ...", the oneDNN notice and the CPU-feature notice even at
level 3. :func:`filter_tensorflow_import_logs` redirects file descriptor 2 while TensorFlow's
package runs, then writes back every line that is not one of those notices. It hooks the import
instead of importing TensorFlow, so a command that fails on bad input never imports it.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import sys
import tempfile

# Import-time notices that carry no information for a keras-nas user (each checked against TF 2.21).
NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    r"|^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc:\d+\] computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
)


def _wanted(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.search(line))


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` with fd 2 captured; replays what is not noise."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self._loader  # importers that inspect it see the real one
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no usable fd 2: import as is
            return self._loader.exec_module(module)
        with tempfile.TemporaryFile() as buf:
            os.dup2(buf.fileno(), 2)
            try:
                self._loader.exec_module(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                buf.seek(0)
                keep = _wanted(buf.read().decode("utf-8", "replace"))
                if keep:
                    sys.stderr.write(keep)
                    sys.stderr.flush()


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        for finder in sys.meta_path:  # the finder that would have found it without this hook
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def filter_tensorflow_import_logs():
    """Install the import hook once (no effect when TensorFlow is already imported)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
