"""Drop-in keras-tuner Tuners for the keras-nas controllers.

``kt.RandomSearch(build_model, objective="val_accuracy", max_trials=50, directory=...,
project_name=...)`` becomes ``keras_nas.AgingEvolution(...)`` or ``keras_nas.ReinforceSearch(...)``
with the same arguments; the algorithm's own arguments are optional.

With a keras-nas HyperModel (``NASNetHyperModel`` ...), the tuner hands the oracle the
decision kinds (AmoebaNet hidden-state / op mutations) and the search space (so
``warm_start`` may list genotypes). ``report_params=True`` (automatic when
``cost_metric="params"``) adds the model's parameter count to every epoch's logs, so it
is reported as the trial metric ``"params"`` (MnasNet-style cost, Pareto front).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time

import keras
import keras_tuner as kt

from keras_nas.controllers import oracles as oracles_lib

try:
    from keras_tuner.src.backend import config as _kt_config
    from keras_tuner.src.distribute import utils as _dist_utils
    from keras_tuner.src.engine import tuner_utils as _tuner_utils
except ImportError:  # pragma: no cover - older layouts
    from keras_tuner.backend import config as _kt_config
    from keras_tuner.distribute import utils as _dist_utils
    from keras_tuner.engine import tuner_utils as _tuner_utils

# ControllerOracle keyword arguments accepted by every tuner below.
_ORACLE_OPTIONS = (
    "kinds", "reward_transform", "cost_metric", "cost_fn", "cost_target", "cost_weight",
    "allow_duplicates", "max_collisions", "encoder", "fsync", "heartbeat_timeout_s", "trial_deadline_s",
)
# keras_tuner.Tuner / BaseTuner keyword arguments (everything else is the algorithm's).
_TUNER_OPTIONS = (
    "max_model_size", "optimizer", "loss", "metrics", "distribution_strategy", "directory",
    "project_name", "logger", "tuner_id", "overwrite", "executions_per_trial",
    "resume_trials", "heartbeat_interval_s", "idle_sleep_s",
)


class ParamsLogger(keras.callbacks.Callback):
    """Adds ``params`` (``model.count_params()``) to each epoch's logs (a cost metric)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["params"] = float(self.model.count_params())


class _EpochLog(keras.callbacks.Callback):
    """Appends each finished epoch's logs to a JSON-lines file (merged back after a resume)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        rec = {"epoch": int(epoch), "logs": {k: _plain_number(v) for k, v in (logs or {}).items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _plain_number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _read_epoch_log(path, before_epoch):
    """{epoch: logs} for epochs < before_epoch (last record of an epoch wins; a torn last line is skipped)."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if int(rec.get("epoch", -1)) < before_epoch:
                out[int(rec["epoch"])] = rec.get("logs") or {}
    return out


def is_out_of_memory(e: BaseException) -> bool:
    """TensorFlow ResourceExhaustedError, Python MemoryError, or an XLA/JAX/PyTorch OOM message."""
    if isinstance(e, MemoryError):
        return True
    name = type(e).__name__
    if name in ("ResourceExhaustedError", "OutOfMemoryError"):
        return True
    msg = str(e).lower()
    return "out of memory" in msg or "resource_exhausted" in msg or "resource exhausted" in msg


def _first_line(e: BaseException, limit=300) -> str:
    text = str(e).strip().splitlines()
    text = text[0] if text else ""
    return f"{type(e).__name__}: {text[:limit]}"


