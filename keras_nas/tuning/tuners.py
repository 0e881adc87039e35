"""Drop-in keras-tuner Tuners for the keras-nas controllers.

``kt.RandomSearch(build_model, objective="val_accuracy", max_trials=50, directory=...,
project_name=...)`` becomes ``keras_nas.AgingEvolution(...)`` or ``keras_nas.ReinforceSearch(...)``
with the same arguments, in keras-tuner's positional order; the algorithm's own arguments
are keyword-only.

With a keras-nas HyperModel (``NASNetHyperModel`` ...), the tuner hands the oracle the
decision kinds (AmoebaNet hidden-state / op mutations) and the search space (so
``warm_start`` may list genotypes). ``report_params=True`` (automatic when
``cost_metric="params"``) adds the model's parameter count to every epoch's logs, so it
is reported as the trial metric ``"params"`` (MnasNet-style cost, Pareto front).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import time
import warnings

import keras
import keras_tuner as kt

from keras_nas import reporting
from keras_nas.tuning import callbacks as cb_lib
from keras_nas.tuning import early_stopping as es_lib
from keras_nas.tuning import internals, proxy_scoring
from keras_nas.tuning import oracle as oracle_lib
from keras_nas.tuning.failures import first_line, is_environment_error, is_out_of_memory
from keras_nas.tuning.liveness import Heartbeat
from keras_nas.tuning.state_files import read_json, write_atomic

_KT_ARGS = (
    "hypermodel",
    "objective",
    "max_trials",
    "seed",
    "hyperparameters",
    "tune_new_entries",
    "allow_new_entries",
    "max_retries_per_trial",
    "max_consecutive_failed_trials",
)


def _tuner_options() -> set:
    """keras_tuner.Tuner / BaseTuner keyword arguments, read from their signatures."""
    names = set()
    for fn in (
        kt.Tuner.__init__,
        kt.engine.base_tuner.BaseTuner.__init__,
        ControllerTuner.__init__,
    ):
        names |= {
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }
    return (names | {"logger", "tuner_id", "executions_per_trial"}) - {
        "self",
        "oracle",
        "hypermodel",
    }


def trial_seed(seed, trial_id, execution=0) -> int:
    """The training seed of one trial execution: from (search seed, trial id), so a resumed search
    trains each trial as the uninterrupted one did."""
    tid = int(trial_id) if str(trial_id).isdigit() else sum(map(ord, str(trial_id)))
    return ((int(seed or 0) * 1_000_003) + tid * 101 + execution) % (2**31 - 1)


class ControllerTuner(reporting.ResultsSummaryMixin, internals.WalledTuner):
    """keras-tuner Tuner with keras-nas reliability additions.

    * ``resume_trials=True``: every fit gets an atomic ``BackupAndRestore`` (backup in
      ``trial_<id>/backup/execution<k>``) and a per-epoch log, so a trial interrupted by a crash
      resumes from its last finished epoch and reports the metrics of all its epochs. The
      best-epoch checkpoint is written atomically too.
    * Each trial's training is seeded from (``seed``, trial id) before build and fit.
    * Failed trials are FAILED (not retried) with a one-line reason as the last line of
      ``trial.message`` (:func:`keras_nas.tuning.failures.failure_reason`): an architecture
      that cannot be built, a NaN/inf loss or objective, an out-of-memory error. A full disk or
      failing file system is not the architecture's fault: the search stops with a clear
      error and that trial runs again on resume.
    * State files are written atomically; unreadable ones raise an error naming the file. A
      project with an ``oracle.json`` is always reloaded (``overwrite=False``).
    * ``results_summary()`` shows each trial's architecture (genotype string) rather than its raw
      decisions (``raw=True`` adds them).
    * Distributed: workers send a heartbeat every ``heartbeat_interval_s`` while a trial runs
      and sleep ``idle_sleep_s`` when the chief answers IDLE. A worker whose chief does not
      answer for ``chief_timeout_s`` (it finished, even before this worker's first call; was
      restarted elsewhere; or has not started) leaves ``search()`` with a message instead of
      waiting in keras-tuner's one-hour gRPC timeout: start the chief first, or raise
      ``chief_timeout_s`` when it may start later than its workers; a worker
      paused past the chief's ``heartbeat_timeout_s`` finds its trial handed over: its late
      reports are ignored and it carries on with the next trial, or exits when none is left.
    """

    def __init__(
        self,
        oracle,
        hypermodel=None,
        report_params=None,
        resume_trials=True,
        heartbeat_interval_s=10.0,
        idle_sleep_s=0.5,
        chief_timeout_s=60.0,
        **kwargs,
    ):
        if heartbeat_interval_s is not None and not heartbeat_interval_s > 0:
            raise ValueError(
                f"heartbeat_interval_s must be positive or None, got {heartbeat_interval_s!r}."
            )
        if hypermodel is None and type(self).run_trial is ControllerTuner.run_trial:
            raise ValueError(
                "Received `hypermodel=None`. We only allow not specifying `hypermodel` if the user defines the "
                "search space in `Tuner.run_trial()` by subclassing a keras-nas tuner: pass a build(hp) function "
                "or a keras_tuner.HyperModel."
            )
        # Wire the hypermodel into the oracle *before* BaseTuner may swap self.oracle for a
        # gRPC client (distributed workers).
        kinds = getattr(hypermodel, "decision_kinds", None)
        if kinds:
            oracle.kinds = {**dict(kinds), **oracle.kinds}
        space = getattr(hypermodel, "space", None)
        if space is not None and hasattr(space, "encode"):
            oracle.set_encoder(space)
        if report_params is None:
            report_params = oracle.cost_metric == "params"
        self.report_params = bool(report_params)
        # Read before BaseTuner may swap self.oracle for a gRPC client (distributed workers).
        self.early_stopping = getattr(oracle, "early_stopping", None)
        self.resume_trials = bool(resume_trials)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.idle_sleep_s = float(idle_sleep_s)
        if not chief_timeout_s > 0:
            raise ValueError(f"chief_timeout_s must be positive, got {chief_timeout_s!r}.")
        self.chief_timeout_s = float(chief_timeout_s)
        self._execution = 0
        self._heartbeat = None
        self._tuner_json = None
        self._ensure_reload(kwargs)
        super().__init__(oracle, hypermodel, **kwargs)
        if self.is_worker:
            self._patch_client()

    # -- persistence ---------------------------------------------------------------------
    def _ensure_reload(self, kwargs):
        """keras-tuner reloads only when ``<tuner_id>.json`` exists; without it an existing
        project would be silently restarted and its trials overwritten. Recreate it."""
        if kwargs.get("overwrite") or internals.is_worker_process():
            return
        project = os.path.join(
            str(kwargs.get("directory") or "."), kwargs.get("project_name") or "untitled_project"
        )
        tuner_json = os.path.join(
            project, f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json"
        )
        if os.path.exists(os.path.join(project, "oracle.json")) and not os.path.exists(tuner_json):
            write_atomic(tuner_json, b"{}", True)

    def save(self):
        if not self.is_worker:
            self.oracle.save()
        body = json.dumps(self.get_state()).encode("utf-8")
        fname = self.tuner_file
        if body != self._tuner_json or not os.path.exists(fname):
            write_atomic(fname, body, getattr(self.oracle, "fsync", True))
            self._tuner_json = body

    def reload(self):
        if not self.is_worker:
            self.oracle.reload()
        fname = self.tuner_file
        self.set_state(
            read_json(
                fname,
                "tuner state file",
                f"It holds no results: delete {fname} and run again to resume from oracle.json.",
            )
        )

    def _populate_initial_space(self):
        # keras-tuner builds the hypermodel's default values here, outside any trial: a default
        # that cannot be built would raise the user's error from the constructor. Record the
        # space seen so far instead; each trial then builds (or fails) like any other.
        try:
            return super()._populate_initial_space()
        except (kt.errors.FatalError, KeyboardInterrupt):
            raise
        except Exception as e:
            warnings.warn(
                f"keras-nas: the hypermodel's default hyperparameter values could not be built "
                f"({first_line(e)}); trials whose values cannot be built will fail with that reason."
            )
            hp = self.oracle.get_space()
            try:
                self.hypermodel.build(hp)
            except Exception:
                pass
            self.oracle.update_space(hp)

    # -- trials --------------------------------------------------------------------------
    def run_trial(self, trial, *args, **kwargs):
        self._execution = 0
        if self.report_params:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [cb_lib.ParamsLogger()]
        return super().run_trial(trial, *args, **kwargs)

    def build_hypermodel(self, hp):
        try:
            return super().build_hypermodel(hp)
        except (kt.errors.FatalError, kt.errors.FailedTrialError):
            raise
        except Exception as e:
            raise _classified(e, "while building the model") or kt.errors.FailedTrialError(
                f"keras-nas: the architecture could not be built ({first_line(e)})"
            ) from e

    def build_and_fit(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        execution = self._execution
        self._execution += 1
        keras.utils.set_random_seed(trial_seed(self.oracle.seed, trial.trial_id, execution))
        model = self.build_model(hp)
        callbacks = [
            internals.AtomicSaveBestEpoch.replacing(c)
            if isinstance(c, internals.SaveBestEpoch)
            else c
            for c in (kwargs.get("callbacks") or [])
        ]
        earlier = {}
        trial_dir = self.get_trial_dir(trial.trial_id)
        if self.resume_trials and getattr(model, "built", False):
            backup_dir = os.path.join(trial_dir, "backup", f"execution{execution}")
            log_path = os.path.join(trial_dir, f"epochs_execution{execution}.jsonl")
            restored = cb_lib.backup_epoch(backup_dir)
            if restored:
                earlier = cb_lib.read_epoch_log(log_path, restored)
                self._seed_best_epoch(callbacks, earlier)
                print(
                    f"keras-nas: trial {trial.trial_id} resumes at epoch {restored} from {backup_dir}",
                    flush=True,
                )
            elif os.path.exists(log_path):
                os.remove(log_path)
            # The epoch log first, then the backup: a kill between them re-runs that epoch, never loses it.
            callbacks = [cb_lib.EpochLog(log_path), cb_lib.TrialBackup(backup_dir)] + callbacks
        if self.early_stopping is not None:  # per-epoch reports; the oracle may stop the fit
            callbacks.append(
                es_lib.EpochReporter(self.oracle, trial.trial_id, self.oracle.objective)
            )
        callbacks.append(keras.callbacks.TerminateOnNaN())
        kwargs["callbacks"] = callbacks
        try:
            results = self.hypermodel.fit(hp, model, *args, **kwargs)
        except (kt.errors.FatalError, kt.errors.FailedTrialError):
            raise
        except Exception as e:
            classified = _classified(e, "during training")
            if classified is None:
                raise
            raise classified from e
        if earlier and isinstance(results, keras.callbacks.History):
            cb_lib.merge_history(results, earlier)
        self._check_finite(results)
        if internals.multi_backend():
            write_atomic(
                self.build_config_file(trial.trial_id),
                json.dumps(model.get_build_config()).encode("utf-8"),
                getattr(self.oracle, "fsync", True),
            )
        internals.validate_trial_results(results, self.oracle.objective, "HyperModel.fit()")
        return results

    def _seed_best_epoch(self, callbacks, earlier):
        objective = self.oracle.objective
        for cb in callbacks:
            if isinstance(cb, internals.SaveBestEpoch):
                for logs in earlier.values():
                    if objective.has_value(logs):
                        v = objective.get_value(logs)
                        if (
                            v is not None
                            and math.isfinite(v)
                            and objective.better_than(v, cb.best_value)
                        ):
                            cb.best_value = v

    def _check_finite(self, results):
        if isinstance(results, keras.callbacks.History):
            for key in ["loss"] + [k for k in results.history if k != "loss"]:
                for epoch, v in zip(results.epoch, results.history.get(key, [])):
                    if v is not None and not math.isfinite(float(v)):
                        if key == "loss" or self.oracle.objective.has_value({key: v}):
                            raise kt.errors.FailedTrialError(
                                f"keras-nas: {key} became {float(v)} in epoch {epoch + 1} (diverged; "
                                "TerminateOnNaN stopped the fit)"
                            )

    # -- distributed ---------------------------------------------------------------------
    def _patch_client(self):
        client = internals.fail_fast_client(self.oracle, self.chief_timeout_s)
        create = client.create_trial
        idle = kt.engine.trial.TrialStatus.IDLE

        def create_trial(tuner_id):
            trial = create(tuner_id)
            if trial.status == idle:
                time.sleep(self.idle_sleep_s)  # keras-tuner would spin without pause
            return trial

        client.create_trial = create_trial

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        if self.is_worker and self.heartbeat_interval_s:
            self._heartbeat = Heartbeat(self.oracle, trial.trial_id, self.heartbeat_interval_s)

    def on_trial_end(self, trial):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        super().on_trial_end(trial)

    def search(self, *fit_args, **fit_kwargs):
        proxy_scoring.install(
            self, fit_args, fit_kwargs
        )  # proxy="synflow": build and score candidates
        if internals.is_chief_oracle() and isinstance(self.oracle, oracle_lib.ControllerOracle):
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            internals.serve_chief(self.oracle)
            return
        try:
            return super().search(*fit_args, **fit_kwargs)
        except internals.ChiefGone as e:  # a worker that woke up after the search ended
            print(str(e), flush=True)
            return None

    def pareto_front(self):
        """The oracle's (objective, cost) Pareto front (chief / single process only)."""
        return self.oracle.pareto_front()


