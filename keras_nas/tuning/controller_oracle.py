"""The keras-tuner Oracle driven by a keras-nas controller: :class:`ControllerOracle`.

:class:`ControllerOracle` adapts any :class:`~keras_nas.controllers.base.Controller` to
``keras_tuner.Oracle``: ``populate_space`` asks the controller, ``end_trial`` tells it the
reward. State files (:mod:`keras_nas.tuning.state`) and distributed liveness
(:mod:`keras_nas.tuning.liveness`) are mixed in; reward shaping and the Pareto front are
the pure :mod:`keras_nas.controllers.rewards`.

* **Proposals** hold a value for every *active* hp, plain Python types, so keras-tuner never
  fills a value with its unseeded RNG. The :class:`ParamSpace` is rebuilt whenever the
  hyperparameters grew.
* **Duplicates** (``allow_duplicates=False``, the default): like keras-tuner, an
  architecture already tried (or running) is re-proposed up to ``max_collisions`` times;
  when every attempt collides the space is taken as exhausted and the search STOPS, as
  keras-tuner's does. Aging evolution's *identity* mutation is exempt: it is the paper's
  deliberate re-evaluation of a parent. ``allow_duplicates=True`` accepts every proposal.
* **Rewards**: the trial's score (negated for ``'min'`` objectives), with an optional
  MnasNet cost penalty and ``reward_transform``. A non-finite objective fails the trial with
  a reason. Failed trials are reported as ``None`` (never parents), once, when they finally end.
* **Early stopping** (``early_stopping=MedianStopping(...)`` or ``ASHA(...)``): per-epoch reports
  may stop a trial; it ends ``STOPPED`` and the controller is told ``None`` as for a failed trial
  (:mod:`keras_nas.tuning.early_stopping`).
* **Locking**: ``create_trial``/``update_trial``/``end_trial`` release keras-tuner's lock on
  exceptions too (:func:`keras_nas.tuning.internals.synchronized`).

The oracles of each algorithm (aging evolution, REINFORCE, predictor, random) subclass it in
:mod:`keras_nas.tuning.oracle`, which also re-exports it (the import path of earlier releases).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Mapping, Optional

from keras_nas.controllers.base import Controller
from keras_nas.controllers.params import ParamSpace, plain
from keras_nas.controllers.rewards import ParetoFront, RewardShaper
from keras_nas.tuning.budget import TimeBudget
from keras_nas.tuning.early_stopping import EarlyStoppingMixin
from keras_nas.tuning.failures import failure_reason
from keras_nas.tuning.internals import Trial, TrialStatus, synchronized
from keras_nas.tuning.liveness import LivenessMixin
from keras_nas.tuning.spaces import param_space_from_hyperparameters
from keras_nas.tuning.state import PersistentOracle
from keras_nas.tuning.state_files import AtomicFiles


class ControllerOracle(EarlyStoppingMixin, LivenessMixin, PersistentOracle):
    """A keras-tuner Oracle whose proposals come from a keras-nas :class:`Controller`.

    Positional arguments are ``keras_tuner.Oracle``'s; keras-nas's own are keyword-only:
      controller: the controller; subclasses build one in :meth:`make_controller` instead.
      kinds: ``{hp name: kind}`` for AmoebaNet mutations (keras-nas HyperModels'
        ``decision_kinds``; keras-nas tuners pass them automatically).
      encoder: a SearchSpace to encode non-dict warm starts (genotypes).
      reward_transform: ``f(reward) -> float`` applied last (e.g. ``lambda r: r ** 3``).
      cost_metric: name of a metric the trial reports (e.g. ``"params"``), or
      cost_fn: ``f(trial) -> float``; the cost of a trial (params, FLOPs, latency).
      cost_target / cost_weight: MnasNet reward (see :class:`~keras_nas.controllers.rewards.RewardShaper`).
      allow_duplicates / max_collisions: duplicate policy (see module docstring).
      fsync: fsync every state/trial file before its rename (default True).
      store: where state goes (default :class:`~keras_nas.tuning.state_files.AtomicFiles`;
        ``NoFiles()`` for simulations).
      heartbeat_timeout_s / trial_deadline_s: distributed liveness (see
        :mod:`keras_nas.tuning.liveness`). None: off.
      early_stopping: ``keras_nas.MedianStopping(...)``, ``keras_nas.ASHA(...)`` or None (off):
        stop hopeless trials from per-epoch results (:mod:`keras_nas.tuning.early_stopping`).
      proxy / proxy_samples / proxy_candidates: proxy-assisted search
        (:class:`~keras_nas.controllers.proxy_assisted.ProxyAssisted` wraps the controller): a
        zero-cost proxy name (``"synflow"``, ``"naswot"``...; keras-nas tuners build and score each
        candidate) or a callable ``values -> float``; warm-up samples N and candidates per move C
        (defaults :data:`~keras_nas.controllers.proxy_assisted.DEFAULT_SAMPLES` /
        ``DEFAULT_CANDIDATES``).
    """

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
        *,
        controller: Optional[Controller] = None,
        kinds: Optional[Mapping[str, str]] = None,
        encoder=None,
        reward_transform: Optional[Callable[[float], float]] = None,
        cost_metric: Optional[str] = None,
        cost_fn: Optional[Callable[[Any], float]] = None,
        cost_target: Optional[float] = None,
        cost_weight=-0.07,
        allow_duplicates: bool = False,
        max_collisions: int = 20,
        fsync: bool = True,
        store: Optional[AtomicFiles] = None,
        heartbeat_timeout_s: Optional[float] = None,
        trial_deadline_s: Optional[float] = None,
        early_stopping=None,
        max_time: Optional[float] = None,
        proxy: Any = None,
        proxy_samples: Optional[int] = None,
        proxy_candidates: Optional[int] = None,
    ):
        _check_oracle_args(
            max_trials, max_retries_per_trial, max_consecutive_failed_trials, max_collisions
        )
        if cost_metric is not None and cost_fn is not None:
            raise ValueError(
                "Give either cost_metric (a reported metric's name) or cost_fn(trial), not both."
            )
        if cost_target is not None and cost_metric is None and cost_fn is None:
            raise ValueError(
                "cost_target needs a cost: pass cost_metric='params' (a reported metric) or cost_fn(trial)."
            )
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
        self.keep_seed(seed)
        self.shaper = RewardShaper(
            self.objective_direction(), cost_target, cost_weight, reward_transform
        )
        self.init_liveness(heartbeat_timeout_s, trial_deadline_s)
        self.init_early_stopping(early_stopping, self.objective_direction())
        self.time_budget = TimeBudget(max_time)
        self.kinds = dict(kinds or {})
        self.cost_metric = cost_metric
        self.cost_fn = cost_fn
        self.allow_duplicates = allow_duplicates
        self.max_collisions = max_collisions
        self.fsync = fsync
        self.init_state(store if store is not None else AtomicFiles(fsync))
        self.controller = controller if controller is not None else self.make_controller()
        if not isinstance(self.controller, Controller):
            raise TypeError(
                f"controller must be a keras_nas Controller, got {type(self.controller).__name__}."
            )
        if encoder is not None:
            self.controller.set_encoder(encoder)
        self.proxy_name = _wrap_proxy(self, proxy, proxy_samples, proxy_candidates)
        self._pending: dict = {}  # trial_id -> proposed values (running or waiting for retry)
        self._pareto = ParetoFront(self.objective_direction())
        self._num_collisions = 0
        self._space_cache = (None, None)
        self._fail_streak = 0
        self._streak_error = None

    # convenience accessors kept from the first release
    @property
    def reward_transform(self):
        return self.shaper.transform

    @property
    def cost_target(self):
        return self.shaper.cost_target

    @property
    def cost_weight(self):
        return self.shaper.cost_weight

    # -- hooks ---------------------------------------------------------------------------
    def make_controller(self) -> Controller:
        raise ValueError(
            f"{type(self).__name__} needs a controller: ControllerOracle(controller=..., ...)."
        )

    def summary_scalars(self) -> dict:
        """``{name: float}`` controller statistics for TensorBoard (``controller/<name>``), from the
        controller's ``summary_scalars(param_space)``. Non-finite values are left out."""
        out = {}
        for k, v in (self.controller.summary_scalars(self.param_space()) or {}).items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                out[str(k)] = v
        return out

    def set_encoder(self, encoder) -> None:
        """Give the controller a SearchSpace for genotype warm starts."""
        self.controller.set_encoder(encoder)

    def pending_values(self) -> dict:
        """``{trial_id: values}`` proposed and not yet reported to the controller."""
        return {k: dict(v) for k, v in self._pending.items()}

    def param_space(self) -> ParamSpace:
        """The controller's view of ``self.hyperparameters`` (rebuilt whenever it grew)."""
        hps = self.hyperparameters
        key = (id(hps), len(hps.space), tuple(sorted(self.kinds.items())))
        if self._space_cache[0] != key:
            self._space_cache = (key, param_space_from_hyperparameters(hps, kinds=self.kinds))
        return self._space_cache[1]

    # -- ask -----------------------------------------------------------------------------
    def populate_space(self, trial_id):
        space = self.param_space()
        for _ in range(self.max_collisions + 1):
            values = self.controller.propose(space)
            # Enforce the rules whatever the controller did: every active value, plain types.
            values = space.complete(values, self.controller.sample_value)
            if (
                self.allow_duplicates
                or self.controller.last_origin == "identity"
                or not self.is_duplicate(values)
            ):
                self._pending[trial_id] = values
                return {"status": TrialStatus.RUNNING, "values": values}
            self._num_collisions += 1
            self.controller.discard(values, space)
        # Every attempt repeated an earlier trial: the space is exhausted (keras-tuner stops too).
        print(
            f"keras-nas: {self.max_collisions + 1} proposals in a row repeated earlier trials; the search space "
            "looks exhausted, so the search stops (allow_duplicates=True re-evaluates instead).",
            flush=True,
        )
        return {"status": TrialStatus.STOPPED, "values": None}

    @synchronized
    def create_trial(self, tuner_id):
        self.expire_stale()
        if self.should_idle(tuner_id):
            self.tuner_ids.add(tuner_id)
            return Trial(self.get_space(), status=TrialStatus.IDLE)
        self.time_budget.start()
        if self.time_budget.expired() and tuner_id not in self.ongoing_trials:
            self.tuner_ids.discard(tuner_id)  # as keras-tuner does when max_trials is reached
            return Trial(self.get_space(), status=TrialStatus.STOPPED)
        retry_ids = set(self.retry_queue)
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            self.trial_started(trial.trial_id)
            if trial.trial_id in retry_ids:
                self.save_trial(trial)  # trial.json says RUNNING again
        return trial

    @synchronized
    def update_trial(self, trial_id, metrics, step=0):
        if trial_id not in self.trials:
            raise ValueError(
                f"update_trial: unknown trial id {trial_id!r} (known: {len(self.trials)} trials)."
            )
        self.heartbeat(trial_id)
        if trial_id in self._end_seq:  # already ended (a late report from a worker presumed dead)
            warnings.warn(f"Ignoring metrics for trial {trial_id}: it has already ended.")
            return self.trials[trial_id]
        if self.is_epoch_report(metrics):  # an epoch's objective for the early-stopping rule
            return self.epoch_report(self.trials[trial_id], metrics, step)
        self._reported[trial_id] = int(self.run_times.get(trial_id, 0))
        return super().update_trial(trial_id, metrics, step=step)

    def get_trial(self, trial_id):
        self.heartbeat(trial_id)  # workers poll their running trial as a heartbeat
        return super().get_trial(trial_id)

    # -- tell ----------------------------------------------------------------------------
    def score_trial(self, trial):
        super().score_trial(trial)
        if trial.score is not None and not math.isfinite(float(trial.score)):
            # keras-tuner keeps an inf objective as COMPLETED (and the best trial) and fails a NaN
            # one without a reason: both fail here, with one.
            reason = f"keras-nas: the objective is not finite ({float(trial.score)})"
            trial.message = f"{trial.message}\n{reason}" if trial.message else reason
            trial.score = float("nan")  # keras-tuner marks a NaN score INVALID (then FAILED)

    @synchronized
    def end_trial(self, trial, status=None):
        if isinstance(trial, str):  # keras-tuner's old end_trial(trial_id, status) signature
            trial = Trial(self.get_space(), trial, status or TrialStatus.COMPLETED)
        trial_id = trial.trial_id
        if trial_id not in self.trials:
            raise ValueError(
                f"end_trial: unknown trial id {trial_id!r} (known: {len(self.trials)} trials)."
            )
        if trial_id in self._end_seq:
            # A second report for a trial that already ended (its worker was presumed dead and
            # the trial handed to another worker, or a duplicated RPC): never count it twice.
            warnings.warn(f"Ignoring a second end_trial for trial {trial_id}: it already ended.")
            return
        if trial_id in self.retry_queue:
            self.retry_queue.remove(trial_id)  # late result of an expired trial: take it
        error = None
        self._suppress_save = True  # one save below, after the controller has been told
        try:
            self.mark_stopped(trial)  # stopped early: STOPPED, never COMPLETED
            super().end_trial(trial)
        except Exception as e:
            error = e
        finally:
            self._suppress_save = False
        self._reported.pop(trial_id, None)
        self.trial_stopped(trial_id)
        if self._streak_error is not None and error is None:
            error, self._streak_error = self._streak_error, None
        try:
            t = self.trials[trial_id]
            retrying = t.status == TrialStatus.INVALID and trial_id in self.retry_queue
            self.trial_ended_early_stopping(trial_id, retrying)
            if not retrying and trial_id in self._pending:
                self._pending.pop(trial_id)  # never report a trial twice
                values = {k: plain(v) for k, v in t.hyperparameters.values.items()}
                reward, cost = None, None
                if t.status == TrialStatus.COMPLETED:
                    cost = self.trial_cost(t)
                    reward = self.shaper.reward(t.score, cost)
                self.controller.observe(values, reward, self.param_space())
                if cost is not None and reward is not None:
                    self._pareto.add(trial_id, float(t.score), cost, reward)
        finally:
            self.save()
        if error is not None:
            raise error

    def objective_direction(self) -> str:
        return getattr(self.objective, "direction", "max") or "max"

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
            raise ValueError(
                f"Trial {trial.trial_id}: cost must be a positive finite number, got {cost!r}."
            )
        return float(cost)

    def pareto_front(self) -> list:
        """Non-dominated finished trials (better objective, lower cost), sorted by cost:
        ``[{"trial_id", "score", "cost", "reward"}]``. Empty when no cost is configured."""
        return self._pareto.to_list()

    def check_failures(self):
        # keras-tuner rescans the whole end_order on every end (O(history)) and raises inside
        # end_trial, before the trial is saved. Here: O(1), and the error is raised by
        # end_trial after everything is saved.
        tid = self.end_order[-1]
        self._end_seq[tid] = len(self.end_order) - 1
        trial = self.trials[tid]
        self._fail_streak = self._fail_streak + 1 if trial.status == TrialStatus.FAILED else 0
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

    # -- state hooks ---------------------------------------------------------------------
    def state_extra(self) -> dict:
        return {
            "pending": {k: dict(v) for k, v in self._pending.items()},
            "pareto": self._pareto.to_list(),
            "num_collisions": self._num_collisions,
            **self.early_stopping_extra(),
        }

    def load_extra(self, ks: dict) -> None:
        self._pending = {str(k): dict(v) for k, v in ks.get("pending", {}).items()}
        self._pareto = ParetoFront(self.objective_direction(), ks.get("pareto", []))
        self._num_collisions = int(ks.get("num_collisions", 0))
        self.load_early_stopping_extra(ks)
        self._space_cache = (None, None)

    def history_loaded(self):
        self.rebuild_early_stopping()
        self._fail_streak = 0
        for tid in reversed(self.end_order):
            if self.trials[tid].status != TrialStatus.FAILED:
                break
            self._fail_streak += 1


