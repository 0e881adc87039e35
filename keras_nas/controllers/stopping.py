"""Early-stopping rules for hopeless trials, from intermediate (per-epoch) results.

Pure Python, no keras-tuner: a rule answers "trial ``t`` reports ``value`` after ``step``
epochs: should it stop, given what every trial has reported so far?". The oracle
(:mod:`keras_nas.tuning.early_stopping`) feeds it the objective of each finished epoch and
stops the fit when the rule says so; controllers never see a stopped trial's partial score
as a reward (the oracle tells them ``None``, as for a failed trial).

Both rules are **asynchronous**: a decision uses only what has been reported so far and
never waits for other trials (a rung never has to "fill"), so they work unchanged with
distributed workers. Both compare the trial's **best value so far** (up to this step), which
is robust to a noisy epoch, and respect the objective's direction (:meth:`bind`).

* :class:`MedianStopping` (Golovin et al. 2017, Google Vizier; Optuna's ``MedianPruner``):
  stop when the trial's best-so-far is strictly worse than the median of the other trials'
  best-so-far at the same step, once ``grace_epochs`` epochs are done and at least
  ``min_trials`` other trials reported that step.
* :class:`ASHA` (Li et al. 2020, asynchronous successive halving, stopping variant as in
  Ray Tune / Optuna): rungs at ``min_epochs * eta**k`` epochs; when a trial reaches a rung it
  continues only if its value is in the top ``1/eta`` of all values recorded at that rung so
  far (itself included; at least the best one continues, so the first trial at a rung always
  does). A trial is judged once per rung.

State: every decision is a function of the raw reports ``{trial: {step: value}}``, so
:meth:`get_state` is just those, and :meth:`record` replays a history (an oracle rebuilds
the rule from its trials' per-epoch metrics on resume).
"""

from __future__ import annotations

import math
import statistics
from typing import Mapping, Optional


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


class StoppingRule:
    """Base class: records reports, answers :meth:`report` with a reason to stop (or None).

    Subclasses implement :meth:`_decide` (and may extend :meth:`_recorded`)."""

    name = "rule"

    def __init__(self):
        self.direction = "max"
        self._sign = 1.0
        self._raw: dict = {}  # trial_id -> {step: value} as reported (objective's units)

    def bind(self, direction: str) -> "StoppingRule":
        """Use the objective's direction (``'max'`` or ``'min'``); the oracle calls this."""
        if direction not in ("max", "min"):
            raise ValueError(f"direction must be 'max' or 'min', got {direction!r}.")
        self.direction = direction
        self._sign = 1.0 if direction == "max" else -1.0
        self.reset_tables()
        for tid, steps in list(self._raw.items()):
            for step in sorted(steps):
                self._recorded(tid, step, self._best_so_far(tid, step))
        return self

    # -- the question ---------------------------------------------------------------------
    def report(self, trial_id: str, step: int, value: float) -> Optional[str]:
        """Record ``value`` (the objective after ``step`` epochs) and return why the trial should
        stop, or None to continue. Non-finite values are ignored (never stop on them)."""
        if not self.record(trial_id, step, value):
            return None
        return self._decide(str(trial_id), int(step), self._best_so_far(str(trial_id), int(step)))

    def record(self, trial_id: str, step: int, value: float) -> bool:
        """Record without deciding (replaying a history). False when the value was ignored."""
        _check_int("step", step, 0)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(value):
            return False
        tid = str(trial_id)
        self._raw.setdefault(tid, {})[int(step)] = value
        self._recorded(tid, int(step), self._best_so_far(tid, int(step)))
        return True

    def forget(self, trial_id: str) -> None:
        """Drop a trial's reports (it will run again from scratch: a retried trial)."""
        if self._raw.pop(str(trial_id), None) is not None:
            self.bind(self.direction)

    def reported(self, trial_id: str) -> dict:
        return dict(self._raw.get(str(trial_id), {}))

    # -- persistence ----------------------------------------------------------------------
    def get_state(self) -> dict:
        return {
            "rule": self.name,
            "direction": self.direction,
            "reports": {t: {str(s): v for s, v in steps.items()} for t, steps in self._raw.items()},
        }

    def set_state(self, state: Mapping) -> None:
        if state.get("rule", self.name) != self.name:
            raise ValueError(
                f"{type(self).__name__}: the saved state is of rule {state.get('rule')!r}."
            )
        self._raw = {
            str(t): {int(s): float(v) for s, v in steps.items()}
            for t, steps in (state.get("reports") or {}).items()
        }
        self.bind(state.get("direction", self.direction))

    # -- helpers --------------------------------------------------------------------------
    def _best_so_far(self, tid: str, step: int) -> float:
        """Best signed value (larger is better) reported by ``tid`` at steps <= ``step``."""
        return max(self._sign * v for s, v in self._raw[tid].items() if s <= step)

    def _value(self, signed: float) -> float:
        return self._sign * signed

    def reset_tables(self) -> None:
        """Clear derived tables (rebuilt from the raw reports by :meth:`bind`)."""

    def _recorded(self, tid: str, step: int, best: float) -> None:
        """Hook: update derived tables with a new report."""

    def _decide(self, tid: str, step: int, best: float) -> Optional[str]:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        return ""