class _ControllerTuner(kt.Tuner):
    """keras-tuner Tuner with keras-nas reliability additions.

    * ``resume_trials=True``: every fit gets ``keras.callbacks.BackupAndRestore`` (backup in
      ``trial_<id>/backup/execution<k>``) and a per-epoch log, so a trial interrupted by a crash
      resumes from its last finished epoch and reports the metrics of all its epochs.
    * Failed trials are FAILED (not retried) with a one-line reason as the last line of
      ``trial.message`` (``keras_nas.controllers.oracles.failure_reason(trial)``): an
      architecture that cannot be built, a NaN/inf loss (``TerminateOnNaN`` stops the fit), an
      out-of-memory error.
    * State files (``<tuner_id>.json``, ``oracle.json``, ``trial.json``) are written atomically;
      unreadable ones raise an error naming the file. A project with an ``oracle.json`` is
      always reloaded (``overwrite=False``), never silently restarted.
    * Distributed: workers send a heartbeat every ``heartbeat_interval_s`` while a trial runs
      and sleep ``idle_sleep_s`` when the chief answers IDLE; the chief hands trials of silent
      workers to others (``heartbeat_timeout_s`` / ``trial_deadline_s`` on the oracle).
    """

    def __init__(self, oracle, hypermodel=None, report_params=None, resume_trials=True,
                 heartbeat_interval_s=10.0, idle_sleep_s=0.5, **kwargs):
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
        if heartbeat_interval_s is not None and not heartbeat_interval_s > 0:
            raise ValueError(f"heartbeat_interval_s must be positive or None, got {heartbeat_interval_s!r}.")
        self.report_params = bool(report_params)
        self.resume_trials = bool(resume_trials)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.idle_sleep_s = float(idle_sleep_s)
        self._execution = 0
        self._heartbeat = None
        self._tuner_json = None
        self._ensure_reload(kwargs)
        super().__init__(oracle, hypermodel, **kwargs)
        if self._is_worker():
            self._patch_client()

    # -- persistence ---------------------------------------------------------------------
    def _ensure_reload(self, kwargs):
        """keras-tuner reloads only when ``<tuner_id>.json`` exists; without it an existing
        project would be silently restarted and its trials overwritten. Recreate it."""
        if kwargs.get("overwrite") or (_dist_utils.has_chief_oracle() and not _dist_utils.is_chief_oracle()):
            return
        project = os.path.join(str(kwargs.get("directory") or "."), kwargs.get("project_name") or "untitled_project")
        tuner_json = os.path.join(project, f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json")
        if os.path.exists(os.path.join(project, "oracle.json")) and not os.path.exists(tuner_json):
            oracles_lib._write_atomic(tuner_json, b"{}", True)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        body = json.dumps(self.get_state()).encode("utf-8")
        fname = self._get_tuner_fname()
        if body != self._tuner_json or not os.path.exists(fname):
            oracles_lib._write_atomic(fname, body, getattr(self.oracle, "fsync", True))
            self._tuner_json = body

    def reload(self):
        if not self._is_worker():
            self.oracle.reload()
        fname = self._get_tuner_fname()
        self.set_state(oracles_lib._read_json(
            fname, "tuner state file",
            f"It holds no results: delete {fname} and run again to resume from oracle.json.",
        ))

    # -- trials --------------------------------------------------------------------------
    def run_trial(self, trial, *args, **kwargs):
        self._execution = 0
        if self.report_params:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [ParamsLogger()]
        return super().run_trial(trial, *args, **kwargs)

    def _build_hypermodel(self, hp):
        try:
            return super()._build_hypermodel(hp)
        except (kt.errors.FatalError, kt.errors.FailedTrialError):
            raise
        except Exception as e:
            if is_out_of_memory(e):
                raise kt.errors.FailedTrialError(f"keras-nas: out of memory while building the model ({_first_line(e)})") from e
            raise kt.errors.FailedTrialError(
                f"keras-nas: the architecture could not be built ({_first_line(e)})"
            ) from e

    def _build_and_fit_model(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        model = self._try_build(hp)
        execution = self._execution
        self._execution += 1
        callbacks = list(kwargs.get("callbacks") or [])
        earlier = {}
        trial_dir = self.get_trial_dir(trial.trial_id)
        if self.resume_trials and getattr(model, "built", False):
            backup_dir = os.path.join(trial_dir, "backup", f"execution{execution}")
            log_path = os.path.join(trial_dir, f"epochs_execution{execution}.jsonl")
            restored = _backup_epoch(backup_dir)
            if restored:
                earlier = _read_epoch_log(log_path, restored)
                self._seed_best_epoch(callbacks, earlier)
                print(f"keras-nas: trial {trial.trial_id} resumes at epoch {restored} from {backup_dir}", flush=True)
            elif os.path.exists(log_path):
                os.remove(log_path)
            # The epoch log first, then the backup: a kill between them re-runs that epoch, never loses it.
            callbacks = [_EpochLog(log_path), keras.callbacks.BackupAndRestore(backup_dir)] + callbacks
        callbacks.append(keras.callbacks.TerminateOnNaN())
        kwargs["callbacks"] = callbacks
        try:
            results = self.hypermodel.fit(hp, model, *args, **kwargs)
        except (kt.errors.FatalError, kt.errors.FailedTrialError):
            raise
        except Exception as e:
            if is_out_of_memory(e):
                raise kt.errors.FailedTrialError(f"keras-nas: out of memory during training ({_first_line(e)})") from e
            raise
        if earlier and isinstance(results, keras.callbacks.History):
            _merge_history(results, earlier)
        self._check_finite(results)
        if _kt_config.multi_backend():
            oracles_lib._write_atomic(
                self._get_build_config_fname(trial.trial_id), json.dumps(model.get_build_config()).encode("utf-8"),
                getattr(self.oracle, "fsync", True),
            )
        _tuner_utils.validate_trial_results(results, self.oracle.objective, "HyperModel.fit()")
        return results

    def _seed_best_epoch(self, callbacks, earlier):
        objective = self.oracle.objective
        for cb in callbacks:
            if isinstance(cb, _tuner_utils.SaveBestEpoch):
                for logs in earlier.values():
                    if objective.has_value(logs):
                        v = objective.get_value(logs)
                        if v is not None and math.isfinite(v) and objective.better_than(v, cb.best_value):
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
        client = self.oracle
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
        if self._is_worker() and self.heartbeat_interval_s:
            self._heartbeat = _Heartbeat(self.oracle, trial.trial_id, self.heartbeat_interval_s)

    def on_trial_end(self, trial):
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        super().on_trial_end(trial)

    def search(self, *fit_args, **fit_kwargs):
        if _dist_utils.is_chief_oracle() and isinstance(self.oracle, oracles_lib.ControllerOracle):
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            serve_chief(self.oracle)
            return
        return super().search(*fit_args, **fit_kwargs)

    def pareto_front(self):
        """The oracle's (objective, cost) Pareto front (chief / single process only)."""
        return self.oracle.pareto_front()


class _Heartbeat:
    """Worker side: polls the chief for the running trial (``GetTrial``) every ``interval`` s."""

    def __init__(self, client, trial_id, interval):
        self._stop = threading.Event()
        self._client, self._trial_id, self._interval = client, trial_id, float(interval)
        self._thread = threading.Thread(target=self._run, name=f"keras-nas-heartbeat-{trial_id}", daemon=True)
        self._thread.start()

    def _run(self):
        from keras_tuner.src import protos

        req = protos.get_service().GetTrialRequest(trial_id=self._trial_id)
        while not self._stop.wait(self._interval):
            try:
                self._client.stub.GetTrial(req, timeout=max(1.0, 2 * self._interval))
            except Exception:  # chief busy or restarting: the next beat tries again
                pass

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=0.5)


def serve_chief(oracle, poll_s=0.2, expire_every_s=1.0):
    """keras-tuner's chief gRPC server loop, plus: trials of silent workers are handed to others
    (``oracle.expire_stale``), shorter polling (keras-tuner sleeps 20 s once stopping), and the
    server is stopped on exit. Blocks until all trials have ended and every worker has left."""
    import grpc
    from concurrent import futures

    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    ip_addr = os.environ["KERASTUNER_ORACLE_IP"]
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if not server.add_insecure_port(f"{ip_addr}:{port}"):
        raise RuntimeError(f"keras-nas chief: cannot listen on {ip_addr}:{port} (port in use?). "
                           "Set KERASTUNER_ORACLE_PORT to a free port.")
    server.start()
    last_expire = time.monotonic()
    try:
        while True:
            time.sleep(poll_s)
            if time.monotonic() - last_expire >= expire_every_s:
                oracle.expire_stale()
                last_expire = time.monotonic()
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                break
    finally:
        server.stop(grace=1.0)


def _backup_epoch(backup_dir) -> int:
    path = os.path.join(backup_dir, "training_metadata.json")
    try:
        with open(path) as f:
            return int(json.load(f).get("epoch", 0))
    except (OSError, ValueError, TypeError):
        return 0


def _merge_history(history, earlier):
    first = min(history.epoch) if history.epoch else None
    epochs = sorted(e for e in earlier if first is None or e < first)
    if not epochs:
        return
    keys = set(history.history)
    for e in epochs:
        keys |= set(earlier[e])
    merged = {}
    for k in keys:
        merged[k] = [earlier[e].get(k) for e in epochs] + list(history.history.get(k, [None] * len(history.epoch)))
    history.history = merged
    history.epoch = epochs + list(history.epoch)


def _split(kwargs):
    oracle_kw = {k: kwargs.pop(k) for k in _ORACLE_OPTIONS if k in kwargs}
    return oracle_kw, kwargs


class AgingEvolution(_ControllerTuner):
    """Aging-evolution search (Real et al. 2019) with ``kt.RandomSearch``'s arguments.

    Args (beyond ``kt.RandomSearch``'s):
      population_size: P; default ``max_trials // 5`` clipped to [2, 100] (paper: 100).
      sample_size: S; default ``ceil(P / 4)``, at least 2 (paper: 25; NB201: 3 for P=10).
      warm_start: value dicts or genotypes (e.g. ``keras_nas.zoo.AMOEBANET_A``) tried first.
      identity_prob: identity-mutation probability (default 0.05 on cell spaces, else 0).
      report_params: report ``params`` per trial (default: when ``cost_metric == "params"``).
      kinds, reward_transform, cost_metric, cost_fn, cost_target, cost_weight,
      allow_duplicates, max_collisions: see :class:`~keras_nas.controllers.oracles.ControllerOracle`.
      **kwargs: ``keras_tuner.Tuner`` arguments (directory, project_name, overwrite, ...).
    """

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials=10,
        population_size=None,
        sample_size=None,
        seed=None,
        hyperparameters=None,
        tune_new_entries=True,
        allow_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        warm_start=None,
        identity_prob=None,
        report_params=None,
        **kwargs,
    ):
        self.seed = seed
        oracle_kw, kwargs = _split(kwargs)
        oracle = oracles_lib.AgingEvolutionOracle(
            objective=objective,
            max_trials=max_trials,
            population_size=population_size,
            sample_size=sample_size,
            hyperparameters=hyperparameters,
            seed=seed,
            warm_start=warm_start,
            identity_prob=identity_prob,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **oracle_kw,
        )
        super().__init__(oracle, hypermodel, report_params=report_params, **kwargs)


