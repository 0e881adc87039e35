"""Search state on disk: compact ``oracle.json``, atomic files, history rebuild, crash recovery.

Why a module of its own: keras-tuner rewrites O(history) lists into ``oracle.json`` on every
save and writes files in place, so a long search slows down and a kill can tear a file.
:class:`PersistentOracle` keeps ``oracle.json`` O(population + running trials) (the history
is rebuilt from the ``trial_*/trial.json`` files on reload), writes every file atomically
(tmp file, fsync, ``os.replace``), reports unreadable or damaged files as
:class:`StateFileError` naming the file, field and how to recover, and on reload finishes
or re-queues the trials a crash interrupted. How files are written and read, and the stores
(:class:`AtomicFiles`, :class:`NoFiles`), are :mod:`keras_nas.tuning.state_files` (re-exported
here).

Controllers with large numeric state expose ``get_arrays()``/``set_arrays()``; those arrays
go to ``oracle_arrays.npz`` beside ``oracle.json`` (the previous one kept as
``oracle_arrays.prev.npz``), stamped with the save step that wrote them; ``oracle.json`` names
that step (``arrays_step``). The npz is rewritten only when the arrays changed (a controller may
say so cheaply with ``arrays_version()``; otherwise their bytes are compared), since
keras-tuner saves the oracle two or three times per trial and REINFORCE's weights change at
most once per trial (once per ``batch_size`` trials).
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import warnings
from datetime import datetime
from typing import Optional

import numpy as np

from keras_nas.tuning import internals
from keras_nas.tuning.errors import StateFileError
from keras_nas.tuning.internals import Trial, TrialStatus
from keras_nas.tuning.state_files import (  # noqa: F401 (re-exported: callers read them from here)
    AtomicFiles,
    NoFiles,
    exists,
    is_local,
    load_npz,
    read_json,
    write_atomic,
    write_json_atomic,
)

STATE_KEY = "keras_nas"
STATE_FORMAT = "keras-nas/oracle-state"
STATE_VERSION = 1
ARRAYS_FNAME = "oracle_arrays.npz"
ARRAYS_PREV_FNAME = "oracle_arrays.prev.npz"
STEP_KEY = "__keras_nas_save_step__"
TRIAL_EXTRA_KEY = "keras_nas"  # extra bookkeeping inside each trial.json (keras-tuner ignores it)
_STATUSES = {s for s in vars(TrialStatus).values() if isinstance(s, str) and s.isupper()}


def trial_index(trial_id) -> Optional[int]:
    t = str(trial_id)
    return int(t) if t.isdigit() else None


def _algorithm(controller_class: str) -> str:
    """``AgingEvolutionController`` -> ``AgingEvolution`` (state files before 0.2 saved the short name)."""
    return (
        controller_class[: -len("Controller")]
        if controller_class.endswith("Controller")
        else controller_class
    )


def _expect(cond, error):
    if not cond:
        raise error


class PersistentOracle(internals.WalledOracle):
    """keras-tuner Oracle with compact, atomic, validated state files (see module docstring).

    Subclasses provide ``self.controller`` and fill ``state_extra()`` / ``load_extra()``.
    """

    def init_state(self, store: "AtomicFiles"):
        self.store = store
        self._save_step = 0
        self._loaded_arrays_step = None
        self._suppress_save = False
        self._hash_counts: collections.Counter = collections.Counter()
        self._hash_of: dict = {}
        self.use_history_index(self._hash_counts, self.new_id_to_hash())
        self._end_seq: dict = {}  # trial_id -> position in end_order
        self._retried: set = set()  # trials whose run count deviates from the default
        self._reported: dict = {}  # trial_id -> run count when it last reported metrics
        self._last_written = None
        self._trial_extras: dict = {}
        self._reset_arrays_tracking()

    def _reset_arrays_tracking(self):
        self._arrays_step = None  # save step stamped on the newest npz written (or loaded)
        self._arrays_key = None  # arrays_version() or content digest of those arrays
        self._arrays_file = None  # "cur" / "prev": which file holds them
        self._committed_file = None  # which file holds the arrays the oracle.json on disk names

    # -- duplicate index (flat cost per trial) -------------------------------------------------
    def record_values(self, trial):
        hps = trial.hyperparameters
        hps.ensure_active_values()
        new = self.values_hash(hps.values)
        old = self._hash_of.get(trial.trial_id)
        if old != new:
            if old is not None:
                self._hash_counts[old] -= 1
                if self._hash_counts[old] <= 0:
                    del self._hash_counts[old]
            self._hash_counts[new] += 1
            self._hash_of[trial.trial_id] = new

    def is_duplicate(self, values) -> bool:
        return self.values_hash(values) in self._hash_counts

    def on_retry(self, trial):
        self._retried.add(trial.trial_id)

    def save_trial(self, trial):
        tid = trial.trial_id
        state = trial.get_state()
        state[TRIAL_EXTRA_KEY] = {
            "run_times": int(self.run_times.get(tid, 0)),
            "end_seq": self._end_seq.get(tid),
            "reported": self._reported.get(tid),
        }
        self.store.write(
            os.path.join(self.trial_dir(tid), "trial.json"), json.dumps(state).encode("utf-8")
        )

    # -- state ---------------------------------------------------------------------------------
    def state_extra(self) -> dict:
        """keras-nas entries of ``oracle.json`` besides the controller (subclasses extend)."""
        return {}

    def load_extra(self, ks: dict) -> None:
        """Restore what :meth:`state_extra` wrote (subclasses extend)."""

    def get_state(self):
        # keras-tuner's get_state minus its O(history) entries (rebuilt from the trial files
        # by set_state): oracle.json stays O(population + running trials).
        ongoing = {tuner_id: t.trial_id for tuner_id, t in self.ongoing_trials.items()}
        live = set(ongoing.values())
        disp = self.display
        odd_runs = set(self._retried) | live | set(self.retry_queue)
        state = {
            "ongoing_trials": ongoing,
            "hyperparameters": self.hyperparameters.get_config(),
            "run_times": {tid: int(self.run_times.get(tid, 0)) for tid in sorted(odd_runs)},
            "retry_queue": list(self.retry_queue),
            "seed": self.seed,
            "seed_state": self.seed_state,
            "display": {
                "search_start": disp.search_start.isoformat()
                if disp.search_start is not None
                else None,
                "trial_start": {
                    k: disp.trial_start[k].isoformat()
                    for k in sorted(live)
                    if k in disp.trial_start
                },
                "trial_number": {
                    k: disp.trial_number[k] for k in sorted(live) if k in disp.trial_number
                },
            },
        }
        state[STATE_KEY] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "controller_class": type(self.controller).__name__,
            "controller": self.controller.get_state(),
            "step": self._save_step,
            "has_arrays": self._controller_has_arrays(),
            "compact": {"num_trials": len(self.trials), "end_count": len(self.end_order)},
            **self.state_extra(),
        }
        return state

    def state_error(self, problem: str) -> StateFileError:
        return StateFileError(
            f"Cannot resume the search in {self.project_dir}: {problem}. To recover, restore the "
            "project directory from a backup, or start afresh with overwrite=True or a new "
            "project_name (this keeps nothing of the old run)."
        )

    def _field_error(self, field, value, expected) -> StateFileError:
        return self.state_error(
            f"{self.oracle_file} field {field!r} must be {expected}, got {value!r:.80}"
        )

    def _check_state(self, state):
        """Reject wrong types in the fields keras-nas reads (nothing is rewritten)."""
        e = self._field_error
        _expect(
            isinstance(state.get("ongoing_trials", {}), dict),
            e("ongoing_trials", state.get("ongoing_trials"), "an object"),
        )
        _expect(
            isinstance(state.get("retry_queue", []), list)
            and all(isinstance(t, str) for t in state.get("retry_queue", [])),
            e("retry_queue", state.get("retry_queue"), "a list of trial id strings"),
        )
        rq = [t for t in state.get("retry_queue", []) if t not in self.trials]
        _expect(not rq, e("retry_queue", rq, "ids of existing trials"))
        rt = state.get("run_times", {})
        _expect(
            isinstance(rt, dict)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in rt.values()),
            e("run_times", rt, "an object of non-negative ints"),
        )
        ks = state.get(STATE_KEY)
        if ks is None:
            return
        _expect(isinstance(ks, dict), e(STATE_KEY, ks, "an object"))
        ctrl = ks.get("controller")
        _expect(
            isinstance(ctrl, dict) and ctrl,
            e(f"{STATE_KEY}.controller", ctrl, "the controller's state object"),
        )
        step = ks.get("step", 0)
        _expect(
            isinstance(step, int) and not isinstance(step, bool) and step >= 0,
            e(f"{STATE_KEY}.step", step, "an int >= 0"),
        )
        pending = ks.get("pending", {})
        _expect(
            isinstance(pending, dict) and all(isinstance(v, dict) for v in pending.values()),
            e(f"{STATE_KEY}.pending", pending, "an object of value objects"),
        )
        compact = ks.get("compact")
        _expect(
            compact is None or isinstance(compact, dict),
            e(f"{STATE_KEY}.compact", compact, "an object"),
        )

    def _check_trial_file(self, fname, tstate):
        hint = self._recover_hint_trial(fname)
        if not isinstance(tstate, dict):
            raise StateFileError(f"{fname} does not hold a JSON object. {hint}")
        status = tstate.get("status")
        if status is None or "trial_id" not in tstate:
            raise StateFileError(
                f"{fname} is not a keras-tuner trial file (no 'status' or 'trial_id' field). {hint}"
            )
        if status not in _STATUSES:
            raise StateFileError(
                f"{fname} field 'status' must be one of {sorted(_STATUSES)}, got {status!r:.40}. "
                f"{hint}"
            )
        extra = tstate.get(TRIAL_EXTRA_KEY)
        if extra is not None and not isinstance(extra, dict):
            raise StateFileError(
                f"{fname} field {TRIAL_EXTRA_KEY!r} must be an object, got {extra!r:.40}. {hint}"
            )
        for k in ("run_times", "end_seq", "reported"):
            v = (extra or {}).get(k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise StateFileError(
                    f"{fname} field '{TRIAL_EXTRA_KEY}.{k}' must be an int >= 0 or null, "
                    f"got {v!r:.40}. {hint}"
                )
        if extra and extra.get("end_seq") is not None and status == TrialStatus.RUNNING:
            raise StateFileError(
                f"{fname}: the trial ended (end_seq {extra['end_seq']}) but its 'status' is "
                f"RUNNING; a finished trial has status COMPLETED, FAILED or INVALID. {hint}"
            )

    def set_state(self, state):
        if not isinstance(state, dict):
            raise self.state_error(f"{self.oracle_file} does not hold a JSON object")
        self._check_state(state)
        ks = state.get(STATE_KEY)
        compact = ks.get("compact") if isinstance(ks, dict) else None
        full = dict(state)
        if compact is not None:
            full.update(self._rebuild_history(compact, state))
        try:
            super().set_state(full)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise self.state_error(
                f"{self.oracle_file} lacks or garbles keras-tuner's entry {e}"
            ) from e
        self._after_history_loaded()
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
        saved_cls = _algorithm(ks.get("controller_class") or "")
        if saved_cls and saved_cls != _algorithm(type(self.controller).__name__):
            raise RuntimeError(
                f"The project was searched with the {saved_cls} controller but this oracle uses "
                f"{_algorithm(type(self.controller).__name__)}; use the same search class or overwrite=True / a new "
                "project_name."
            )
        try:
            self.controller.set_state(ks["controller"])
            self.load_extra(ks)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise self.state_error(
                f"{self.oracle_file} field '{STATE_KEY}' is damaged ({type(e).__name__}: {e})"
            ) from e
        self._save_step = int(ks.get("step", 0))
        arrays_step = ks.get(
            "arrays_step", self._save_step
        )  # files before 0.3: the npz of every save
        if ks.get("has_arrays") and not (
            isinstance(arrays_step, int)
            and not isinstance(arrays_step, bool)
            and 0 <= arrays_step <= self._save_step
        ):
            raise self._field_error(
                f"{STATE_KEY}.arrays_step", arrays_step, f"an int in 0..{self._save_step}"
            )
        self._loaded_arrays_step = arrays_step if ks.get("has_arrays") else None

    def _rebuild_history(self, compact, state) -> dict:
        """keras-tuner's O(history) state entries from the trial files (compact oracle.json)."""
        try:
            n, end_count = int(compact["num_trials"]), int(compact["end_count"])
        except (KeyError, TypeError, ValueError) as e:
            raise self.state_error(f"{self.oracle_file} has a garbled 'compact' entry ({e})") from e
        extras = self._trial_extras
        known = {}
        for tid in list(self.trials):
            idx = trial_index(tid)
            if idx is not None and idx >= n:
                # Written by a create_trial interrupted before oracle.json was saved: the trial
                # never ran; the id is proposed again.
                del self.trials[tid]
                extras.pop(tid, None)
            elif idx is not None:
                known[idx] = tid
        missing = [i for i in range(n) if i not in known]
        if missing:
            raise self.state_error(
                f"{self.oracle_file} records {n} trials but the trial files of trial number(s) "
                f"{missing[:5]} (trial_<id>/trial.json) are missing"
            )
        ends = []
        for tid in self.trials:
            seq = (extras.get(tid) or {}).get("end_seq")
            if seq is not None and int(seq) < end_count:
                ends.append((int(seq), tid))
        ends.sort()
        if [s for s, _ in ends] != list(range(end_count)):
            raise self.state_error(
                f"{self.oracle_file} records {end_count} finished trials but the trial files hold "
                f"{len(ends)} (trial.json files missing, or from another run)"
            )
        end_order = [tid for _, tid in ends]
        run_times = {tid: 1 for tid in end_order}
        run_times.update({str(k): int(v) for k, v in (state.get("run_times") or {}).items()})
        return {
            "start_order": sorted(
                self.trials, key=lambda t: (trial_index(t) is None, trial_index(t) or 0, t)
            ),
            "end_order": end_order,
            "run_times": run_times,
            "tried_so_far": [],
            "id_to_hash": {},
        }

    def _after_history_loaded(self):
        self._hash_counts = collections.Counter()
        self._hash_of = {}
        self.use_history_index(self._hash_counts, self.new_id_to_hash())
        for tid, t in self.trials.items():
            h = self.values_hash(t.hyperparameters.values)
            self._hash_of[tid] = h
            self._hash_counts[h] += 1
        self._end_seq = {tid: i for i, tid in enumerate(self.end_order)}
        self._retried = {
            tid for tid, r in self.run_times.items() if r != (1 if tid in self._end_seq else 0)
        }
        self._retried |= set(self.retry_queue)
        self.history_loaded()
        self._reported = {}
        self._last_written = None

    def history_loaded(self):
        """Hook: rebuild derived counters from ``self.trials`` / ``self.end_order`` after a reload."""

    # -- files -----------------------------------------------------------------------------------
    def _arrays_paths(self):
        d = os.path.dirname(self.oracle_file)
        return os.path.join(d, ARRAYS_FNAME), os.path.join(d, ARRAYS_PREV_FNAME)

    def _controller_has_arrays(self) -> bool:
        if getattr(self.controller, "arrays_version", None) is not None:
            return True
        return self.controller.get_arrays() is not None

    def _arrays_to_write(self):
        """(arrays or None, key): the controller's arrays when they differ from the last ones
        written, else None; ``key`` identifies their content (version or digest)."""
        version_fn = getattr(self.controller, "arrays_version", None)
        if version_fn is not None:
            key = ("version", version_fn())
            if key == self._arrays_key and self._arrays_step is not None:
                return None, key
        raw = self.controller.get_arrays()
        if raw is None:
            return None, None
        arrays = {str(k): np.ascontiguousarray(v) for k, v in raw.items()}
        if STEP_KEY in arrays:
            raise ValueError(f"Controller array name {STEP_KEY!r} is reserved.")
        if version_fn is None:
            digest = hashlib.sha1()
            for k in sorted(arrays):
                digest.update(k.encode())
                digest.update(str(arrays[k].dtype).encode() + str(arrays[k].shape).encode())
                digest.update(arrays[k].tobytes())
            key = ("digest", digest.hexdigest())
        if key == self._arrays_key and self._arrays_step is not None:
            return None, key
        return arrays, key

    def save(self):
        if self._suppress_save:
            return
        state = self.get_state()
        arrays, key = self._arrays_to_write()
        ks = state[STATE_KEY]
        ks["arrays_step"] = None if arrays is not None else self._arrays_step
        # Unchanged since the last write (keras-tuner saves the oracle again from Tuner.save): skip.
        marker = (json.dumps(state, sort_keys=True), key)
        if marker == self._last_written:
            return
        self._save_step += 1
        ks["step"] = self._save_step
        if arrays is not None:
            arrays[STEP_KEY] = np.asarray(self._save_step, dtype=np.int64)
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            cur, prev = self._arrays_paths()
            # Keep the arrays the oracle.json on disk names as the previous file; if they already
            # are the previous file (cur is from a save whose json never landed), overwrite cur.
            if self._committed_file != "prev":
                self.store.rotate(cur, prev)
                if self._committed_file == "cur":
                    self._committed_file = "prev"
            self.store.write(cur, buf.getvalue())
            self._arrays_step, self._arrays_key, self._arrays_file = self._save_step, key, "cur"
        ks["arrays_step"] = self._arrays_step
        self.store.write(self.oracle_file, json.dumps(state).encode("utf-8"))
        self._committed_file = self._arrays_file
        self._last_written = marker

    def reload(self):
        """Reload trials and oracle state; unreadable or damaged files raise :class:`StateFileError`
        naming the file; running trials interrupted by a crash are finished from their trial files
        when they had ended or reported, else sent to run again."""
        self._loaded_arrays_step = None
        self._trial_extras = {}
        self._reset_arrays_tracking()
        pattern = os.path.join(self.project_dir, "trial_*", "trial.json")
        for fname in sorted(internals.glob(pattern)):
            tstate = read_json(fname, "trial file", self._recover_hint_trial(fname))
            self._check_trial_file(fname, tstate)
            try:
                trial = Trial.from_state(tstate)
            except Exception as e:
                raise StateFileError(
                    f"{fname} is not a keras-tuner trial file ({type(e).__name__}: {e}). "
                    + self._recover_hint_trial(fname)
                ) from e
            self.trials[trial.trial_id] = trial
            self._trial_extras[trial.trial_id] = tstate.get(TRIAL_EXTRA_KEY) or {}
        ostate = read_json(
            self.oracle_file,
            "oracle state file",
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
        cur, prev = self._arrays_paths()
        found = []
        for path in (cur, prev):
            if not exists(path):
                continue
            try:
                arrays = load_npz(path)
            except Exception as e:  # truncated / not an npz
                found.append(f"{path} (unreadable: {type(e).__name__}: {e})")
                continue
            file_step = int(arrays.pop(STEP_KEY, -1))
            if file_step == step:
                self.controller.set_arrays(arrays)
                self._committed_file = "cur" if path == cur else "prev"
                return
            found.append(f"{path} (step {file_step})")
        raise StateFileError(
            f"Controller arrays do not match {self.oracle_file} (save step {step}): "
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
        for _tuner_id, trial in sorted(
            self.ongoing_trials.items(), key=lambda kv: str(kv[1].trial_id)
        ):
            tid = trial.trial_id
            ex = self._trial_extras.get(tid) or {}
            runs = int(self.run_times.get(tid, 0))
            if int(ex.get("run_times") or 0) > runs and trial.status != TrialStatus.RUNNING:
                replay.append((trial, trial.status))
            elif (
                ex.get("reported") is not None
                and int(ex["reported"]) == runs
                and trial.status == TrialStatus.RUNNING
                and self.has_objective(trial)
            ):
                replay.append((trial, TrialStatus.COMPLETED))
            else:
                rerun.append(tid)
        self.ongoing_trials = {}
        for tid in rerun:
            if tid not in self.retry_queue:
                self.retry_queue.append(tid)
        now = None
        for trial, status in replay:
            now = now or datetime.now()
            self.display.trial_start.setdefault(trial.trial_id, now)
            self.display.trial_number.setdefault(trial.trial_id, len(self.trials))
            if self.display.search_start is None:
                self.display.search_start = now
            trial.status = status
            self.end_trial(trial)

    def has_objective(self, trial) -> bool:
        obj = self.objective
        names = list(obj.name_to_direction) if hasattr(obj, "name_to_direction") else [obj.name]
        return all(trial.metrics.exists(n) for n in names)