class MedianStopping(StoppingRule):
    """Stop a trial whose best-so-far is worse than the median of the others' at the same step.

    Args:
      grace_epochs: never stop a trial before it has trained this many epochs (>= 1).
      min_trials: decide only once this many *other* trials reported the step (>= 1);
        the first trials of a search always run to the end.
    """

    name = "median"

    def __init__(self, grace_epochs: int = 1, min_trials: int = 5):
        super().__init__()
        self.grace_epochs = _check_int("grace_epochs", grace_epochs, 1)
        self.min_trials = _check_int("min_trials", min_trials, 1)
        self.reset_tables()

    def reset_tables(self) -> None:
        self._at_step: dict = {}  # step -> {trial_id: best-so-far (signed)}

    def _recorded(self, tid, step, best):
        self._at_step.setdefault(step, {})[tid] = best

    def _decide(self, tid, step, best):
        if step < self.grace_epochs:
            return None
        others = [v for t, v in self._at_step.get(step, {}).items() if t != tid]
        if len(others) < self.min_trials:
            return None
        median = statistics.median(others)
        if best < median:
            return f"{self._value(best):.4g} < median {self._value(median):.4g} of {len(others)} trials (median)"
        return None

    def describe(self) -> str:
        return f"grace_epochs={self.grace_epochs}, min_trials={self.min_trials}"


class ASHA(StoppingRule):
    """Asynchronous successive halving (stopping variant): rungs at ``min_epochs * eta**k``.

    Args:
      min_epochs: epochs at the first rung, r (>= 1).
      eta: reduction factor (>= 2): the top ``1/eta`` at each rung continue.
    """

    name = "asha"

    def __init__(self, min_epochs: int = 1, eta: int = 3):
        super().__init__()
        self.min_epochs = _check_int("min_epochs", min_epochs, 1)
        self.eta = _check_int("eta", eta, 2)
        self.reset_tables()

    def rung_epochs(self, up_to: int) -> list:
        """The rungs' epoch counts <= ``up_to``."""
        out, r = [], self.min_epochs
        while r <= up_to:
            out.append(r)
            r *= self.eta
        return out

    def reset_tables(self) -> None:
        self._rungs: dict = {}  # rung epochs -> {trial_id: best-so-far when it reached the rung}
        self._new_rung: Optional[int] = None

    def _recorded(self, tid, step, best):
        self._new_rung = None
        for r in self.rung_epochs(step):
            rung = self._rungs.setdefault(r, {})
            if tid not in rung:  # the first report at or beyond the rung is its value there
                rung[tid] = best
                self._new_rung = r

    def _decide(self, tid, step, best):
        r = self._new_rung
        if r is None:  # between rungs, or a rung it has passed already
            return None
        rung = self._rungs[r]
        mine = rung[tid]
        keep = max(1, len(rung) // self.eta)
        better = sum(1 for t, v in rung.items() if t != tid and v > mine)
        if better >= keep:
            return f"{self._value(mine):.4g} not in top {keep}/{len(rung)} at rung {r} (ASHA)"
        return None

    def describe(self) -> str:
        return f"min_epochs={self.min_epochs}, eta={self.eta}"


RULES = {"median": MedianStopping, "asha": ASHA}


def make_rule(name: str, **kwargs) -> Optional[StoppingRule]:
    """``"none"`` -> None, ``"median"`` -> :class:`MedianStopping`, ``"asha"`` -> :class:`ASHA`."""
    key = str(name).strip().lower()
    if key in ("none", "off", ""):
        return None
    if key not in RULES:
        raise ValueError(f"early_stopping must be one of 'none', 'median', 'asha'; got {name!r}.")
    return RULES[key](**kwargs)