def _classified(e, when: str):
    """The keras-tuner error an exception becomes: the machine's fault stops the search (FatalError,
    the trial reruns on resume); out of memory fails the trial with a reason; else None."""
    if is_environment_error(e):
        return kt.errors.FatalError(_environment_message(e))
    if is_out_of_memory(e):
        return kt.errors.FailedTrialError(f"keras-nas: out of memory {when} ({first_line(e)})")
    return None


def _environment_message(e) -> str:
    return (
        f"keras-nas: the search stopped because the machine failed, not the architecture ({first_line(e)}). "
        "Free disk space (or fix the file system), then run the same search again: it resumes and runs "
        "this trial again; nothing finished is lost."
    )


def _split(cls, kwargs, algorithm_options=()):
    """Split keyword arguments into the oracle's options and the Tuner's; anything else is an error
    naming the class the user called and the valid arguments."""
    oracle_opts = set(oracle_lib.oracle_options())
    tuner_opts = _tuner_options()
    unknown = sorted(
        k for k in kwargs if k not in oracle_opts | tuner_opts | set(algorithm_options)
    )
    if unknown:
        own = {
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        } - {"self"}
        raise oracle_lib.unknown_arguments(
            cls, unknown, own | oracle_opts | tuner_opts | set(algorithm_options)
        )
    oracle_kw = {
        k: kwargs.pop(k) for k in list(kwargs) if k in oracle_opts or k in algorithm_options
    }
    return oracle_kw, kwargs


