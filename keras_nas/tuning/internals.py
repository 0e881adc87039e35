"""The one module that touches keras-tuner's private names.

Why: keras-nas rewrites parts of keras-tuner's bookkeeping (O(1) duplicate and failure
checks, a compact state file, atomic trial files, a chief loop that hands out trials of
dead workers). Those rewrites need keras-tuner internals. Keeping every such name here
means an upgrade of keras-tuner breaks in one place, and ``tests/test_kt_internals.py``
checks that each name in :data:`PRIVATE_NAMES` still exists, so it breaks with one message.

Everything else in keras-nas talks to :class:`WalledOracle` / :class:`WalledTuner` through
public names: the private hooks keras-tuner calls are forwarded to public-named methods
(``_save_trial`` -> ``save_trial``, ``_record_values`` -> ``record_values`` ...), and the
private attributes are exposed as properties (``retry_queue``, ``run_times`` ...).
"""

from __future__ import annotations

import collections
import functools
import os
import threading
import time

import keras_tuner as kt
from keras_tuner.src import backend as _backend
from keras_tuner.src.backend import config as _config
from keras_tuner.src.distribute import utils as _dist_utils
from keras_tuner.src.engine import hyperparameters as _hp_module
from keras_tuner.src.engine import oracle as _oracle_module
from keras_tuner.src.engine import tuner_utils as _tuner_utils

TrialStatus = kt.engine.trial.TrialStatus
Trial = kt.engine.trial.Trial

# Every private keras-tuner name keras-nas uses: (owner, name). Checked by a test.
PRIVATE_NAMES = {
    "keras_tuner.src.engine.oracle": ("LOCKS", "THREADS"),
    "keras_tuner.src.engine.tuner_utils": ("SaveBestEpoch", "validate_trial_results"),
    "keras_tuner.src.distribute.utils": ("has_chief_oracle", "is_chief_oracle"),
    "keras_tuner.src.distribute.oracle_chief": ("OracleServicer", "exit_chief"),
    "keras_tuner.src.protos": ("get_service", "get_service_grpc"),
    "keras_tuner.src.backend.config": ("multi_backend",),
    "keras_tuner.src.backend.io": ("File", "glob", "exists"),
    "keras_tuner.src.engine.hyperparameters": ("Fixed", "Choice", "Boolean", "Int", "Float"),
    # methods keras-tuner calls on the Oracle, overridden below
    "Oracle methods": (
        "_record_values",
        "_retry",
        "_check_consecutive_failures",
        "_save_trial",
        "_compute_values_hash",
        "_get_oracle_fname",
        "_get_trial_dir",
        "_set_project_dir",
        "_project_dir",
    ),
    # attributes of an Oracle instance
    "Oracle attributes": (
        "_run_times",
        "_retry_queue",
        "_seed_state",
        "_tried_so_far",
        "_id_to_hash",
        "_display",
    ),
    "Tuner methods": (
        "_try_build",
        "_build_hypermodel",
        "_build_and_fit_model",
        "_get_tuner_fname",
        "_is_worker",
        "_get_build_config_fname",
    ),
    "Int methods": ("_get_n_values",),
}

SaveBestEpoch = _tuner_utils.SaveBestEpoch
validate_trial_results = _tuner_utils.validate_trial_results
HP = _hp_module


def multi_backend() -> bool:
    return _config.multi_backend()


def has_chief_oracle() -> bool:
    return _dist_utils.has_chief_oracle()


def is_chief_oracle() -> bool:
    return _dist_utils.is_chief_oracle()


def is_worker_process() -> bool:
    """A distributed worker (its oracle is a gRPC client of the chief)."""
    return has_chief_oracle() and not is_chief_oracle()


# -- file access through keras-tuner's backend (local paths and gs:// alike) -------------------
def glob(pattern: str) -> list:
    return list(_backend.io.glob(pattern))


def exists(path: str) -> bool:
    return _backend.io.exists(path)


def read_text(path: str) -> str:
    with _backend.io.File(path, "r") as f:
        text = f.read()
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def read_bytes(path: str) -> bytes:
    with _backend.io.File(path, "rb") as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    with _backend.io.File(path, "wb") as f:
        f.write(data)


def stepped_count(hp) -> int:
    """Number of values of a stepped ``Int``/``Float``."""
    return hp._get_n_values()


