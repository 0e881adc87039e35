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

import keras
import keras_tuner as kt

from keras_nas.controllers import oracles as oracles_lib

# ControllerOracle keyword arguments accepted by every tuner below.
_ORACLE_OPTIONS = (
    "kinds", "reward_transform", "cost_metric", "cost_fn", "cost_target", "cost_weight",
    "allow_duplicates", "max_collisions", "encoder", "fsync",
)
# keras_tuner.Tuner / BaseTuner keyword arguments (everything else is the algorithm's).
_TUNER_OPTIONS = (
    "max_model_size", "optimizer", "loss", "metrics", "distribution_strategy", "directory",
    "project_name", "logger", "tuner_id", "overwrite", "executions_per_trial",
)


class ParamsLogger(keras.callbacks.Callback):
    """Adds ``params`` (``model.count_params()``) to each epoch's logs (a cost metric)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["params"] = float(self.model.count_params())


class _ControllerTuner(kt.Tuner):
    def __init__(self, oracle, hypermodel=None, report_params=None, **kwargs):
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
        super().__init__(oracle, hypermodel, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        if self.report_params:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [ParamsLogger()]
        return super().run_trial(trial, *args, **kwargs)

    def pareto_front(self):
        """The oracle's (objective, cost) Pareto front (chief / single process only)."""
        return self.oracle.pareto_front()


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