class AgingEvolution(ControllerTuner):
    """Aging-evolution search (Real et al. 2019) with ``kt.RandomSearch``'s arguments.

    Keyword-only (beyond ``kt.RandomSearch``'s):
      population_size: P; default ``clip(max(max_trials // 5, min(max_trials // 2, 15)), 2, 100)``
        (measured on NAS-Bench-201; paper: 100).
      sample_size: S; default ``P // 2`` up to 100 trials, else ``ceil(P / 4)`` (paper: 25), at least 2.
      warm_start: value dicts or genotypes (e.g. ``keras_nas.zoo.AMOEBANET_A``) tried first.
      identity_prob: identity-mutation probability (default 0.05 on cell spaces, else 0).
      report_params: report ``params`` per trial (default: when ``cost_metric == "params"``).
      kinds, reward_transform, cost_metric, cost_fn, cost_target, cost_weight,
      allow_duplicates, max_collisions: see :class:`~keras_nas.tuning.controller_oracle.ControllerOracle`.
      **kwargs: ``keras_tuner.Tuner`` arguments (directory, project_name, overwrite, ...).
    """

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials=10,
        seed=None,
        hyperparameters=None,
        tune_new_entries=True,
        allow_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        *,
        population_size=None,
        sample_size=None,
        warm_start=None,
        identity_prob=None,
        report_params=None,
        **kwargs,
    ):
        self.seed = seed
        oracle_kw, kwargs = _split(type(self), kwargs, ("sigma",))
        oracle = oracle_lib.AgingEvolutionOracle(
            objective,
            max_trials,
            seed,
            hyperparameters,
            allow_new_entries,
            tune_new_entries,
            max_retries_per_trial,
            max_consecutive_failed_trials,
            population_size=population_size,
            sample_size=sample_size,
            warm_start=warm_start,
            identity_prob=identity_prob,
            **oracle_kw,
        )
        super().__init__(oracle, hypermodel, report_params=report_params, **kwargs)


