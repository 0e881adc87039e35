"""Atomic file writes: a reader (or a restart after a kill) sees the old or the new content,
never a torn file. Pure Python, so every layer can use it."""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text(path: str, text: str, fsync: bool = True) -> None:
    write_atomic(path, text.encode("utf-8"), fsync)
