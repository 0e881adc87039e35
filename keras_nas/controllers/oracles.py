"""keras-tuner Oracles driven by keras-nas controllers (aging evolution, REINFORCE, random).

:class:`ControllerOracle` adapts any :class:`~keras_nas.controllers.base.Controller` to
``keras_tuner.Oracle``, so the controllers run under every keras-tuner Tuner, locally or
distributed (chief + workers over gRPC), and resume with ``overwrite=False``.

Design notes
------------
* **Proposals.** ``populate_space`` rebuilds the :class:`ParamSpace` from
  ``self.hyperparameters`` whenever the space grew (new entries registered after the first
  build) and returns a value for every *active* hp, plain Python types, so keras-tuner
  never fills a value with its unseeded RNG. User-given (fixed) hyperparameters are part
  of that space and are respected.
* **Duplicates** (``allow_duplicates=False``, the default): like keras-tuner's random
  search, an architecture already tried (or running) is re-proposed up to
  ``max_collisions`` times; then the last proposal is accepted (a search never stops
  early because of duplicates). Aging evolution's *identity* mutation is exempt: it is
  the paper's deliberate re-evaluation of a parent. ``allow_duplicates=True`` accepts every
  proposal as is (the paper's behaviour).
* **Rewards** are read in ``end_trial`` after keras-tuner scored the trial:
  ``self.trials[id].score``, negated when the objective's direction is ``'min'`` (also
  keras-tuner's ``MultiObjective``). Failed, invalid or NaN trials are reported as
  ``None`` (never parents). A trial sent for retry is reported once, when it finally ends.
  Optional MnasNet-style cost penalty (``cost_metric``/``cost_fn`` + ``cost_target``) and
  ``reward_transform``. The (objective, cost) Pareto front is kept (``pareto_front()``).
* **Locking.** keras-tuner's ``@synchronized`` releases its lock only on normal return;
  an exception in ``populate_space``/``end_trial`` would leave it held and hang every
  worker. :func:`synchronized` here shares keras-tuner's lock table but releases in a
  ``finally``; ``create_trial``/``update_trial``/``end_trial`` are wrapped with it.
* **State.** ``oracle.json`` (written atomically: tmp file, fsync, ``os.replace``) holds
  keras-tuner's state plus ``"keras_nas"``: the controller's JSON state (population, ages,
  RNG...), outstanding proposals, the Pareto front and a save ``step``. Controllers with
  large numeric state expose ``get_arrays()``/``set_arrays()``; those arrays go to
  ``oracle_arrays.npz`` beside it (atomic too, the previous one kept as
  ``oracle_arrays.prev.npz``), stamped with the same step; a json/npz pair that does not
  match is reported with the file names and how to recover.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import json
import math
import os
import tempfile
import threading
import time
import warnings
from typing import Any, Callable, Mapping, Optional

import numpy as np
import keras_tuner as kt

try:  # keras-tuner's lock tables, shared so base-class methods nest correctly
    from keras_tuner.src.engine import oracle as _kt_oracle
except ImportError:  # pragma: no cover - older layouts
    from keras_tuner.engine import oracle as _kt_oracle

from keras_nas.controllers.base import Controller, RandomController
from keras_nas.controllers.params import ParamSpace, plain

TrialStatus = kt.engine.trial.TrialStatus

STATE_KEY = "keras_nas"
STATE_FORMAT = "keras-nas/oracle-state"
STATE_VERSION = 1
ARRAYS_FNAME = "oracle_arrays.npz"
ARRAYS_PREV_FNAME = "oracle_arrays.prev.npz"
_STEP_KEY = "__keras_nas_save_step__"
TRIAL_EXTRA_KEY = "keras_nas"  # extra bookkeeping inside each trial.json (keras-tuner ignores it)


class StateFileError(RuntimeError):
    """A saved search file is unreadable; the message names the file and how to recover."""


def failure_reason(trial) -> Optional[str]:
    """The one-line reason a failed/invalid trial records (last line of ``trial.message``), else None."""
    msg = getattr(trial, "message", None)
    if not msg:
        return None
    lines = [line.strip() for line in str(msg).strip().splitlines() if line.strip()]
    return lines[-1] if lines else None

# hp name -> decision kind ('input'/'op'/...), filled by keras-nas HyperModels when they are
# created, so an oracle used with a plain keras_tuner.Tuner still sees AmoebaNet's kinds.
_DECISION_KINDS: dict = {}


def register_decision_kinds(kinds: Mapping[str, str]) -> None:
    """Record decision kinds for hp names (process-wide; explicit ``kinds=`` on an oracle wins)."""
    _DECISION_KINDS.update({str(k): str(v) for k, v in kinds.items()})


def registered_decision_kinds() -> dict:
    return dict(_DECISION_KINDS)


def synchronized(func):
    """keras-tuner's ``@synchronized`` with the lock released on exceptions too.

    Uses keras-tuner's own ``LOCKS``/``THREADS`` tables, so a decorated override that calls
    a decorated base method (or ``exit_chief``) does not deadlock.
    """

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        oracle = args[0]
        name = threading.current_thread().name
        need_acquire = _kt_oracle.THREADS[oracle] != name
        if need_acquire:
            _kt_oracle.LOCKS[oracle].acquire()
            _kt_oracle.THREADS[oracle] = name
        try:
            return func(*args, **kwargs)
        finally:
            if need_acquire:
                _kt_oracle.THREADS[oracle] = None
                _kt_oracle.LOCKS[oracle].release()

    return wrapped


class ControllerOracle(kt.Oracle):
    """A keras-tuner Oracle whose proposals come from a keras-nas :class:`Controller`.

    Args (beyond ``keras_tuner.Oracle``'s):
      controller: the controller; subclasses build one in :meth:`make_controller` instead.
      kinds: ``{hp name: kind}`` for AmoebaNet mutations (keras-nas HyperModels register
        theirs automatically).
      reward_transform: ``f(reward) -> float`` applied last (e.g. ``lambda r: r ** 3``).
      cost_metric: name of a metric the trial reports (e.g. ``"params"``), or
      cost_fn: ``f(trial) -> float``; the cost of a trial (params, FLOPs, latency).
      cost_target: T; with a cost, reward = score * (cost / T) ** w (MnasNet). ``None``:
        the cost only feeds the Pareto front.
      cost_weight: w (< 0). A float (MnasNet soft constraint: -0.07) or a pair
        ``(alpha, beta)`` used below/above the target (hard constraint: ``(0, -1)``).
      allow_duplicates / max_collisions: duplicate policy (see module docstring).
      encoder: a SearchSpace to encode non-dict warm starts (genotypes).
      fsync: fsync every state/trial file before its rename (default True).
      heartbeat_timeout_s: distributed search: a running trial whose worker sent no sign of
        life (keras-nas workers poll ``get_trial`` every ``heartbeat_interval_s``; every
        ``update_trial`` counts too) for this long is handed to another worker. None: off.
      trial_deadline_s: hand a trial to another worker after this long whatever its heartbeats.
    """

    def __init__(
        self,
        controller: Optional[Controller] = None,
        objective=None,
        max_trials=10,
        hyperparameters=None,
        allow_new_entries=True,
        tune_new_entries=True,
        seed=None,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        *,
        kinds: Optional[Mapping[str, str]] = None,
        reward_transform: Optional[Callable[[float], float]] = None,
        cost_metric: Optional[str] = None,
        cost_fn: Optional[Callable[[Any], float]] = None,
        cost_target: Optional[float] = None,
        cost_weight=-0.07,
        allow_duplicates: bool = False,
        max_collisions: int = 20,
        encoder=None,
        fsync: bool = True,
        heartbeat_timeout_s: Optional[float] = None,
        trial_deadline_s: Optional[float] = None,
    ):
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if cost_metric is not None and cost_fn is not None:
            raise ValueError("Give either cost_metric (a reported metric's name) or cost_fn(trial), not both.")
        if cost_target is not None and not cost_target > 0:
            raise ValueError(f"cost_target must be positive, got {cost_target!r}.")
        if cost_target is not None and cost_metric is None and cost_fn is None:
            raise ValueError("cost_target needs a cost: pass cost_metric='params' (a reported metric) or cost_fn(trial).")
        if isinstance(cost_weight, (tuple, list)):
            if len(cost_weight) != 2:
                raise ValueError(f"cost_weight must be a float or a pair (alpha, beta), got {cost_weight!r}.")
            self.cost_weight = (float(cost_weight[0]), float(cost_weight[1]))
        else:
            self.cost_weight = (float(cost_weight), float(cost_weight))
        if max_collisions < 0:
            raise ValueError(f"max_collisions must be >= 0, got {max_collisions!r}.")
        for name, v in (("heartbeat_timeout_s", heartbeat_timeout_s), ("trial_deadline_s", trial_deadline_s)):
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds or None, got {v!r}.")
        if max_consecutive_failed_trials is not None and (
            not isinstance(max_consecutive_failed_trials, int) or max_consecutive_failed_trials < 1
        ):
            raise ValueError(
                f"max_consecutive_failed_trials must be a positive int (or None: never stop), "
                f"got {max_consecutive_failed_trials!r}."
            )
        if max_retries_per_trial is None or not isinstance(max_retries_per_trial, int) or max_retries_per_trial < 0:
            raise ValueError(f"max_retries_per_trial must be an int >= 0, got {max_retries_per_trial!r}.")
        if max_trials is not None and (not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1):
            raise ValueError(f"max_trials must be a positive int, got {max_trials!r}.")
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.trial_deadline_s = trial_deadline_s
        self.kinds = dict(kinds or {})
        self.reward_transform = reward_transform
        self.cost_metric = cost_metric
        self.cost_fn = cost_fn
        self.cost_target = cost_target
        self.allow_duplicates = allow_duplicates
        self.max_collisions = max_collisions
        self.fsync = fsync
        self.controller = controller if controller is not None else self.make_controller()
        if not isinstance(self.controller, Controller):
            raise TypeError(f"controller must be a keras_nas Controller, got {type(self.controller).__name__}.")
        if encoder is not None:
            self.set_encoder(encoder)
        self._pending: dict = {}  # trial_id -> proposed values (running or waiting for retry)
        self._pareto: list = []  # [{"trial_id", "score", "cost", "reward"}], sorted by cost
        self._num_collisions = 0
        self._save_step = 0
        self._loaded_arrays_step = None
        self._suppress_save = False
        self._space_cache = (None, None)
        # Flat per-trial cost: keras-tuner keeps O(history) lists in oracle.json (tried_so_far,
        # id_to_hash, start/end order, run_times) and rewrites them on every save. Here they
        # are rebuilt from the trial files on reload (see get_state/set_state).
        self._hash_counts: collections.Counter = collections.Counter()
        self._tried_so_far = self._hash_counts  # keras-tuner reads it with `in`
        self._end_seq: dict = {}  # trial_id -> position in end_order
        self._retried: set = set()  # trials whose run count deviates from the default
        self._reported: dict = {}  # trial_id -> run count when it last reported metrics
        self._fail_streak = 0
        self._streak_error = None
        self._last_written = None
        self._trial_extras: dict = {}
        # Liveness (distributed): trial_id -> monotonic time of the last sign of life / start.
        self._last_seen: dict = {}
        self._started_at: dict = {}
        self.expired: list = []  # [(trial_id, tuner_id, reason)] handed to another worker

    # -- hooks ---------------------------------------------------------------------------
    def make_controller(self) -> Controller:
        raise ValueError(f"{type(self).__name__} needs a controller: ControllerOracle(controller=..., ...).")

    def summary_scalars(self) -> dict:
        """``{name: float}`` controller statistics for TensorBoard (``keras_nas.reporting`` logs them
        as ``controller/<name>``), from the controller's optional ``summary_scalars(param_space)``;
        ``{}`` when it has none. Non-finite values are left out."""
        fn = getattr(self.controller, "summary_scalars", None)
        if not callable(fn):
            return {}
        out = {}
        for k, v in (fn(self.param_space()) or {}).items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                out[str(k)] = v
        return out

    def set_encoder(self, encoder) -> None:
        """Give the controller a SearchSpace for genotype warm starts (if it takes one)."""
        if hasattr(self.controller, "encoder") and getattr(self.controller, "encoder", None) is None:
            self.controller.encoder = encoder

    def param_space(self) -> ParamSpace:
        """The controller's view of ``self.hyperparameters`` (rebuilt whenever it grew)."""
        hps = self.hyperparameters
        key = (id(hps), len(hps.space), len(_DECISION_KINDS), tuple(sorted(self.kinds.items())))
        if self._space_cache[0] != key:
            kinds = dict(_DECISION_KINDS)
            kinds.update(self.kinds)
            self._space_cache = (key, ParamSpace.from_hyperparameters(hps, kinds=kinds))
        return self._space_cache[1]

    # -- ask -----------------------------------------------------------------------------
    def populate_space(self, trial_id):
        space = self.param_space()
        values = None
        for attempt in range(self.max_collisions + 1):
            values = self.controller.propose(space)
            # Enforce the rules whatever the controller did: every active value, plain types.
            values = space.complete(values, self.controller.sample_value)
            if (
                self.allow_duplicates
                or getattr(self.controller, "last_origin", None) == "identity"
                or not self._duplicate(values)
            ):
                break
            self._num_collisions += 1
            discard = getattr(self.controller, "discard", None)
            if discard is not None:
                discard(values, space)
        self._pending[trial_id] = values
        return {"status": TrialStatus.RUNNING, "values": values}

    @property
    def watches_liveness(self) -> bool:
        return bool(self.heartbeat_timeout_s or self.trial_deadline_s)

    @synchronized
    def create_trial(self, tuner_id):
        self.expire_stale()
        if (
            self.watches_liveness
            and tuner_id not in self.ongoing_trials
            and not self._retry_queue
            and self.max_trials
            and len(self.trials) >= self.max_trials
            and self.ongoing_trials
        ):
            # Budget used up but other workers still run trials: keep this worker waiting
            # (IDLE) so it can take over a trial whose worker dies, instead of sending it home.
            self.tuner_ids.add(tuner_id)
            return kt.engine.trial.Trial(self.get_space(), status=TrialStatus.IDLE)
        retry_ids = set(self._retry_queue)
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            now = time.monotonic()
            self._last_seen[trial.trial_id] = now
            self._started_at[trial.trial_id] = now
            if trial.trial_id in retry_ids:
                self._save_trial(trial)  # trial.json says RUNNING again
        return trial

    @synchronized
    def update_trial(self, trial_id, metrics, step=0):
        if trial_id not in self.trials:
            raise ValueError(f"update_trial: unknown trial id {trial_id!r} (known: {len(self.trials)} trials).")
        self.heartbeat(trial_id)
        if trial_id in self._end_seq:  # already ended (a late report from a worker presumed dead)
            warnings.warn(f"Ignoring metrics for trial {trial_id}: it has already ended.")
            return self.trials[trial_id]
        self._reported[trial_id] = int(self._run_times.get(trial_id, 0))
        return super().update_trial(trial_id, metrics, step=step)

    def get_trial(self, trial_id):
        self.heartbeat(trial_id)  # workers poll their running trial as a heartbeat
        return super().get_trial(trial_id)

    def heartbeat(self, trial_id) -> None:
        """Record a sign of life for a running trial (keras-nas workers call ``get_trial``)."""
        if trial_id in self._last_seen:
            self._last_seen[trial_id] = time.monotonic()

    @synchronized
    def expire_stale(self, now=None) -> list:
        """Hand trials whose worker went silent to another worker.

        A running trial with no heartbeat for ``heartbeat_timeout_s`` (or running longer than
        ``trial_deadline_s``) leaves ``ongoing_trials`` and joins keras-tuner's retry queue (the
        next ``create_trial`` from any worker gets it; it does not count as a retry). Its
        worker is forgotten (so the chief can finish without it); a late report for a trial
        that has meanwhile ended is ignored. Returns ``[(trial_id, tuner_id, reason)]``.
        """
        if not self.watches_liveness or not self.ongoing_trials:
            return []
        now = time.monotonic() if now is None else now
        out = []
        for tuner_id, trial in list(self.ongoing_trials.items()):
            tid = trial.trial_id
            seen = self._last_seen.setdefault(tid, now)
            started = self._started_at.setdefault(tid, now)
            reason = None
            if self.heartbeat_timeout_s and now - seen > self.heartbeat_timeout_s:
                reason = (f"no heartbeat from worker {tuner_id!r} for {now - seen:.1f} s "
                          f"(heartbeat_timeout_s={self.heartbeat_timeout_s})")
            elif self.trial_deadline_s and now - started > self.trial_deadline_s:
                reason = (f"trial ran {now - started:.1f} s on worker {tuner_id!r} "
                          f"(trial_deadline_s={self.trial_deadline_s})")
            if reason is None:
                continue
            self.ongoing_trials.pop(tuner_id)
            self.tuner_ids.discard(tuner_id)
            self._last_seen.pop(tid, None)
            self._started_at.pop(tid, None)
            if tid not in self._retry_queue:
                self._retry_queue.append(tid)
            out.append((tid, tuner_id, reason))
            print(f"keras-nas: trial {tid}: {reason}; handing it to another worker.", flush=True)
        if out:
            self.expired.extend(out)
            self.save()
        return out

    # -- tell ----------------------------------------------------------------------------
    @synchronized
    def end_trial(self, trial, status=None):
        if isinstance(trial, str):  # keras-tuner's old end_trial(trial_id, status) signature
            trial = kt.engine.trial.Trial(self.get_space(), trial, status or TrialStatus.COMPLETED)
        trial_id = trial.trial_id
        if trial_id not in self.trials:
            raise ValueError(f"end_trial: unknown trial id {trial_id!r} (known: {len(self.trials)} trials).")
        if trial_id in self._end_seq:
            # A second report for a trial that already ended (its worker was presumed dead and
            # the trial handed to another worker, or a duplicated RPC): never count it twice.
            warnings.warn(f"Ignoring a second end_trial for trial {trial_id}: it already ended.")
            return
        if trial_id in self._retry_queue:
            self._retry_queue.remove(trial_id)  # late result of an expired trial: take it
        error = None
        self._suppress_save = True  # one save below, after the controller has been told
        try:
            super().end_trial(trial)
        except Exception as e:
            error = e
        finally:
            self._suppress_save = False
        self._reported.pop(trial_id, None)
        self._last_seen.pop(trial_id, None)
        self._started_at.pop(trial_id, None)
        if self._streak_error is not None and error is None:
            error, self._streak_error = self._streak_error, None
        try:
            t = self.trials[trial_id]
            retrying = t.status == TrialStatus.INVALID and trial_id in self._retry_queue
            if not retrying and trial_id in self._pending:
                self._pending.pop(trial_id)  # never report a trial twice
                values = {k: plain(v) for k, v in t.hyperparameters.values.items()}
                reward, cost = None, None
                if t.status == TrialStatus.COMPLETED:
                    reward, cost = self._reward_and_cost(t)
                self.controller.observe(values, reward, self.param_space())
                if cost is not None and reward is not None:
                    self._update_pareto(trial_id, float(t.score), cost, reward)
        finally:
            self.save()
        if error is not None:
            raise error

    def objective_direction(self) -> str:
        return getattr(self.objective, "direction", "max") or "max"

    def _reward_and_cost(self, trial):
        score = trial.score
        if score is None:
            return None, None
        score = float(score)
        if not math.isfinite(score):
            return None, None
        cost = self.trial_cost(trial)
        maximize = self.objective_direction() == "max"
        if cost is not None and self.cost_target is not None:
            ratio = cost / self.cost_target
            w = self.cost_weight[0] if cost <= self.cost_target else self.cost_weight[1]
            # MnasNet: acc * (cost/T)^w with w <= 0. For a 'min' objective (a loss) the
            # penalty multiplies the loss by (cost/T)^-w instead, then the sign flips.
            reward = score * ratio**w if maximize else -(score * ratio ** (-w))
        else:
            reward = score if maximize else -score
        if self.reward_transform is not None:
            reward = float(self.reward_transform(reward))
        if not math.isfinite(reward):
            return None, cost
        return reward, cost

    def trial_cost(self, trial) -> Optional[float]:
        """The trial's cost from ``cost_fn`` or the ``cost_metric`` it reported (None if neither set)."""
        if self.cost_fn is not None:
            cost = self.cost_fn(trial)
        elif self.cost_metric is not None:
            if not trial.metrics.exists(self.cost_metric):
                raise ValueError(
                    f"Trial {trial.trial_id} did not report the cost metric {self.cost_metric!r} "
                    f"(reported: {sorted(trial.metrics.metrics)}). Report it from run_trial / HyperModel.fit "
                    "(keras-nas tuners add 'params' with report_params=True), or pass cost_fn=."
                )
            cost = trial.metrics.get_last_value(self.cost_metric)
        else:
            return None
        if cost is None or not math.isfinite(float(cost)) or float(cost) <= 0:
            raise ValueError(f"Trial {trial.trial_id}: cost must be a positive finite number, got {cost!r}.")
        return float(cost)

    def _update_pareto(self, trial_id, score, cost, reward):
        sign = 1.0 if self.objective_direction() == "max" else -1.0
        s = sign * score
        for q in self._pareto:
            if sign * q["score"] >= s and q["cost"] <= cost:
                return  # dominated (or equalled) by an existing point
        self._pareto = [q for q in self._pareto if not (s >= sign * q["score"] and cost <= q["cost"])]
        self._pareto.append({"trial_id": trial_id, "score": score, "cost": cost, "reward": reward})
        self._pareto.sort(key=lambda q: (q["cost"], -sign * q["score"]))

    def pareto_front(self) -> list:
        """Non-dominated finished trials (better objective, lower cost), sorted by cost:
        ``[{"trial_id", "score", "cost", "reward"}]``. Empty when no cost is configured."""
        return [dict(q) for q in self._pareto]

    # -- bookkeeping overrides (flat cost per trial) --------------------------------------
    def _record_values(self, trial):
        hps = trial.hyperparameters
        hps.ensure_active_values()
        new = self._compute_values_hash(hps.values)
        old = self._id_to_hash.get(trial.trial_id)
        if old != new:
            if old is not None:
                self._hash_counts[old] -= 1
                if self._hash_counts[old] <= 0:
                    del self._hash_counts[old]
            self._hash_counts[new] += 1
            self._id_to_hash[trial.trial_id] = new

    def _duplicate(self, values):
        return self._compute_values_hash(values) in self._hash_counts

    def _retry(self, trial):
        if trial.status == TrialStatus.INVALID:
            self._retried.add(trial.trial_id)
        return super()._retry(trial)

    def _check_consecutive_failures(self):
        # keras-tuner rescans the whole end_order on every end (O(history)) and raises inside
        # end_trial, before the trial is saved. Here: O(1), and the error is raised by
        # end_trial after everything is saved.
        tid = self.end_order[-1]
        self._end_seq[tid] = len(self.end_order) - 1
        trial = self.trials[tid]
        if trial.status == TrialStatus.FAILED:
            self._fail_streak += 1
        else:
            self._fail_streak = 0
        limit = self.max_consecutive_failed_trials
        if limit and self._fail_streak >= limit:
            reason = failure_reason(trial) or "no reason recorded"
            self._streak_error = RuntimeError(
                f"Number of consecutive failures exceeded the limit of {limit}: the last {self._fail_streak} "
                f"trials failed (max_consecutive_failed_trials={limit}), so the search stopped. Last failure, "
                f"trial {tid}: {reason}. Fix the cause (each failed trial's reason is the 'message' in its "
                f"trial.json), or raise max_consecutive_failed_trials; finished trials are kept and "
                "overwrite=False resumes."
            )

    def _save_trial(self, trial):
        tid = trial.trial_id
        state = trial.get_state()
        state[TRIAL_EXTRA_KEY] = {
            "run_times": int(self._run_times.get(tid, 0)),
            "end_seq": self._end_seq.get(tid),
            "reported": self._reported.get(tid),
        }
        _write_atomic(
            os.path.join(self._get_trial_dir(tid), "trial.json"), json.dumps(state).encode("utf-8"), self.fsync
        )

    # -- state ---------------------------------------------------------------------------
    def get_state(self):
        # keras-tuner's get_state minus its O(history) entries (rebuilt from the trial files
        # by set_state): oracle.json stays O(population + running trials).
        ongoing = {tuner_id: t.trial_id for tuner_id, t in self.ongoing_trials.items()}
        live = set(ongoing.values())
        disp = self._display
        arrays_api = callable(getattr(self.controller, "get_arrays", None))
        odd_runs = set(self._retried) | live | set(self._retry_queue)
        state = {
            "ongoing_trials": ongoing,
            "hyperparameters": self.hyperparameters.get_config(),
            "run_times": {tid: int(self._run_times.get(tid, 0)) for tid in sorted(odd_runs)},
            "retry_queue": list(self._retry_queue),
            "seed": self.seed,
            "seed_state": self._seed_state,
            "display": {
                "search_start": disp.search_start.isoformat() if disp.search_start is not None else None,
                "trial_start": {k: disp.trial_start[k].isoformat() for k in sorted(live) if k in disp.trial_start},
                "trial_number": {k: disp.trial_number[k] for k in sorted(live) if k in disp.trial_number},
            },
        }
        state[STATE_KEY] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "controller_class": type(self.controller).__name__,
            "controller": self.controller.get_state(),
            "pending": {k: dict(v) for k, v in self._pending.items()},
            "pareto": [dict(q) for q in self._pareto],
            "num_collisions": self._num_collisions,
            "step": self._save_step,
            "has_arrays": arrays_api,
            "compact": {"num_trials": len(self.trials), "end_count": len(self.end_order)},
        }
        return state

    def _state_error(self, problem: str) -> StateFileError:
        return StateFileError(
            f"Cannot resume the search in {self._project_dir}: {problem}. To recover, restore the "
            "project directory from a backup, or start afresh with overwrite=True or a new "
            "project_name (this keeps nothing of the old run)."
        )

    def set_state(self, state):
        if not isinstance(state, dict):
            raise self._state_error(f"{self._get_oracle_fname()} does not hold a JSON object")
        ks = state.get(STATE_KEY)
        compact = ks.get("compact") if isinstance(ks, dict) else None
        full = dict(state)
        if compact is not None:
            full.update(self._rebuild_history(compact, state))
        try:
            super().set_state(full)
        except (KeyError, TypeError, ValueError) as e:
            raise self._state_error(f"{self._get_oracle_fname()} lacks or garbles keras-tuner's entry {e}") from e
        self._after_history_loaded(state)
        if ks is None:
            warnings.warn(
                f"{type(self).__name__}: the saved oracle state has no keras-nas controller state "
                "(written by another oracle?); the controller starts fresh."
            )
            return
        if ks.get("version", 1) > STATE_VERSION:
            raise RuntimeError(
                f"Oracle state version {ks.get('version')} is newer than this keras-nas reads "
                f"({STATE_VERSION}); upgrade keras-nas or start a new project (overwrite=True)."
            )
        saved_cls = ks.get("controller_class")
        if saved_cls and saved_cls != type(self.controller).__name__:
            raise RuntimeError(
                f"The project was searched with a {saved_cls} controller but this oracle uses "
                f"{type(self.controller).__name__}; use the same search class or overwrite=True / a new project_name."
            )
        self.controller.set_state(ks["controller"])
        self._pending = {k: dict(v) for k, v in ks.get("pending", {}).items()}
        self._pareto = [dict(q) for q in ks.get("pareto", [])]
        self._num_collisions = int(ks.get("num_collisions", 0))
        self._save_step = int(ks.get("step", 0))
        self._loaded_arrays_step = self._save_step if ks.get("has_arrays") else None
        self._space_cache = (None, None)

    def _rebuild_history(self, compact, state) -> dict:
        """keras-tuner's O(history) state entries from the trial files (compact oracle.json)."""
        try:
            n, end_count = int(compact["num_trials"]), int(compact["end_count"])
        except (KeyError, TypeError, ValueError) as e:
            raise self._state_error(f"{self._get_oracle_fname()} has a garbled 'compact' entry ({e})") from e
        extras = self._trial_extras
        known = {}
        for tid in list(self.trials):
            idx = _trial_index(tid)
            if idx is not None and idx >= n:
                # Written by a create_trial interrupted before oracle.json was saved: the trial
                # never ran; the id is proposed again.
                del self.trials[tid]
                extras.pop(tid, None)
            elif idx is not None:
                known[idx] = tid
        missing = [i for i in range(n) if i not in known]
        if missing:
            raise self._state_error(
                f"{self._get_oracle_fname()} records {n} trials but the trial files of trial number(s) "
                f"{missing[:5]} (trial_<id>/trial.json) are missing"
            )
        ends = []
        for tid in self.trials:
            seq = (extras.get(tid) or {}).get("end_seq")
            if seq is not None and int(seq) < end_count:
                ends.append((int(seq), tid))
        ends.sort()
        if [s for s, _ in ends] != list(range(end_count)):
            raise self._state_error(
                f"{self._get_oracle_fname()} records {end_count} finished trials but the trial files hold "
                f"{len(ends)} (trial.json files missing, or from another run)"
            )
        end_order = [tid for _, tid in ends]
        run_times = {tid: 1 for tid in end_order}
        run_times.update({str(k): int(v) for k, v in (state.get("run_times") or {}).items()})
        return {
            "start_order": sorted(self.trials, key=lambda t: (_trial_index(t) is None, _trial_index(t) or 0, t)),
            "end_order": end_order,
            "run_times": run_times,
            "tried_so_far": [],
            "id_to_hash": {},
        }

    def _after_history_loaded(self, state):
        self._hash_counts = collections.Counter()
        self._tried_so_far = self._hash_counts
        self._id_to_hash = collections.defaultdict(lambda: None)
        for tid, t in self.trials.items():
            h = self._compute_values_hash(t.hyperparameters.values)
            self._id_to_hash[tid] = h
            self._hash_counts[h] += 1
        self._end_seq = {tid: i for i, tid in enumerate(self.end_order)}
        self._retried = {tid for tid, r in self._run_times.items() if r != (1 if tid in self._end_seq else 0)}
        self._retried |= set(self._retry_queue)
        self._fail_streak = 0
        for tid in reversed(self.end_order):
            if self.trials[tid].status != TrialStatus.FAILED:
                break
            self._fail_streak += 1
        self._reported = {}
        self._last_written = None

    def _arrays_paths(self):
        d = os.path.dirname(self._get_oracle_fname())
        return os.path.join(d, ARRAYS_FNAME), os.path.join(d, ARRAYS_PREV_FNAME)

    def save(self):
        if self._suppress_save:
            return
        state = self.get_state()
        get_arrays = getattr(self.controller, "get_arrays", None)
        arrays = None
        digest = hashlib.sha1()
        if callable(get_arrays):
            arrays = {str(k): np.ascontiguousarray(v) for k, v in (get_arrays() or {}).items()}
            if _STEP_KEY in arrays:
                raise ValueError(f"Controller array name {_STEP_KEY!r} is reserved.")
            for k in sorted(arrays):
                digest.update(k.encode())
                digest.update(str(arrays[k].dtype).encode() + str(arrays[k].shape).encode())
                digest.update(arrays[k].tobytes())
        # Unchanged since the last write (keras-tuner saves the oracle again from Tuner.save):
        # skip the write.
        marker = (json.dumps(state, sort_keys=True), digest.hexdigest())
        if marker == self._last_written:
            return
        self._save_step += 1
        state[STATE_KEY]["step"] = self._save_step
        fname = self._get_oracle_fname()
        if arrays is not None:
            arrays[_STEP_KEY] = np.asarray(self._save_step, dtype=np.int64)
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            cur, prev = self._arrays_paths()
            if _is_local(cur) and os.path.exists(cur):
                os.replace(cur, prev)  # keep the pair the current oracle.json matches
            _write_atomic(cur, buf.getvalue(), self.fsync)
        _write_atomic(fname, json.dumps(state).encode("utf-8"), self.fsync)
        self._last_written = marker

    def reload(self):
        """Reload trials and oracle state; unreadable files raise :class:`StateFileError` naming
        the file; running trials interrupted by a crash are finished from their trial files
        when they had ended or reported, else sent to run again."""
        from keras_tuner.src import backend

        self._loaded_arrays_step = None
        self._trial_extras = {}
        pattern = os.path.join(self._project_dir, "trial_*", "trial.json")
        for fname in sorted(backend.io.glob(pattern)):
            tstate = _read_json(fname, "trial file", self._recover_hint_trial(fname))
            try:
                trial = kt.engine.trial.Trial.from_state(tstate)
            except Exception as e:
                raise StateFileError(
                    f"{fname} is not a keras-tuner trial file ({type(e).__name__}: {e}). "
                    + self._recover_hint_trial(fname)
                ) from e
            self.trials[trial.trial_id] = trial
            self._trial_extras[trial.trial_id] = tstate.get(TRIAL_EXTRA_KEY) or {}
        oname = self._get_oracle_fname()
        ostate = _read_json(
            oname, "oracle state file",
            "To recover, restore it from a backup, or start afresh with overwrite=True or a new project_name "
            "(the trial_*/ directories keep each finished trial's hyperparameters and metrics).",
        )
        self.set_state(ostate)
        step = self._loaded_arrays_step
        if step is not None:
            self._reload_arrays(step)
        self._recover_ongoing()
        self._trial_extras = {}

    def _recover_hint_trial(self, fname):
        return (
            f"To recover, restore {fname} from a backup; if that trial had not finished, deleting its "
            f"directory {os.path.dirname(fname)} makes it run again only if it is the newest trial. Or "
            "start afresh with overwrite=True or a new project_name."
        )

    def _reload_arrays(self, step):
        set_arrays = getattr(self.controller, "set_arrays", None)
        if not callable(set_arrays):
            raise RuntimeError(
                f"{self._get_oracle_fname()} was saved with controller arrays but "
                f"{type(self.controller).__name__} has no set_arrays(); use the same controller version."
            )
        cur, prev = self._arrays_paths()
        found = []
        for path in (cur, prev):
            if not _exists(path):
                continue
            try:
                arrays = _load_npz(path)
            except Exception as e:  # truncated / not an npz
                found.append(f"{path} (unreadable: {type(e).__name__}: {e})")
                continue
            file_step = int(arrays.pop(_STEP_KEY, -1))
            if file_step == step:
                set_arrays(arrays)
                return
            found.append(f"{path} (step {file_step})")
        raise StateFileError(
            f"Controller arrays do not match {self._get_oracle_fname()} (save step {step}): "
            f"{'found ' + ', '.join(found) if found else f'{cur} is missing'}. The json and npz files were not written "
            "together (interrupted copy, corrupted file, or files from different runs). To recover, restore the "
            f"matching pair of oracle.json and {ARRAYS_FNAME} from a backup, or start the search afresh with "
            "overwrite=True or a new project_name."
        )

    def _recover_ongoing(self):
        """After a crash: finish running trials whose end (or final metrics) reached their
        trial.json but not oracle.json; send the others to run again (keras-tuner's retry queue,
        not counted as a retry)."""
        replay, rerun = [], []
        for tuner_id, trial in sorted(self.ongoing_trials.items(), key=lambda kv: str(kv[1].trial_id)):
            tid = trial.trial_id
            ex = self._trial_extras.get(tid) or {}
            runs = int(self._run_times.get(tid, 0))
            if int(ex.get("run_times") or 0) > runs and trial.status != TrialStatus.RUNNING:
                replay.append((trial, trial.status))
            elif (
                ex.get("reported") is not None
                and int(ex["reported"]) == runs
                and trial.status == TrialStatus.RUNNING
                and self._has_objective(trial)
            ):
                replay.append((trial, TrialStatus.COMPLETED))
            else:
                rerun.append(tid)
        self.ongoing_trials = {}
        for tid in rerun:
            if tid not in self._retry_queue:
                self._retry_queue.append(tid)
        now = None
        for trial, status in replay:
            from datetime import datetime

            now = now or datetime.now()
            self._display.trial_start.setdefault(trial.trial_id, now)
            self._display.trial_number.setdefault(trial.trial_id, len(self.trials))
            if self._display.search_start is None:
                self._display.search_start = now
            trial.status = status
            self.end_trial(trial)

    def _has_objective(self, trial) -> bool:
        obj = self.objective
        names = list(obj.name_to_direction) if hasattr(obj, "name_to_direction") else [obj.name]
        return all(trial.metrics.exists(n) for n in names)