def _wrap_proxy(oracle, proxy, samples, candidates) -> Optional[str]:
    """Wrap ``oracle.controller`` in ProxyAssisted when a proxy is given; returns the proxy's name
    (None for a callable or no proxy)."""
    if proxy is None:
        if samples is not None or candidates is not None:
            raise ValueError(
                "proxy_samples / proxy_candidates need a proxy: pass proxy='synflow' (or another name "
                "of keras_nas.proxies.available()) or a callable values -> float."
            )
        return None
    from keras_nas.controllers import proxy_assisted as pa

    name = None
    if isinstance(proxy, str):
        from keras_nas import proxies

        if proxy not in proxies.available():
            raise ValueError(
                f"Unknown proxy {proxy!r}; valid proxies are {list(proxies.available())}, or pass a "
                "callable values -> float."
            )
        name, proxy = proxy, None
    elif not callable(proxy):
        raise TypeError(
            f"proxy must be a proxy name or a callable values -> float, got {type(proxy).__name__}."
        )
    oracle.controller = pa.ProxyAssisted(
        oracle.controller,
        proxy,
        seed=oracle.seed,
        samples=pa.DEFAULT_SAMPLES if samples is None else samples,
        candidates=pa.DEFAULT_CANDIDATES if candidates is None else candidates,
    )
    return name


def _check_oracle_args(
    max_trials, max_retries_per_trial, max_consecutive_failed_trials, max_collisions
):
    if max_collisions < 0:
        raise ValueError(f"max_collisions must be >= 0, got {max_collisions!r}.")
    if max_consecutive_failed_trials is not None and (
        not isinstance(max_consecutive_failed_trials, int) or max_consecutive_failed_trials < 1
    ):
        raise ValueError(
            f"max_consecutive_failed_trials must be a positive int (or None: never stop), "
            f"got {max_consecutive_failed_trials!r}."
        )
    if (
        max_retries_per_trial is None
        or not isinstance(max_retries_per_trial, int)
        or max_retries_per_trial < 0
    ):
        raise ValueError(
            f"max_retries_per_trial must be an int >= 0, got {max_retries_per_trial!r}."
        )
    if max_trials is not None and (
        not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1
    ):
        raise ValueError(f"max_trials must be a positive int, got {max_trials!r}.")
