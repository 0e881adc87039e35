"""A wall-clock budget for one search invocation (``max_time=`` on the oracles and tuners).

Why per invocation: ``--max_time=3600`` on a command line means "give this run an hour" (as
Optuna's ``timeout`` does); a resumed search gets a fresh budget rather than the remainder of
an earlier one whose process may have been dead for days. The clock starts when the search asks
for its first trial (not when the tuner is built), so loading data and building the tuner, and
saving the best model afterwards, come on top of the budget.

At the deadline no new trial starts (nor a retried one); a trial already running finishes and
is recorded normally (so a search overshoots by at most one trial per worker: choose the budget
with that in mind). The search then ends as if ``max_trials`` had been reached; running the same
command again resumes it.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional


def check_max_time(max_time) -> Optional[float]:
    """None (no budget) or a positive finite number of seconds; ValueError naming the fix otherwise."""
    if max_time is None:
        return None
    if isinstance(max_time, bool) or not isinstance(max_time, (int, float)):
        raise ValueError(
            f"max_time must be a number of seconds (or None: no time limit), got {max_time!r}."
        )
    if not (math.isfinite(max_time) and max_time > 0):
        raise ValueError(
            f"max_time must be a positive finite number of seconds (or None), got {max_time!r}."
        )
    return float(max_time)


class TimeBudget:
    """``max_time`` seconds from :meth:`start` on ``clock`` (``time.monotonic``; tests pass a fake one)."""

    def __init__(
        self, max_time: Optional[float] = None, clock: Callable[[], float] = time.monotonic
    ):
        self.max_time = check_max_time(max_time)
        self.clock = clock
        self.started: Optional[float] = None

    def start(self) -> None:
        """Start the clock (once; later calls do nothing)."""
        if self.started is None:
            self.started = self.clock()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else max(0.0, self.clock() - self.started)

    def remaining(self) -> Optional[float]:
        """Seconds left (0 when spent); None without a budget."""
        if self.max_time is None:
            return None
        return max(0.0, self.max_time - self.elapsed())

    def expired(self) -> bool:
        return self.max_time is not None and self.started is not None and self.remaining() <= 0.0
