"""Early stopping of hopeless trials, wired into the oracle and the fit.

Why a module of its own: keras-tuner 1.4 reports a trial's metrics to the oracle only once,
after ``fit`` (its per-epoch hook is a no-op, and it never stops a fit), so keras-nas adds
both halves:

* :class:`EpochReporter` (a Keras callback the keras-nas tuners add to every fit when the
  oracle has a rule) reports the objective after each epoch but the last with
  ``oracle.update_trial(trial_id, {epoch_metric(objective): value}, step=epochs_done)`` --
  the one call keras-tuner's distributed client forwards to the chief -- and sets
  ``model.stop_training`` when the answer's status is ``STOPPED``.
* :class:`EarlyStoppingMixin` (in :class:`~keras_nas.tuning.controller_oracle.ControllerOracle`) keeps
  the rule (:mod:`keras_nas.controllers.stopping`), records each report in the trial's
  metrics under ``epoch_metric(objective)`` (so ``trial.json`` holds the per-epoch curve and
  the rule is rebuilt from it on resume), and answers STOPPED.

A stopped trial ends with status ``STOPPED`` (never ``COMPLETED``): its ``score`` is the
partial best value (for information), its ``message`` says why it stopped, keras-tuner's
``get_best_trials`` ranks it after every completed trial, and the controller is told
``reward=None`` exactly as for a failed trial, so aging evolution never takes it as a
parent and REINFORCE skips it (or applies ``failed_reward``).
"""

from __future__ import annotations

import copy
import warnings
from typing import Optional

import keras

from keras_nas.controllers.stopping import StoppingRule
from keras_nas.tuning.internals import TrialStatus

EPOCH_PREFIX = "epoch_"


def epoch_metric(objective) -> str:
    """Name of the per-epoch objective metric the reporter sends (``epoch_<objective name>``).
    Not the objective's own name: keras-tuner would then skip the trial's final report."""
    return f"{EPOCH_PREFIX}{getattr(objective, 'name', objective)}"


class EarlyStoppingMixin:
    """Oracle half: ``self.early_stopping`` (a :class:`StoppingRule` or None)."""

    def init_early_stopping(self, rule: Optional[StoppingRule], direction: str) -> None:
        if rule is not None and not isinstance(rule, StoppingRule):
            raise TypeError(
                f"early_stopping must be keras_nas.MedianStopping(...), keras_nas.ASHA(...) or None, "
                f"got {type(rule).__name__}."
            )
        self.early_stopping = rule.bind(direction) if rule is not None else None
        self._stop_reasons: dict = {}  # trial_id -> why it was stopped (until it ends)

    def is_epoch_report(self, metrics) -> bool:
        return self.early_stopping is not None and set(metrics) == {epoch_metric(self.objective)}

    def epoch_report(self, trial, metrics, step):
        """Record one epoch's objective in the trial and the rule; the reply's status is STOPPED
        when the trial should stop (the stored trial stays RUNNING until it ends)."""
        name = epoch_metric(self.objective)
        value = float(metrics[name])
        if not trial.metrics.exists(name):
            trial.metrics.register(name, direction=self.objective_direction())
        trial.metrics.update(name, value, step=int(step))
        tid = trial.trial_id
        if tid not in self._stop_reasons:
            reason = self.early_stopping.report(tid, int(step), value)
            if reason is not None:
                self._stop_reasons[tid] = f"keras-nas: stopped at epoch {int(step)}: {reason}"
        self.save_trial(trial)
        if tid in self._stop_reasons:
            self.save()  # the decision survives a crash of the chief (state_extra)
            reply = copy.copy(trial)
            reply.status = TrialStatus.STOPPED
            return reply
        return trial

    def mark_stopped(self, trial) -> None:
        """Before keras-tuner's end_trial: a stopped trial whose fit returned normally (keras-tuner
        says COMPLETED) ends STOPPED, with the reason and its partial best score."""
        tid = trial.trial_id
        reason = self._stop_reasons.get(tid)
        if reason is None or trial.status != TrialStatus.COMPLETED:
            return
        trial.status = TrialStatus.STOPPED
        trial.message = reason
        stored = self.trials[tid]
        for t in {id(trial): trial, id(stored): stored}.values():
            name = (
                self.objective.name
                if t.metrics.exists(self.objective.name)
                else epoch_metric(self.objective)
            )
            if t.metrics.exists(name):
                t.score = t.metrics.get_best_value(name)
                t.best_step = t.metrics.get_best_step(name)

    def trial_ended_early_stopping(self, trial_id, retrying: bool) -> None:
        self._stop_reasons.pop(trial_id, None)
        if retrying and self.early_stopping is not None:
            self.early_stopping.forget(trial_id)  # it runs again from scratch

    def rebuild_early_stopping(self) -> None:
        """After a reload: replay every trial's per-epoch metric into a fresh rule (so the rule's
        O(history) state never goes into oracle.json)."""
        rule = self.early_stopping
        if rule is None:
            return
        rule.set_state({"rule": rule.name, "direction": self.objective_direction(), "reports": {}})
        name = epoch_metric(self.objective)
        for tid in self.start_order:
            t = self.trials.get(tid)
            if t is None or not t.metrics.exists(name):
                continue
            for obs in t.metrics.get_history(name):
                rule.record(tid, int(obs.step), float(obs.mean()))

    def early_stopping_extra(self) -> dict:
        return {"stop_reasons": dict(self._stop_reasons)} if self._stop_reasons else {}

    def load_early_stopping_extra(self, ks: dict) -> None:
        self._stop_reasons = {str(k): str(v) for k, v in (ks.get("stop_reasons") or {}).items()}


class EpochReporter(keras.callbacks.Callback):
    """Reports the objective after each epoch (but the last) and stops the fit when told to."""

    def __init__(self, oracle, trial_id, objective):
        super().__init__()
        self.oracle = oracle
        self.trial_id = trial_id
        self.objective = objective
        self.stopped_at = None
        self._warned = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        epochs = (self.params or {}).get("epochs")
        if epochs is not None and epoch + 1 >= epochs:
            return  # the last epoch: nothing left to save
        if not self.objective.has_value(logs):
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"keras-nas early stopping: the objective {self.objective.name!r} is not in the epoch "
                    f"logs (keys: {sorted(logs)}); this trial runs to the end. Early stopping needs an "
                    "objective computed every epoch (e.g. 'val_accuracy' with validation data)."
                )
            return
        answer = self.oracle.update_trial(
            self.trial_id,
            {epoch_metric(self.objective): float(self.objective.get_value(logs))},
            step=epoch + 1,
        )
        if getattr(answer, "status", None) == TrialStatus.STOPPED:
            self.stopped_at = epoch + 1
            self.model.stop_training = True
