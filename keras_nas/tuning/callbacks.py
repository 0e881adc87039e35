"""Keras callbacks the keras-nas tuners add to every trial's ``fit``."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import keras

from keras_nas.atomic import write_atomic

METADATA = "training_metadata.json"


class ParamsLogger(keras.callbacks.Callback):
    """Adds ``params`` (``model.count_params()``) to each epoch's logs (a cost metric)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["params"] = float(self.model.count_params())


class ConstantLogger(keras.callbacks.Callback):
    """Adds ``name: value()`` to each epoch's logs: a per-model cost (FLOPs, latency) measured once
    at build time, reported as a trial metric the oracle's ``cost_metric`` reads."""

    def __init__(self, name, value):
        super().__init__()
        self.name, self.value = name, value

    def on_epoch_end(self, epoch, logs=None):
        v = self.value()
        if logs is not None and v is not None:
            logs[self.name] = float(v)


class EpochLog(keras.callbacks.Callback):
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


class TrialBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that never leaves a torn backup.

    Each epoch's weights go to a new file ``epoch<k>.weights.h5``; then the metadata file, which
    names that weights file, is replaced atomically (the commit point); then older weights are
    deleted. A backup that cannot be read (torn by an older version, a full disk, a hand edit)
    is treated as no backup: the trial restarts from epoch 0 with a warning.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, delete_checkpoint=True)

    def on_train_begin(self, logs=None):
        meta = read_backup(self.backup_dir)
        if meta is None:
            return
        try:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(os.path.join(self.backup_dir, meta["weights"]))
        except Exception as e:
            warnings.warn(
                f"keras-nas: the backup in {self.backup_dir} is unreadable ({type(e).__name__}: {e}); "
                "the trial restarts from epoch 0."
            )
            shutil.rmtree(self.backup_dir, ignore_errors=True)
            return
        self.model._initial_epoch = int(meta["epoch"])

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        epoch = int(self._current_epoch)
        name = f"epoch{epoch}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, name), overwrite=True)
        write_atomic(
            os.path.join(self.backup_dir, METADATA),
            json.dumps(
                {"epoch": epoch, "batch": int(self._last_batch_seen), "weights": name}
            ).encode(),
        )
        for f in os.listdir(self.backup_dir):
            if f.endswith(".weights.h5") and f != name:
                os.unlink(os.path.join(self.backup_dir, f))

    def on_train_end(self, logs=None):
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        parent = os.path.dirname(os.path.normpath(self.backup_dir))
        try:
            os.rmdir(parent)  # the trial's backup/ directory, once empty
        except OSError:
            pass


def read_backup(backup_dir) -> dict | None:
    """The committed backup's metadata ``{"epoch", "weights"}``, or None (none, or unreadable)."""
    try:
        with open(os.path.join(backup_dir, METADATA)) as f:
            meta = json.load(f)
        epoch, weights = int(meta["epoch"]), str(meta["weights"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if epoch < 1 or not os.path.isfile(os.path.join(backup_dir, weights)):
        return None
    return {"epoch": epoch, "weights": weights}


def backup_epoch(backup_dir) -> int:
    meta = read_backup(backup_dir)
    return meta["epoch"] if meta else 0


def _plain_number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def read_epoch_log(path, before_epoch):
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


def merge_history(history, earlier):
    """Prepend the epochs a resumed fit did not run to its ``History``."""
    first = min(history.epoch) if history.epoch else None
    epochs = sorted(e for e in earlier if first is None or e < first)
    if not epochs:
        return
    keys = set(history.history)
    for e in epochs:
        keys |= set(earlier[e])
    merged = {}
    for k in keys:
        merged[k] = [earlier[e].get(k) for e in epochs] + list(
            history.history.get(k, [None] * len(history.epoch))
        )
    history.history = merged
    history.epoch = epochs + list(history.epoch)
