"""Time limits for tests that guard against hangs, without assuming an idle machine.

CI runs the suite on a 2-core machine that may be heavily loaded: a fixed wall-clock limit that
passes idle fails there. Two tools instead:

* :func:`scaled` stretches a hang guard by the machine's load (1-minute load average per core,
  at least 1) and by ``KERAS_NAS_TEST_TIME_SCALE`` (default 1);
* :func:`wait_while_progressing` waits for processes as long as they make progress (a log or
  event file grows), failing only after a long stall: it waits on events, not on a guess of how
  long the work takes.
"""

import os
import time


def load_factor() -> float:
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - no load average on this platform
        return 1.0
    return max(1.0, load / (os.cpu_count() or 1))


def scaled(seconds: float) -> float:
    return float(seconds) * load_factor() * float(os.environ.get("KERAS_NAS_TEST_TIME_SCALE", "1"))


def _size(paths) -> int:
    """Total size of the files (a directory counts every file under it, and their number)."""
    total = 0
    for p in paths:
        if os.path.isdir(p):
            for d, _, files in os.walk(p):
                total += len(files) + _size(os.path.join(d, f) for f in files)
            continue
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    return total


def wait_while_progressing(procs, progress_files, stall_s: float, poll_s: float = 0.2) -> bool:
    """Wait until every process in ``procs`` has exited. Returns False (processes still running)
    once none of ``progress_files`` has grown for ``scaled(stall_s)`` seconds."""
    procs = list(procs)
    last, last_change = _size(progress_files), time.monotonic()
    while any(p.poll() is None for p in procs):
        time.sleep(poll_s)
        now_size = _size(progress_files)
        if now_size != last:
            last, last_change = now_size, time.monotonic()
        elif time.monotonic() - last_change > scaled(stall_s):
            return False
    return True