# -- concrete oracles ------------------------------------------------------------------------
def default_population_size(max_trials) -> int:
    """P for a budget: 100 (the paper) for >= 500 trials, else max_trials // 5, at least 2."""
    if not max_trials:
        return 100
    return int(min(100, max(2, max_trials // 5)))


def default_sample_size(population_size: int) -> int:
    """S = ceil(P / 4), at least 2 (paper: P=100 -> 25; NB201's P=10 -> 3)."""
    return int(max(2, -(-population_size // 4)))


class AgingEvolutionOracle(ControllerOracle):
    """Aging (regularized) evolution, Real et al. 2019, as a keras-tuner Oracle.

    ``population_size``/``sample_size`` default to :func:`default_population_size` of
    ``max_trials`` (``max_trials // 5`` clipped to [2, 100]) and ``ceil(P / 4)``.
    ``warm_start``: value dicts or genotypes (with ``encoder=`` or a keras-nas HyperModel's
    tuner) proposed first. Other keyword arguments: see :class:`ControllerOracle`.
    """

    def __init__(
        self,
        objective=None,
        max_trials=10,
        population_size=None,
        sample_size=None,
        hyperparameters=None,
        seed=None,
        warm_start=None,
        identity_prob=None,
        allow_new_entries=True,
        tune_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        sigma=0.1,
        **kwargs,
    ):
        self.population_size = population_size or default_population_size(max_trials)
        self.sample_size = sample_size or default_sample_size(self.population_size)
        self._evo_kwargs = dict(warm_start=warm_start, identity_prob=identity_prob, sigma=sigma)
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **kwargs,
        )

    def make_controller(self):
        from keras_nas.controllers.evolution import AgingEvolution

        return AgingEvolution(self.population_size, self.sample_size, seed=self.seed, **self._evo_kwargs)

    @property
    def population(self) -> list:
        """Current population (oldest first): ``[{"values", "reward", "age"}]``."""
        return [dict(m) for m in self.controller.population]


class ReinforceOracle(ControllerOracle):
    """REINFORCE (policy-gradient) controller as a keras-tuner Oracle.

    ``controller_kwargs`` go to ``keras_nas.controllers.reinforce.ReinforceController``
    (``reward_transform`` included: the controller applies it, and takes ``"cube"``);
    oracle options (``kinds``, ``cost_*``, duplicates, ...) are taken out first.
    """

    # ``reward_transform`` is left to the controller (it also takes names such as "cube").
    _ORACLE_KEYS = (
        "allow_new_entries", "tune_new_entries", "max_retries_per_trial", "max_consecutive_failed_trials",
        "kinds", "cost_metric", "cost_fn", "cost_target", "cost_weight",
        "allow_duplicates", "max_collisions", "encoder", "fsync", "heartbeat_timeout_s", "trial_deadline_s",
    )

    def __init__(self, objective=None, max_trials=10, hyperparameters=None, seed=None, **controller_kwargs):
        oracle_kwargs = {k: controller_kwargs.pop(k) for k in self._ORACLE_KEYS if k in controller_kwargs}
        self._controller_kwargs = controller_kwargs
        super().__init__(
            objective=objective, max_trials=max_trials, hyperparameters=hyperparameters, seed=seed, **oracle_kwargs
        )

    def make_controller(self):
        from keras_nas.controllers.reinforce import ReinforceController

        return ReinforceController(seed=self.seed, **self._controller_kwargs)


class RandomOracle(ControllerOracle):
    """Uniform random search through the same code path (baseline for benchmarks)."""

    def __init__(self, objective=None, max_trials=10, hyperparameters=None, seed=None, **kwargs):
        super().__init__(objective=objective, max_trials=max_trials, hyperparameters=hyperparameters, seed=seed, **kwargs)

    def make_controller(self):
        return RandomController(seed=self.seed)


# -- file helpers ----------------------------------------------------------------------------
def _is_local(path: str) -> bool:
    return "://" not in str(path)


def _exists(path: str) -> bool:
    if _is_local(path):
        return os.path.exists(path)
    from keras_tuner.src import backend  # pragma: no cover

    return backend.io.exists(path)  # pragma: no cover


def _write_atomic(path: str, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content, never a torn file."""
    if not _is_local(path):  # remote (gs://...): no rename atomicity; plain write
        from keras_tuner.src import backend  # pragma: no cover

        with backend.io.File(path, "wb") as f:  # pragma: no cover
            f.write(data)
        return  # pragma: no cover
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


def _trial_index(trial_id) -> Optional[int]:
    t = str(trial_id)
    return int(t) if t.isdigit() else None


def _read_json(path: str, what: str, hint: str):
    """Load a JSON file; any failure raises StateFileError naming the file and how to recover."""
    from keras_tuner.src import backend

    try:
        with backend.io.File(path, "r") as f:
            text = f.read()
    except Exception as e:
        raise StateFileError(f"Cannot read the {what} {path} ({type(e).__name__}: {e}). {hint}") from e
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not text.strip():
        raise StateFileError(f"The {what} {path} is empty (truncated write). {hint}")
    try:
        return json.loads(text)
    except ValueError as e:
        raise StateFileError(f"The {what} {path} is corrupted or truncated (invalid JSON: {e}). {hint}") from e


def _load_npz(path: str) -> dict:
    if _is_local(path):
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    from keras_tuner.src import backend  # pragma: no cover

    with backend.io.File(path, "rb") as f:  # pragma: no cover
        with np.load(io.BytesIO(f.read()), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


class PredictorOracle(ControllerOracle):
    """Predictor-guided (BANANAS-style) search as a keras-tuner Oracle.

    Keyword-only arguments are :class:`~keras_nas.controllers.predictor.PredictorController`'s
    (``num_initial``, ``predictor``, ``acquisition``, ``num_candidates``, ``encoding``, ...,
    ``warm_start``); other keyword arguments: see :class:`ControllerOracle`.
    """

    _CONTROLLER_KEYS = (
        "num_initial", "predictor", "acquisition", "ensemble_size", "num_candidates", "num_parents",
        "random_fraction", "two_edit_prob", "encoding", "target", "beta", "refit_all_until", "hidden",
        "epochs", "learning_rate", "warm_start", "sigma",
    )

    def __init__(
        self,
        objective=None,
        max_trials=10,
        seed=None,
        hyperparameters=None,
        allow_new_entries=True,
        tune_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        **kwargs,
    ):
        self._predictor_kwargs = {k: kwargs.pop(k) for k in self._CONTROLLER_KEYS if k in kwargs}
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **kwargs,
        )

    def make_controller(self):
        from keras_nas.controllers.predictor import PredictorController

        return PredictorController(seed=self.seed, **self._predictor_kwargs)