# -- locking --------------------------------------------------------------------------------------
def synchronized(func):
    """keras-tuner's ``@synchronized`` with the lock released on exceptions too.

    keras-tuner's own decorator releases only on normal return: an exception in
    ``end_trial`` would leave the lock held and hang every worker. This one shares
    keras-tuner's ``LOCKS``/``THREADS`` tables, so an override that calls a decorated base
    method (or ``exit_chief``) does not deadlock.
    """

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        oracle = args[0]
        name = threading.current_thread().name
        need_acquire = _oracle_module.THREADS[oracle] != name
        if need_acquire:
            _oracle_module.LOCKS[oracle].acquire()
            _oracle_module.THREADS[oracle] = name
        try:
            return func(*args, **kwargs)
        finally:
            if need_acquire:
                _oracle_module.THREADS[oracle] = None
                _oracle_module.LOCKS[oracle].release()

    return wrapped


class WalledOracle(kt.Oracle):
    """``kt.Oracle`` with its private hooks forwarded to public names (see module docstring).

    Subclasses override ``record_values``, ``on_retry``, ``check_failures``,
    ``save_trial`` instead of keras-tuner's private methods.
    """

    # keras-tuner calls these ------------------------------------------------------------
    def _record_values(self, trial):
        return self.record_values(trial)

    def _retry(self, trial):
        if trial.status == TrialStatus.INVALID:
            self.on_retry(trial)
        return super()._retry(trial)

    def _check_consecutive_failures(self):
        return self.check_failures()

    def _save_trial(self, trial):
        return self.save_trial(trial)

    # public defaults: keras-tuner's behaviour --------------------------------------------
    def record_values(self, trial):
        return super()._record_values(trial)

    def on_retry(self, trial):
        """Called when an INVALID trial may be sent for retry."""

    def check_failures(self):
        return super()._check_consecutive_failures()

    def save_trial(self, trial):
        return super()._save_trial(trial)

    # private attributes as properties ----------------------------------------------------
    @property
    def retry_queue(self) -> list:
        return self._retry_queue

    @property
    def run_times(self):
        return self._run_times

    @property
    def seed_state(self):
        return self._seed_state

    @property
    def display(self):
        return self._display

    @property
    def project_dir(self) -> str:
        return self._project_dir

    @property
    def oracle_file(self) -> str:
        return self._get_oracle_fname()

    def trial_dir(self, trial_id) -> str:
        return self._get_trial_dir(trial_id)

    def set_project_dir(self, directory, project_name) -> None:
        self._set_project_dir(directory, project_name)

    def keep_seed(self, seed) -> None:
        """keras-tuner replaces ``seed=0`` by a random seed (``seed or randint``): keep the user's."""
        if seed is not None:
            self.seed = seed
            self._seed_state = seed

    def values_hash(self, values) -> str:
        return self._compute_values_hash(values)

    def use_history_index(self, tried_so_far, id_to_hash) -> None:
        """Replace keras-tuner's O(history) duplicate index (read with ``in``)."""
        self._tried_so_far = tried_so_far
        self._id_to_hash = id_to_hash

    def new_id_to_hash(self):
        return collections.defaultdict(lambda: None)


class WalledTuner(kt.Tuner):
    """``kt.Tuner`` with its private hooks forwarded to public names.

    Subclasses override ``build_model``, ``build_hypermodel``, ``build_and_fit`` instead of
    ``_try_build``, ``_build_hypermodel``, ``_build_and_fit_model``.
    """

    def _try_build(self, hp):
        return self.build_model(hp)

    def _build_hypermodel(self, hp):
        return self.build_hypermodel(hp)

    def _build_and_fit_model(self, trial, *args, **kwargs):
        return self.build_and_fit(trial, *args, **kwargs)

    def build_model(self, hp):
        return super()._try_build(hp)

    def build_hypermodel(self, hp):
        return super()._build_hypermodel(hp)

    def build_and_fit(self, trial, *args, **kwargs):
        return super()._build_and_fit_model(trial, *args, **kwargs)

    @property
    def is_worker(self) -> bool:
        return self._is_worker()

    @property
    def tuner_file(self) -> str:
        return self._get_tuner_fname()

    def build_config_file(self, trial_id) -> str:
        return self._get_build_config_fname(trial_id)


def ping_trial(client, trial_id, timeout):
    """One ``GetTrial`` RPC from a worker (a heartbeat the chief sees)."""
    from keras_tuner.src import protos

    req = protos.get_service().GetTrialRequest(trial_id=trial_id)
    return client.stub.GetTrial(req, timeout=timeout)


