"""The keras-tuner side of a search job: the HyperModel, the tuner of ``--controller`` extended to
measure ``--cost`` and report every trial, and the ``--early_stopping`` rule.

Why a module of its own: this is where a :class:`~keras_nas.jobs.search_config.SearchConfig`
meets keras-nas's tuners (:mod:`keras_nas.tuning`); :mod:`keras_nas.jobs.search` runs the search
and writes the run directory.
"""

from __future__ import annotations

import time

from keras_nas.jobs import advice
from keras_nas.jobs.search_config import CONTROLLERS, REINFORCE_FLAGS, SearchConfig, parse_objective
from keras_nas.rundir import PROJECT_NAME, JobError


def make_hypermodel(cfg: SearchConfig, input_shape, num_classes):
    """The generic HyperModel over the family's space; builds the same networks as ``keras-nas train``."""
    from keras_nas.tuning.hypermodels import SpaceHyperModel

    return SpaceHyperModel(
        cfg.make_space(),
        input_shape,
        num_classes,
        family=cfg.family,
        build_settings={"num_cells": cfg.num_cells, "filters": cfg.filters},
        learning_rate=cfg.learning_rate,
    )


def make_tuner(cfg: SearchConfig, hypermodel, reporter, strategy):
    """keras-nas's tuner for ``cfg.controller``, extended to measure cost and report every trial."""
    import keras_tuner as kt

    from keras_nas.tuning import tuners

    bases = {
        "evolution": tuners.AgingEvolution,
        "reinforce": tuners.ReinforceSearch,
        "predictor": tuners.PredictorSearch,
        "random": tuners.RandomArchitectureSearch,
    }
    if cfg.controller not in bases:
        raise JobError(f"--controller must be one of {list(CONTROLLERS)}, got {cfg.controller!r}.")
    extra = {
        "early_stopping": make_early_stopping(cfg),
        "max_time": advice.parse_duration(cfg.max_time),
    }
    if cfg.controller == "evolution":
        extra.update(
            population_size=cfg.population_size or None, sample_size=cfg.sample_size or None
        )
    if cfg.controller == "reinforce":
        extra.update(
            {
                arg: getattr(cfg, flag)
                for flag, arg in REINFORCE_FLAGS.items()
                if getattr(cfg, flag) is not None
            }
        )
    if cfg.proxy:
        extra.update(proxy=cfg.proxy, proxy_samples=cfg.proxy_samples or None)
    cost = cfg.cost or "none"
    if cost != "none":
        extra.update(cost_metric=cost, cost_weight=cfg.cost_weight)
        if cfg.cost_target:
            extra["cost_target"] = cfg.cost_target
    name, direction = parse_objective(cfg.objective)

    class ReportingTuner(bases[cfg.controller]):
        """The controller's tuner plus cost measurement and reporting after each trial."""

        def build_model(self, hp):
            model = super().build_model(hp)
            if cfg.run_eagerly:
                model.run_eagerly = True
            reporter.set_params(model.count_params())
            self._cost_value = measure_cost(model, cost) if cost not in ("none", "params") else None
            return model

        def run_trial(self, trial, *args, **kwargs):
            if cost in ("flops", "latency"):  # reported like 'params': a metric the oracle reads
                from keras_nas.tuning.callbacks import ConstantLogger

                kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [
                    ConstantLogger(cost, lambda: self._cost_value)
                ]
            return super().run_trial(trial, *args, **kwargs)

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            reporter.trial_begin(trial.trial_id)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle scores the trial and tells the controller
            reporter.trial_end(self.oracle.trials[trial.trial_id], self.oracle)

    return ReportingTuner(
        hypermodel=hypermodel,
        objective=kt.Objective(name, direction),
        max_trials=cfg.max_trials,
        seed=cfg.seed,
        directory=cfg.output_dir,
        project_name=PROJECT_NAME,
        overwrite=cfg.overwrite,
        distribution_strategy=strategy,
        **extra,
    )


def make_early_stopping(cfg: SearchConfig):
    """The early-stopping rule of ``--early_stopping`` (None for 'none')."""
    from keras_nas.controllers.stopping import ASHA, MedianStopping

    if cfg.early_stopping == "median":
        return MedianStopping(grace_epochs=cfg.early_stopping_epochs)
    if cfg.early_stopping == "asha":
        return ASHA(min_epochs=cfg.early_stopping_epochs, eta=cfg.early_stopping_eta)
    return None


def measure_cost(model, cost: str) -> float:
    """The ``--cost`` of a built model: multiply-adds, or forward-pass milliseconds (batch 1)."""
    import numpy as np

    if cost == "flops":
        from keras_nas.transfer.flops import count_mult_adds

        return float(max(1, count_mult_adds(model).mult_adds))
    if cost == "latency":
        x = np.zeros((1, *tuple(model.inputs[0].shape[1:])), dtype="float32")
        model(x, training=False)  # warm-up: first call traces
        times = []
        for _ in range(10):
            t = time.perf_counter()
            model(x, training=False)
            times.append(time.perf_counter() - t)
        return float(max(1e-3, 1000.0 * sorted(times)[len(times) // 2]))
    raise ValueError(f"unknown cost {cost!r}")
