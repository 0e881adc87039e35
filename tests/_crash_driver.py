"""Search driver for the crash/resume tests (run as a subprocess and SIGKILLed, or in-process).

    python tests/_crash_driver.py MODE PROJECT_DIR EVENT_LOG RESULT_JSON [MAX_TRIALS]

MODE: ``evolution`` / ``reinforce`` (keras-nas tuner, deterministic evaluator: no model) or
``keras`` (a tiny real Keras model fit for a few epochs: trial dirs, checkpoints, backups).
Every run uses ``overwrite=False``, so running the same command again resumes.

EVENT_LOG gets one line per event, appended with a single ``write`` (survives SIGKILL):
``start <tid>`` when run_trial begins, ``recorded <tid>`` after the oracle has recorded the
end, ``epoch <tid> <k>`` after epoch k (keras mode, after the epoch's backup was written).

``KNAS_CRASH_REPLACE=<basename>:<n>``: SIGKILL this process at the n-th ``os.replace`` onto a
file with that basename, after the temporary file was written and before the rename (a kill
while state is being written). ``KNAS_TRIAL_SLEEP`` seconds per trial (default 0.05). ``KNAS_FSYNC=1``: fsync state files.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time

_crash = os.environ.get("KNAS_CRASH_REPLACE")
if _crash and __name__ == "__main__":
    _name, _n = _crash.rsplit(":", 1)
    _real_replace = os.replace
    _count = [0]

    def _replace(src, dst, *a, **k):
        if os.path.basename(str(dst)) == _name:
            _count[0] += 1
            if _count[0] == int(_n):
                os.kill(os.getpid(), signal.SIGKILL)
        return _real_replace(src, dst, *a, **k)

    os.replace = _replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log_event(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def score_of(values) -> float:
    """Deterministic function of the values (no Python hash randomisation)."""
    h = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).digest()
    return int.from_bytes(h[:4], "big") / 2**32


def run(mode, project_dir, event_log, result_json, max_trials=12, sleep=None):
    import keras_tuner as kt

    from keras_nas.space import NASNetCellSpace
    from keras_nas.tuning import tuners

    sleep = float(os.environ.get("KNAS_TRIAL_SLEEP", "0.05")) if sleep is None else sleep
    cells = NASNetCellSpace(num_blocks=2)
    hp = kt.HyperParameters()
    cells.register(hp)
    kinds = {d.name: d.kind for d in cells.decisions}
    common = dict(
        objective=kt.Objective("score", "max"),
        max_trials=max_trials,
        hyperparameters=hp,
        seed=3,
        directory=os.path.dirname(project_dir),
        project_name=os.path.basename(project_dir),
        overwrite=False,
        kinds=kinds,
        # SIGKILL leaves the page cache intact: rename atomicity is what is under test;
        # fsync (machine crashes) only slows the test down. KNAS_FSYNC=1 turns it on.
        fsync=os.environ.get("KNAS_FSYNC", "0") == "1",
    )

    if mode == "keras":
        import keras
        import numpy as np

        common["objective"] = kt.Objective("val_loss", "min")

        class EpochEvents(keras.callbacks.Callback):
            def __init__(self, tid):
                super().__init__()
                self.tid = tid

            def on_epoch_end(self, epoch, logs=None):
                log_event(event_log, f"epoch {self.tid} {epoch}")
                time.sleep(sleep)

        class Search(tuners.AgingEvolution):
            def run_trial(self, trial, *a, **k):
                log_event(event_log, f"start {trial.trial_id}")
                k["callbacks"] = list(k.get("callbacks") or []) + [EpochEvents(trial.trial_id)]
                return super().run_trial(trial, *a, **k)

            def on_trial_end(self, trial):
                super().on_trial_end(trial)
                log_event(event_log, f"recorded {trial.trial_id}")

        def build(hp):
            units = 4 + 4 * hp.get("normal/b0_in0")
            model = keras.Sequential(
                [
                    keras.Input((8,)),
                    keras.layers.Dense(units, activation="relu"),
                    keras.layers.Dense(1),
                ]
            )
            model.compile("adam", "mse")
            return model

        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 8)).astype("float32")
        y = x.sum(axis=1, keepdims=True)
        tuner = Search(build, population_size=3, sample_size=2, **common)
        tuner.search(x, y, epochs=4, batch_size=16, validation_data=(x[:16], y[:16]), verbose=0)
    else:
        base = tuners.AgingEvolution if mode == "evolution" else tuners.ReinforceSearch

        class Search(base):
            def run_trial(self, trial, *a, **k):
                log_event(event_log, f"start {trial.trial_id}")
                time.sleep(sleep)
                return {"score": score_of(trial.hyperparameters.values)}

            def on_trial_end(self, trial):
                super().on_trial_end(trial)
                log_event(event_log, f"recorded {trial.trial_id}")

        # snapshot_every=2: the REINFORCE npz is rewritten every 2nd update (journal in between)
        extra = (
            {"population_size": 4, "sample_size": 2}
            if mode == "evolution"
            else {"units": 8, "batch_size": 2, "snapshot_every": 2}
        )
        tuner = Search(**common, **extra)
        tuner.search(verbose=0)

    o = tuner.oracle
    result = {
        "proposals": [[tid, o.trials[tid].hyperparameters.values] for tid in sorted(o.trials)],
        "statuses": {tid: t.status for tid, t in o.trials.items()},
        "scores": {tid: t.score for tid, t in o.trials.items()},
        "end_order": list(o.end_order),
        "controller": o.controller.get_state(),
        "pending": len(o.pending_values()),
    }
    arrays = o.controller.get_arrays()
    if arrays is not None:
        import numpy as np

        result["arrays"] = {k: np.asarray(v).tolist() for k, v in sorted(arrays.items())}
    with open(result_json, "w") as f:
        json.dump(result, f)
    return result


if __name__ == "__main__":
    a = sys.argv[1:]
    run(a[0], a[1], a[2], a[3], int(a[4]) if len(a) > 4 else 12)
