"""Where an oracle's state goes: atomic writes, reads that name the broken file, and the stores.

Why a module of its own: :class:`~keras_nas.tuning.state.PersistentOracle` decides *what* is
written (``oracle.json``, the trial files, the controller's arrays); this module is *how*: a
local file is written atomically (tmp file, fsync, ``os.replace``), a remote one (``gs://...``)
plainly through keras-tuner's file backend; an unreadable JSON file raises
:class:`StateFileError` naming the file and how to recover; and an oracle writes through a store,
:class:`AtomicFiles` (the default) or :class:`NoFiles` (simulations).
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from keras_nas import atomic
from keras_nas.tuning import internals
from keras_nas.tuning.errors import StateFileError


def is_local(path: str) -> bool:
    return "://" not in str(path)


def exists(path: str) -> bool:
    return os.path.exists(path) if is_local(path) else internals.exists(path)


def write_atomic(path: str, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content, never a torn file."""
    if not is_local(path):  # remote (gs://...): no rename atomicity; plain write
        internals.write_bytes(path, data)  # pragma: no cover
        return  # pragma: no cover
    atomic.write_atomic(path, data, fsync)


def write_json_atomic(path: str, obj, indent=None, fsync: bool = True) -> None:
    write_atomic(path, json.dumps(obj, indent=indent).encode("utf-8"), fsync)


def read_json(path: str, what: str, hint: str):
    """Load a JSON file; any failure raises StateFileError naming the file and how to recover."""
    try:
        text = internals.read_text(path)
    except Exception as e:
        raise StateFileError(
            f"Cannot read the {what} {path} ({type(e).__name__}: {e}). {hint}"
        ) from e
    if not text.strip():
        raise StateFileError(f"The {what} {path} is empty (truncated write). {hint}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise StateFileError(
            f"The {what} {path} is corrupted or truncated (invalid JSON: {e}). {hint}"
        ) from e


def load_npz(path: str) -> dict:
    data = open(path, "rb").read() if is_local(path) else internals.read_bytes(path)
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class AtomicFiles:
    """Where an oracle's state goes: atomic files (the default)."""

    def __init__(self, fsync: bool = True):
        self.fsync = fsync

    def write(self, path: str, data: bytes) -> None:
        write_atomic(path, data, self.fsync)

    def rotate(self, path: str, previous: str) -> None:
        """Keep the current ``path`` as ``previous`` (the pair the current oracle.json matches)."""
        if is_local(path) and os.path.exists(path):
            os.replace(path, previous)


class NoFiles(AtomicFiles):
    """Writes nothing: for simulations (tabular benchmarks) that time the algorithm alone."""

    def write(self, path: str, data: bytes) -> None:
        pass

    def rotate(self, path: str, previous: str) -> None:
        pass
