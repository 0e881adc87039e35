"""Torn or empty files left by a kill or a full disk never cost a finished trial (issue #10.5-7).

Each case failed before the fix: Keras's BackupAndRestore raised on a torn backup (the trial
then failed for good), keras-tuner's best-epoch checkpoint was written in place, an empty
trial_costs.json or run.json stopped every later search, and training randomness depended
on what the process had run before.
"""

import errno
import json
import os

import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")

import keras  # noqa: E402

from keras_nas.tuning import callbacks as cb_lib  # noqa: E402
from keras_nas.tuning import internals  # noqa: E402
from keras_nas.tuning.tuners import RandomArchitectureSearch, trial_seed  # noqa: E402


def _model():
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    m.compile("sgd", "mse")
    return m


def _xy():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")


def test_torn_backup_restarts_the_trial_from_epoch_0(tmp_path):
    backup = tmp_path / "backup" / "execution0"
    backup.mkdir(parents=True)
    (backup / "epoch2.weights.h5").write_bytes(b"\x89HDF\r\n torn")
    (backup / cb_lib.METADATA).write_text(
        json.dumps({"epoch": 2, "batch": 0, "weights": "epoch2.weights.h5"})
    )
    x, y = _xy()
    with pytest.warns(UserWarning, match="unreadable.*restarts from epoch 0"):
        hist = _model().fit(x, y, epochs=3, verbose=0, callbacks=[cb_lib.TrialBackup(str(backup))])
    assert hist.epoch == [0, 1, 2]
    assert not (tmp_path / "backup").exists()  # removed once the fit ended


def test_backup_commit_point_is_the_metadata_file(tmp_path):
    backup = tmp_path / "b"
    x, y = _xy()

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt  # a kill after epoch 2's backup

    with pytest.raises(KeyboardInterrupt):
        _model().fit(x, y, epochs=4, verbose=0, callbacks=[cb_lib.TrialBackup(str(backup)), Stop()])
    meta = cb_lib.read_backup(str(backup))
    assert meta == {"epoch": 2, "weights": "epoch2.weights.h5"}
    assert sorted(os.listdir(backup)) == sorted(
        [cb_lib.METADATA, "epoch2.weights.h5"]
    )  # older weights deleted
    hist = _model().fit(x, y, epochs=4, verbose=0, callbacks=[cb_lib.TrialBackup(str(backup))])
    assert hist.epoch == [2, 3]  # resumed after the committed epoch


def test_best_epoch_checkpoint_survives_a_failed_write(tmp_path):
    path = str(tmp_path / "checkpoint.weights.h5")
    model = _model()
    cb = internals.AtomicSaveBestEpoch(kt.Objective("loss", "min"), path)
    cb.set_model(model)
    cb.on_epoch_end(0, {"loss": 1.0})
    good = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1 for w in good])

    def full_disk(filepath, **kw):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF torn")
        raise OSError(errno.ENOSPC, "No space left on device")

    model.save_weights = full_disk
    with pytest.raises(OSError):
        cb.on_epoch_end(1, {"loss": 0.5})
    fresh = _model()
    fresh.load_weights(path)  # still the epoch-0 checkpoint, readable
    for a, b in zip(fresh.get_weights(), good):
        np.testing.assert_array_equal(a, b)
    assert [f for f in os.listdir(tmp_path) if "tmp" in f] == []


def test_empty_trial_costs_and_run_json_do_not_block_a_search(tmp_path):
    from keras_nas import reporting
    from keras_nas.jobs import search

    (tmp_path / "trial_costs.json").write_text("")
    lines = []
    rep = reporting.SearchReporter(
        str(tmp_path), str, max_trials=1, log=lines.append, tensorboard=False
    )
    assert rep.extra == {} and "trial_costs.json is unreadable" in lines[0]
    (tmp_path / "run.json").write_text("")
    cfg = search.SearchConfig(output_dir=str(tmp_path))
    with pytest.warns(UserWarning, match="run.json is unreadable"):
        search.check_resume(cfg)  # a report, not state: the search resumes


def test_each_trial_is_seeded_from_the_search_seed_and_its_id(tmp_path):
    """A resumed search trains each trial as the uninterrupted run did (deterministic ops)."""
    x, y = _xy()

    def build(hp):
        m = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dropout(hp.Choice("rate", [0.1, 0.2, 0.3, 0.4])),
                keras.layers.Dense(2),
            ]
        )
        m.compile("sgd", "mse")
        return m

    def losses(directory, steps):
        out = None
        for n in steps:  # a fresh tuner per step, as after a kill; other work in between
            keras.utils.set_random_seed(1000 + n)
            tuner = RandomArchitectureSearch(
                build,
                objective="loss",
                max_trials=n,
                seed=4,
                directory=directory,
                project_name="p",
                allow_duplicates=True,
            )
            tuner.search(x, y, epochs=2, verbose=0, shuffle=True)
            out = {t.trial_id: t.score for t in tuner.oracle.trials.values()}
        return out

    whole = losses(str(tmp_path / "a"), [3])
    resumed = losses(str(tmp_path / "b"), [1, 2, 3])
    assert whole == resumed
    assert trial_seed(4, "1") != trial_seed(4, "2") != trial_seed(5, "1")