def serve_chief(oracle, poll_s=0.2, expire_every_s=1.0):
    """keras-tuner's chief gRPC server loop, plus: trials of silent workers are handed to others
    (``oracle.expire_stale``), shorter polling (keras-tuner sleeps 20 s once stopping), and the
    server is stopped on exit. Blocks until all trials have ended and every worker has left."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    ip_addr = os.environ["KERASTUNER_ORACLE_IP"]
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if not server.add_insecure_port(f"{ip_addr}:{port}"):
        raise RuntimeError(
            f"keras-nas chief: cannot listen on {ip_addr}:{port} (port in use?). "
            "Set KERASTUNER_ORACLE_PORT to a free port."
        )
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


class AtomicSaveBestEpoch(_tuner_utils.SaveBestEpoch):
    """keras-tuner's best-epoch checkpoint, written to a temporary file and renamed: a kill or a
    full disk during the write leaves the previous checkpoint, never a torn one."""

    @classmethod
    def replacing(cls, cb):
        new = cls(cb.objective, cb.filepath)
        new.best_value = cb.best_value
        return new

    def _save_model(self):
        strategy = getattr(self.model, "distribute_strategy", None)
        if type(strategy).__name__.startswith("MultiWorker") or "://" in str(self.filepath):
            return super()._save_model()
        tmp = f"{self.filepath[: -len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"
        try:
            self.model.save_weights(tmp)
            os.replace(tmp, self.filepath)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def set_project_dir(oracle, directory, project_name) -> None:
    """Point any keras-tuner Oracle (keras-nas's or not) at a project directory without a Tuner."""
    oracle._set_project_dir(directory, project_name)


class ChiefGone(kt.errors.FatalError):
    """No chief answered the worker within ``chief_timeout_s``: it finished (before this worker
    connected, or while the worker was paused or cut off), was restarted elsewhere, or never
    started. The worker exits instead of waiting in keras-tuner's one-hour gRPC timeout."""


# Pauses between a worker's attempts to reach a chief that is not listening (first, longest).
# gRPC's default starts at 1 s and grows to 120 s: a worker that started before its chief could
# sleep through the chief's whole (short) search, then wait for a chief that has gone.
RECONNECT_BACKOFF_MS = (100, 500)


class _FailFastStub:
    """Wraps the worker's gRPC stub: every call waits at most ``timeout`` s for the chief (from
    the first call on: long enough for a chief that starts after its workers, or restarts, to
    come up), then raises :class:`ChiefGone`. keras-tuner waits an hour (``wait_for_ready``), so
    a worker whose first call came after the chief had finished hung for an hour."""

    def __init__(self, stub, timeout, target=""):
        self._stub, self._timeout, self._target = stub, float(timeout), target
        self.connected = False  # the chief has answered once

    def __getattr__(self, name):
        import grpc

        fn = getattr(self._stub, name)

        def call(request, **kw):
            kw["timeout"] = min(float(kw.get("timeout") or self._timeout), self._timeout)
            try:
                out = fn(request, **kw)
            except grpc.RpcError as e:
                if e.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    raise
                if self.connected:
                    raise ChiefGone(
                        f"keras-nas worker: the chief no longer answers ({e.code().name}); the search "
                        "has finished or moved, so this worker exits."
                    ) from None
                raise ChiefGone(
                    f"keras-nas worker: no chief answered at {self._target} within "
                    f"chief_timeout_s={self._timeout:g} s ({e.code().name}): the search has finished "
                    "before this worker connected, or its chief is not running (start the chief, or "
                    "raise chief_timeout_s if it starts later than its workers); this worker exits."
                ) from None
            self.connected = True
            return out

        return call


def fail_fast_client(client, timeout: float):
    """Give an ``OracleClient`` a channel that retries a missing chief often
    (:data:`RECONNECT_BACKOFF_MS`) and calls that give up after ``timeout`` s (see :class:`_FailFastStub`)."""
    import grpc
    from keras_tuner.src import protos

    target = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    first, longest = RECONNECT_BACKOFF_MS
    channel = grpc.insecure_channel(
        target,
        options=[
            ("grpc.initial_reconnect_backoff_ms", first),
            ("grpc.max_reconnect_backoff_ms", longest),
        ],
    )
    client.stub = _FailFastStub(protos.get_service_grpc().OracleStub(channel), timeout, target)
    return client
