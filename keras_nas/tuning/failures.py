"""Why a trial failed, in one line, and which failures are the environment's fault.

Why a module of its own: the oracle (consecutive-failure message), the tuner (classifying
exceptions) and the reporter (results files) all need the same reading of a failure.
"""

from __future__ import annotations

import errno
from typing import Optional

# OSErrors that say the machine, not the architecture, is at fault: stop, resume later.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EIO,
    errno.EMFILE,
    errno.ENFILE,
}


def failure_reason(trial_or_message) -> Optional[str]:
    """The one-line reason a failed/invalid trial records (last line of ``trial.message``), else None."""
    msg = (
        trial_or_message
        if isinstance(trial_or_message, str) or trial_or_message is None
        else getattr(trial_or_message, "message", None)
    )
    if not msg:
        return None
    lines = [line.strip() for line in str(msg).strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def is_out_of_memory(e: BaseException) -> bool:
    """TensorFlow ResourceExhaustedError, Python MemoryError, or an XLA/JAX/PyTorch OOM message."""
    if isinstance(e, MemoryError):
        return True
    if type(e).__name__ in ("ResourceExhaustedError", "OutOfMemoryError"):
        return True
    msg = str(e).lower()
    return "out of memory" in msg or "resource_exhausted" in msg or "resource exhausted" in msg


def is_environment_error(e: BaseException) -> bool:
    """A full disk, a read-only or failing file system, no file handles left (or one of these
    wrapped by another exception): not the architecture's fault."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
            return True
        text = str(e)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
        e = e.__cause__ or e.__context__
    return False


def first_line(e: BaseException, limit=300) -> str:
    text = str(e).strip().splitlines()
    text = text[0] if text else ""
    return f"{type(e).__name__}: {text[:limit]}"
