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

import functools
import io
import json
import math
import os
import tempfile
import threading
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

    # -- hooks ---------------------------------------------------------------------------
    def make_controller(self) -> Controller:
        raise ValueError(f"{type(self).__name__} needs a controller: ControllerOracle(controller=..., ...).")

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

    @synchronized
    def create_trial(self, tuner_id):
        return super().create_trial(tuner_id)

    @synchronized
    def update_trial(self, trial_id, metrics, step=0):
        return super().update_trial(trial_id, metrics, step=step)

    # -- tell ----------------------------------------------------------------------------
    @synchronized
    def end_trial(self, trial, status=None):
        if isinstance(trial, str):  # keras-tuner's old end_trial(trial_id, status) signature
            trial = kt.engine.trial.Trial(self.get_space(), trial, status or TrialStatus.COMPLETED)
        trial_id = trial.trial_id
        error = None
        self._suppress_save = True  # one save below, after the controller has been told
        try:
            super().end_trial(trial)
        except Exception as e:  # e.g. keras-tuner's consecutive-failure RuntimeError
            error = e
        finally:
            self._suppress_save = False
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

    # -- state ---------------------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        arrays_api = callable(getattr(self.controller, "get_arrays", None))
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
        }
        return state

    def set_state(self, state):
        super().set_state(state)
        ks = state.get(STATE_KEY)
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

    def _arrays_paths(self):
        d = os.path.dirname(self._get_oracle_fname())
        return os.path.join(d, ARRAYS_FNAME), os.path.join(d, ARRAYS_PREV_FNAME)

    def save(self):
        if self._suppress_save:
            return
        self._save_step += 1
        fname = self._get_oracle_fname()
        get_arrays = getattr(self.controller, "get_arrays", None)
        if callable(get_arrays):
            arrays = {str(k): np.asarray(v) for k, v in (get_arrays() or {}).items()}
            if _STEP_KEY in arrays:
                raise ValueError(f"Controller array name {_STEP_KEY!r} is reserved.")
            arrays[_STEP_KEY] = np.asarray(self._save_step, dtype=np.int64)
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            cur, prev = self._arrays_paths()
            if _is_local(cur) and os.path.exists(cur):
                os.replace(cur, prev)  # keep the pair the current oracle.json matches
            _write_atomic(cur, buf.getvalue(), self.fsync)
        _write_atomic(fname, json.dumps(self.get_state()).encode("utf-8"), self.fsync)

    def reload(self):
        self._loaded_arrays_step = None
        super().reload()  # trials + oracle.json -> set_state
        step = self._loaded_arrays_step
        if step is None:
            return
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
            arrays = _load_npz(path)
            file_step = int(arrays.pop(_STEP_KEY, -1))
            if file_step == step:
                set_arrays(arrays)
                return
            found.append(f"{path} (step {file_step})")
        raise RuntimeError(
            f"Controller arrays do not match {self._get_oracle_fname()} (save step {step}): "
            f"{'found ' + ', '.join(found) if found else f'{cur} is missing'}. The json and npz files were not written "
            "together (interrupted copy, or files from different runs). To recover, restore the matching "
            f"pair of oracle.json and {ARRAYS_FNAME} from a backup, or start the search afresh with "
            "overwrite=True or a new project_name."
        )


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
        "allow_duplicates", "max_collisions", "encoder", "fsync",
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


def _load_npz(path: str) -> dict:
    if _is_local(path):
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    from keras_tuner.src import backend  # pragma: no cover

    with backend.io.File(path, "rb") as f:  # pragma: no cover
        with np.load(io.BytesIO(f.read()), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