class _ForwardingSearch(ControllerTuner):
    """A tuner over a :class:`~keras_nas.tuning.oracle._ForwardingOracle`: keyword arguments that
    are neither ``keras_tuner.Tuner``'s nor the oracle's options go to the controller (or pass
    ``controller_kwargs={...}``). Subclasses name the oracle class (``oracle_class``)."""

    oracle_class = None

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials=10,
        seed=None,
        hyperparameters=None,
        tune_new_entries=True,
        allow_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        *,
        report_params=None,
        controller_kwargs=None,
        **kwargs,
    ):
        self.seed = seed
        controller = self.oracle_class.controller_class()
        controller_opts = oracle_lib._keyword_names(controller.__init__)
        oracle_kw, kwargs = _split(type(self), kwargs, controller_opts)
        oracle_kw.update(controller_kwargs or {})
        oracle = self.oracle_class(
            objective,
            max_trials,
            seed,
            hyperparameters,
            allow_new_entries,
            tune_new_entries,
            max_retries_per_trial,
            max_consecutive_failed_trials,
            **oracle_kw,
        )
        super().__init__(oracle, hypermodel, report_params=report_params, **kwargs)


class ReinforceSearch(_ForwardingSearch):
    """REINFORCE controller search with ``kt.RandomSearch``'s arguments.

    Keyword arguments that are neither ``keras_tuner.Tuner``'s nor the oracle's options go
    to ``keras_nas.controllers.reinforce.ReinforceController`` (or pass
    ``controller_kwargs={...}``).
    """

    oracle_class = oracle_lib.ReinforceOracle