class ReinforceSearch(_ControllerTuner):
    """REINFORCE controller search with ``kt.RandomSearch``'s arguments.

    Keyword arguments that are neither ``keras_tuner.Tuner``'s nor the oracle's options go
    to ``keras_nas.controllers.reinforce.ReinforceController`` (or pass
    ``controller_kwargs={...}``).
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
        report_params=None,
        controller_kwargs=None,
        **kwargs,
    ):
        self.seed = seed
        oracle_kw, kwargs = _split(kwargs)
        controller_kw = dict(controller_kwargs or {})
        controller_kw.update({k: kwargs.pop(k) for k in list(kwargs) if k not in _TUNER_OPTIONS})
        oracle = oracles_lib.ReinforceOracle(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            seed=seed,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **oracle_kw,
            **controller_kw,
        )
        super().__init__(oracle, hypermodel, report_params=report_params, **kwargs)


class RandomArchitectureSearch(_ControllerTuner):
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
        report_params=None,
        **kwargs,
    ):
        self.seed = seed
        oracle_kw, kwargs = _split(kwargs)
        oracle = oracles_lib.RandomOracle(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            seed=seed,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **oracle_kw,
        )
        super().__init__(oracle, hypermodel, report_params=report_params, **kwargs)


class PredictorSearch(_ControllerTuner):
    """Predictor-guided (BANANAS-style) search with ``kt.RandomSearch``'s arguments.

    Args (beyond ``kt.RandomSearch``'s): the
    :class:`~keras_nas.controllers.predictor.PredictorController` options (``num_initial``,
    ``predictor``, ``acquisition``, ``num_candidates``, ``encoding``, ``warm_start`` ...), given as
    keyword arguments or ``controller_kwargs={...}``; ``report_params`` and the oracle options
    (kinds, cost_*, allow_duplicates, ...) as for :class:`AgingEvolution`.
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
        report_params=None,
        controller_kwargs=None,
        **kwargs,
    ):
        self.seed = seed
        oracle_kw, kwargs = _split(kwargs)
        controller_kw = dict(controller_kwargs or {})
        controller_kw.update({k: kwargs.pop(k) for k in list(kwargs) if k not in _TUNER_OPTIONS})
        oracle = oracles_lib.PredictorOracle(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            seed=seed,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **oracle_kw,
            **controller_kw,
        )
        super().__init__(oracle, hypermodel, report_params=report_params, **kwargs)