class RandomArchitectureSearch(ControllerTuner):
    """Uniform random search through the keras-nas oracle path (benchmark baseline;
    ``kt.RandomSearch`` is equivalent for users)."""

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials=10,
        seed=None,
        hyperparameters=None,
        tune_new_entries=True,
        allow_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        *,
        report_params=None,
        **kwargs,
    ):
        self.seed = seed
        oracle_kw, kwargs = _split(type(self), kwargs)
        oracle = oracle_lib.RandomOracle(
            objective,
            max_trials,
            seed,
            hyperparameters,
            allow_new_entries,
            tune_new_entries,
            max_retries_per_trial,
            max_consecutive_failed_trials,
            **oracle_kw,
        )
        super().__init__(oracle, hypermodel, report_params=report_params, **kwargs)


class PredictorSearch(_ForwardingSearch):
    """Predictor-guided (BANANAS-style) search with ``kt.RandomSearch``'s arguments.

    Keyword arguments that are neither ``keras_tuner.Tuner``'s nor the oracle's options go to
    :class:`~keras_nas.controllers.predictor.PredictorController` (``num_initial``, ``predictor``,
    ``acquisition``, ``num_candidates``, ``encoding``, ``warm_start`` ...), or pass
    ``controller_kwargs={...}``.
    """

    oracle_class = oracle_lib.PredictorOracle
