"""The search job: ``keras-nas search`` and the first half of ``make demo``.

A job is described by a dataclass whose field names are the CLI flag names, so the CLI,
the demo and a notebook run the same job, write the same run directory
(:mod:`keras_nas.rundir`) and resume the same way.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Optional

from keras_nas import families, rundir
from keras_nas.jobs import advice, common
from keras_nas.jobs import oneshot as oneshot_job
from keras_nas.rundir import BEST_GENOTYPE, PROJECT_NAME, RUN_JSON, JobError

SPACES = tuple(families.FAMILIES)
CONTROLLERS = ("evolution", "reinforce", "predictor", "random") + oneshot_job.CONTROLLERS  # one-shot: jobs/oneshot.py
EARLY_STOPPING = ("none", "median", "asha")
# keras_nas.proxies.NAMES, spelled out so the CLI checks --proxy without importing TensorFlow
PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "params", "flops")
OBJECTIVE = "val_accuracy"
# metrics every trial's fit reports; '--objective=NAME[:min|:max]', direction inferred from the name
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
COSTS = ("none", "params", "flops", "latency")
COST_HELP = {
    "params": "parameter count",
    "flops": "multiply-adds of one image (keras_nas.transfer.flops; convolutions and dense layers)",
    "latency": "milliseconds of one forward pass on one image, median of 10 after a warm-up, on this machine "
               "(noisy on a loaded one)",
}
# REINFORCE options on the command line: flag -> ReinforceController argument
REINFORCE_FLAGS = {"reinforce_learning_rate": "learning_rate", "reinforce_batch_size": "batch_size",
                   "reinforce_baseline_decay": "baseline_decay", "reinforce_entropy_weight": "entropy_weight"}


def parse_objective(spec: str) -> tuple:
    """``'val_loss'`` -> ``('val_loss', 'min')``; ``'val_accuracy:max'``; JobError naming --objective."""
    name, _, direction = str(spec or "").strip().partition(":")
    direction = direction or ("min" if name.endswith("loss") else "max")
    if name not in OBJECTIVES or direction not in ("min", "max"):
        raise JobError(f"--objective must be one of {', '.join(OBJECTIVES)}, optionally with :min or :max "
                       f"(default: min for losses, max for accuracies); got {spec!r}.")
    return name, direction


@dataclasses.dataclass
class SearchConfig:
    """Everything a search run needs. Field names are the ``keras-nas search`` flag names."""

    space: str = "nasnet"
    controller: str = "evolution"
    data: str = "digits"
    image_size: Optional[int] = None
    subset: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    epochs: Optional[int] = None  # None: advice.auto_epochs(training images, batch size)
    num_cells: int = 1
    filters: int = 8
    num_blocks: int = 5
    ops: str = "amoebanet"
    macro_layers: int = 6
    batch_size: int = 64
    learning_rate: float = 0.003
    max_trials: int = 10
    population_size: int = 0  # 0: the oracle's default for max_trials
    sample_size: int = 0
    objective: str = OBJECTIVE  # NAME[:min|:max], NAME in OBJECTIVES
    cost: str = "none"  # COSTS: measured per trial; a reward penalty only with cost_target
    cost_target: Optional[float] = None  # MnasNet target T (same unit as the cost)
    cost_weight: float = -0.07  # MnasNet exponent w: reward = objective * (cost / T) ** w
    max_time: Any = None  # seconds or "30m"/"2h" (advice.parse_duration); None: no time limit
    reinforce_learning_rate: Optional[float] = None  # None: ReinforceController's defaults
    reinforce_batch_size: Optional[int] = None
    reinforce_baseline_decay: Optional[float] = None
    reinforce_entropy_weight: Optional[float] = None
    proxy: str = ""  # zero-cost proxy of a proxy-assisted search ("" = none)
    proxy_samples: int = 0  # its warm-up samples (0: the oracle's default)
    output_dir: str = "nas_run"
    strategy: str = "auto"
    seed: int = 0
    overwrite: bool = False
    tensorboard: bool = True
    run_eagerly: bool = False  # skip tf.function tracing: faster for a handful of steps (tests)
    early_stopping: str = "none"  # none | median | asha (keras_nas.controllers.stopping)
    early_stopping_epochs: int = 1  # median: grace epochs; asha: epochs at the first rung
    early_stopping_eta: int = 3  # asha: the top 1/eta at each rung continue

    @property
    def family(self) -> families.Family:
        return families.get_family(self.space)

    def make_space(self):
        return self.family.space(num_blocks=self.num_blocks, ops=self.ops, macro_layers=self.macro_layers)


def make_hypermodel(cfg: SearchConfig, input_shape, num_classes):
    """The generic HyperModel over the family's space; builds the same networks as ``keras-nas train``."""
    from keras_nas.tuning.hypermodels import SpaceHyperModel

    return SpaceHyperModel(cfg.make_space(), input_shape, num_classes, family=cfg.family,
                           build_settings={"num_cells": cfg.num_cells, "filters": cfg.filters},
                           learning_rate=cfg.learning_rate)


def make_tuner(cfg: SearchConfig, hypermodel, reporter, strategy):
    """keras-nas's tuner for ``cfg.controller``, extended to measure cost and report every trial."""
    import keras_tuner as kt

    from keras_nas.tuning import tuners

    bases = {"evolution": tuners.AgingEvolution, "reinforce": tuners.ReinforceSearch,
             "predictor": tuners.PredictorSearch, "random": tuners.RandomArchitectureSearch}
    if cfg.controller not in bases:
        raise JobError(f"--controller must be one of {list(CONTROLLERS)}, got {cfg.controller!r}.")
    extra = {"early_stopping": make_early_stopping(cfg), "max_time": advice.parse_duration(cfg.max_time)}
    if cfg.controller == "evolution":
        extra.update(population_size=cfg.population_size or None, sample_size=cfg.sample_size or None)
    if cfg.controller == "reinforce":
        extra.update({arg: getattr(cfg, flag) for flag, arg in REINFORCE_FLAGS.items() if getattr(cfg, flag) is not None})
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
                    ConstantLogger(cost, lambda: self._cost_value)]
            return super().run_trial(trial, *args, **kwargs)

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            reporter.trial_begin(trial.trial_id)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle scores the trial and tells the controller
            reporter.trial_end(self.oracle.trials[trial.trial_id], self.oracle)

    return ReportingTuner(hypermodel=hypermodel, objective=kt.Objective(name, direction), max_trials=cfg.max_trials,
                          seed=cfg.seed, directory=cfg.output_dir, project_name=PROJECT_NAME, overwrite=cfg.overwrite,
                          distribution_strategy=strategy, **extra)


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


# settings that define what a saved search searched: resuming it with others would mix or break it
RESUME_KEYS = ("space", "controller", "proxy", "num_blocks", "ops", "macro_layers", "num_cells", "filters", "data",
               "image_size", "objective", "cost", "cost_target", "cost_weight")


def check_resume(cfg: SearchConfig):
    """Raise :class:`JobError` when ``cfg`` would resume a finished search in ``output_dir`` with a
    different space, controller, search network or data (nothing is written then)."""
    if cfg.overwrite:
        return
    try:
        saved = rundir.read_run(cfg.output_dir).get("config", {})
    except JobError as e:  # run.json is a report, rewritten when the search ends; the tuner/ state decides
        import warnings

        warnings.warn(f"{e} Resuming without comparing settings; the search state in "
                      f"{os.path.join(cfg.output_dir, PROJECT_NAME)} is kept.")
        return
    if not isinstance(saved, dict):
        return
    diff = [(k, saved[k], getattr(cfg, k)) for k in RESUME_KEYS if k in saved and saved[k] != getattr(cfg, k)]
    if diff:
        what = ", ".join(f"--{k}={new!r} (saved run: {old!r})" for k, old, new in diff)
        raise JobError(
            f"--output_dir {cfg.output_dir!r} holds a search run with other settings: {what}. Resuming would mix "
            "incompatible trials; use the saved values, a new --output_dir, or --overwrite to start afresh."
        )


def check_search_config(cfg: SearchConfig):
    """Raise :class:`JobError` naming the flag for values the flag parser cannot check alone."""
    rundir.check_output_dir(cfg.output_dir)
    if cfg.space not in SPACES:
        raise JobError(f"--space must be one of {list(SPACES)}, got {cfg.space!r}.")
    if cfg.controller not in CONTROLLERS:
        raise JobError(f"--controller must be one of {list(CONTROLLERS)}, got {cfg.controller!r}.")
    if cfg.controller in oneshot_job.CONTROLLERS:
        oneshot_job.check_oneshot_config(cfg)
    if cfg.early_stopping not in EARLY_STOPPING:
        raise JobError(f"--early_stopping must be one of {list(EARLY_STOPPING)}, got {cfg.early_stopping!r}.")
    if not isinstance(cfg.early_stopping_eta, int) or cfg.early_stopping_eta < 2:
        raise JobError(f"--early_stopping_eta must be an integer >= 2, got {cfg.early_stopping_eta!r}.")
    for name in ("epochs", "num_cells", "filters", "num_blocks", "batch_size", "max_trials", "macro_layers",
                 "early_stopping_epochs"):
        v = getattr(cfg, name)
        if name == "epochs" and v is None:
            continue  # chosen from the data size
        if not isinstance(v, int) or v < 1:
            raise JobError(f"--{name} must be a positive integer, got {v!r}.")
    parse_objective(cfg.objective)
    try:
        advice.parse_duration(cfg.max_time)
    except ValueError as e:
        raise JobError(str(e)) from None
    if (cfg.cost or "none") not in COSTS:
        raise JobError(f"--cost must be one of {', '.join(COSTS)}, got {cfg.cost!r}.")
    if cfg.cost_target is not None and cfg.cost_target != 0:
        if (cfg.cost or "none") == "none":
            raise JobError("--cost_target needs --cost=params, flops or latency (the cost it targets).")
        if not cfg.cost_target > 0:
            raise JobError(f"--cost_target must be positive (in the unit of --cost={cfg.cost}), got {cfg.cost_target!r}.")
    if not -10.0 <= cfg.cost_weight <= 0.0:
        raise JobError(f"--cost_weight must be in [-10, 0] (MnasNet: -0.07; 0 ignores the cost), got {cfg.cost_weight!r}.")
    given = [f for f in REINFORCE_FLAGS if getattr(cfg, f) is not None]
    if given and cfg.controller != "reinforce":
        raise JobError(f"--{given[0]} applies to --controller=reinforce only (this run: --controller={cfg.controller}); "
                       "drop it or switch controller.")
    if cfg.reinforce_learning_rate is not None and not 0 < cfg.reinforce_learning_rate <= 1:
        raise JobError(f"--reinforce_learning_rate must be in (0, 1], got {cfg.reinforce_learning_rate!r}.")
    if cfg.reinforce_batch_size is not None and not 1 <= cfg.reinforce_batch_size <= 10_000:
        raise JobError(f"--reinforce_batch_size must be in [1, 10000], got {cfg.reinforce_batch_size!r}.")
    if cfg.reinforce_baseline_decay is not None and not 0 <= cfg.reinforce_baseline_decay < 1:
        raise JobError(f"--reinforce_baseline_decay must be in [0, 1), got {cfg.reinforce_baseline_decay!r}.")
    if cfg.reinforce_entropy_weight is not None and not 0 <= cfg.reinforce_entropy_weight <= 1:
        raise JobError(f"--reinforce_entropy_weight must be in [0, 1], got {cfg.reinforce_entropy_weight!r}.")
    if not cfg.learning_rate > 0:
        raise JobError(f"--learning_rate must be positive, got {cfg.learning_rate!r}.")
    if cfg.proxy and cfg.proxy not in PROXIES:
        raise JobError(f"--proxy must be one of {list(PROXIES)} (or empty: no proxy), got {cfg.proxy!r}.")
    if cfg.proxy_samples and not cfg.proxy:
        raise JobError("--proxy_samples needs --proxy (e.g. --proxy=synflow).")
    if cfg.controller == "evolution":
        if cfg.population_size == 1:
            raise JobError("--population_size must be 0 (default: from --max_trials) or >= 2 (a tournament needs "
                           "a population), got 1.")
        if cfg.population_size and cfg.sample_size > cfg.population_size:
            raise JobError(f"--sample_size ({cfg.sample_size}) must not exceed --population_size "
                           f"({cfg.population_size}).")
    if cfg.space == "nasnet" and cfg.image_size is not None and cfg.image_size < 4:
        raise JobError(f"--image_size {cfg.image_size} is too small: the NASNet network needs at least 4.")
    try:  # one-shot: the DARTS cell space takes 'none' (--ops=darts), the trial-based nasnet space does not
        oneshot_job.oneshot_ops(cfg) if cfg.controller in oneshot_job.CONTROLLERS else cfg.make_space()
    except ValueError as e:
        raise JobError(f"--ops={cfg.ops}: {e}") from None


def run_search(cfg: SearchConfig, log: Callable[[str], Any] = print) -> dict:
    """Run (or resume) a search; return the summary that is also written to ``run.json``."""
    check_search_config(cfg)
    check_resume(cfg)
    if cfg.controller in oneshot_job.CONTROLLERS:
        return oneshot_job.run_oneshot(cfg, log)
    t0 = time.time()
    from keras_nas import data as data_lib
    from keras_nas import reporting, visualize

    ds = data_lib.load_dataset(cfg.data, image_size=cfg.image_size, subset=cfg.subset, val_fraction=cfg.val_fraction,
                               test_fraction=cfg.test_fraction, seed=cfg.seed)
    import keras

    keras.utils.set_random_seed(cfg.seed)
    try:
        cfg.family.check_input_size(ds.input_shape)
    except families.FamilyError as e:
        raise JobError(str(e)) from None
    log(f"data: {ds.describe()}")
    epochs = cfg.epochs or advice.auto_epochs(len(ds.x_train), cfg.batch_size)
    epochs_note = "" if cfg.epochs else (
        f" (chosen from the data: >= {advice.MIN_PROXY_STEPS} steps of batch {cfg.batch_size}; set --epochs to override)")
    objective, direction = parse_objective(cfg.objective)
    hypermodel = make_hypermodel(cfg, ds.input_shape, ds.num_classes)
    space = hypermodel.space
    max_time = advice.parse_duration(cfg.max_time)
    budget = f", time budget {reporting.format_seconds(max_time)}" if max_time else ""
    log(f"space: {cfg.space}, {len(space)} decisions, {space.size:.3g} assignments; controller: {cfg.controller}"
        f"{f' assisted by {cfg.proxy}' if cfg.proxy else ''}; "
        f"{cfg.max_trials} trials of {epochs} epoch(s){epochs_note}, N={cfg.num_cells} F={cfg.filters}{budget}")
    log(f"objective: {objective} ({direction})" + (
        f"; cost: {cfg.cost} ({COST_HELP[cfg.cost]})" + (f", MnasNet target {cfg.cost_target:g}, weight "
                                                        f"{cfg.cost_weight:g}" if cfg.cost_target else ", recorded only")
        if (cfg.cost or "none") != "none" else ""))
    build_kwargs = {"input_shape": list(ds.input_shape), "num_classes": ds.num_classes, "num_cells": cfg.num_cells,
                    "filters": cfg.filters}
    os.makedirs(cfg.output_dir, exist_ok=True)
    strategy = common.strategy(cfg.strategy)

    def describe(values):
        return str(hypermodel.genotype(values))

    def image(values):
        return visualize.architecture_png(hypermodel.genotype(values))

    pop = cfg.population_size
    if not pop and cfg.controller == "evolution":
        from keras_nas.tuning.oracle import default_population_size

        pop = default_population_size(cfg.max_trials)
    if cfg.controller == "evolution":
        hint = advice.evolution_hint(cfg.max_trials, pop)
        if hint:
            log(hint)
    accuracy_objective = objective.endswith("accuracy")
    chance = advice.chance_level(ds.y_val if objective.startswith("val_") else ds.y_train) if accuracy_objective else None
    reporter = reporting.SearchReporter(cfg.output_dir, describe, max_trials=cfg.max_trials, objective=objective,
                                        direction=direction, population_size=pop or cfg.max_trials, image=image,
                                        log=log, tensorboard=cfg.tensorboard,
                                        chance=(chance[0], advice.noise_threshold(*chance)) if chance else None,
                                        chance_hint=f"raise --epochs (now {epochs})")
    tuner = make_tuner(cfg, hypermodel, reporter, strategy)
    resumed = reporting.trial_counts(tuner.oracle)
    if resumed["total"]:
        rerun = resumed["unfinished"]
        log(f"resuming the search in {os.path.join(cfg.output_dir, PROJECT_NAME)}: {resumed['finished']} trial(s) "
            f"finished ({resumed['completed']} completed, {resumed['finished'] - resumed['completed']} failed)"
            + (f"; {rerun} unfinished (interrupted) trial(s) will be re-run" if rerun else ""))
    train_ds = ds.pipeline("train", cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = ds.pipeline("val", cfg.batch_size)
    search_error = None
    # per-trial training curves: keras-tuner files them under tensorboard/trials/<trial id>/execution<k>
    # with the trial's hyperparameters for TensorBoard's HParams dashboard
    tb = [keras.callbacks.TensorBoard(os.path.join(cfg.output_dir, "tensorboard", "trials"), write_graph=False)
          ] if cfg.tensorboard else []
    try:
        tuner.search(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, callbacks=tb)
    except RuntimeError as e:  # keras-tuner gives up after repeated failed trials
        search_error = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
        log(f"search stopped: {search_error}")
    finally:
        reporter.close()
    records = reporter.records(tuner.oracle)
    reporter.write_results(records)
    best = reporter.best(records)
    if best is None:
        raise JobError(
            f"No trial completed ({search_error or 'all failed'}); see failure_reason in "
            f"{os.path.join(cfg.output_dir, reporting.RESULTS_CSV)}."
        )
    warnings_ = []
    time_budget = getattr(tuner.oracle, "time_budget", None)
    counts = reporting.trial_counts(tuner.oracle)
    if time_budget is not None and time_budget.expired() and counts["finished"] < cfg.max_trials:
        warnings_.append(f"note: the time budget (--max_time={reporting.format_seconds(max_time)}) ended the search "
                         f"after {counts['finished']} of {cfg.max_trials} trials; run the same command again to "
                         "continue (with a fresh time budget).")
    if chance is not None and advice.near_chance(best["score"], *chance):
        warnings_.append(advice.chance_warning(best["score"], chance[0], chance[1],
                                               len(ds.y_val if objective.startswith("val_") else ds.y_train), epochs))
    for w in warnings_:
        log(w)

    arch = hypermodel.genotype(best["hyperparameters"])
    rundir.write_text(os.path.join(cfg.output_dir, BEST_GENOTYPE), families.arch_to_json(arch))
    model = tuner.get_best_models(1)[0]
    test_ds = ds.pipeline("test", cfg.batch_size)
    val_acc, test_acc = common.accuracy(model, val_ds), common.accuracy(model, test_ds)
    model_paths = rundir.save_model(model, cfg.output_dir, "best_model", log)
    png = None
    try:
        png = visualize.save_png(arch, os.path.join(cfg.output_dir, "best_cells.png"))
    except ImportError:
        pass
    summary = {
        "job": "search",
        "config": dataclasses.asdict(cfg),
        "epochs": epochs,
        "objective": {"name": objective, "direction": direction},
        "data": {"description": ds.describe(), "input_shape": list(ds.input_shape), "num_classes": ds.num_classes},
        "space": cfg.space,
        "space_kwargs": {"num_blocks": cfg.num_blocks, "ops": cfg.ops, "macro_layers": cfg.macro_layers},
        "build": build_kwargs,
        "best": {
            "trial": best["trial"],
            "trial_id": best["trial_id"],
            "architecture": str(arch),
            "search_score": best["score"],
            "search_val_accuracy": best["score"] if objective == "val_accuracy" else None,
            "val_accuracy": val_acc,
            "test_accuracy": test_acc,
            "params": int(model.count_params()),
        },
        "trials": {"total": len(records), "completed": sum(r["score"] is not None for r in records),
                   "failed": sum(r["status"] not in ("COMPLETED", "STOPPED") for r in records),
                   "stopped": sum(r["status"] == "STOPPED" for r in records)},
        "warnings": warnings_,
        # (score, cost) non-dominated trials when --cost is set: [{"trial_id", "score", "cost", "reward"}]
        "pareto_front": tuner.pareto_front() if (cfg.cost or "none") != "none" else [],
        "files": {"best_genotype": os.path.join(cfg.output_dir, BEST_GENOTYPE),
                  "results": os.path.join(cfg.output_dir, reporting.RESULTS_CSV),
                  "tensorboard": os.path.join(cfg.output_dir, "tensorboard"),
                  "tuner": os.path.join(cfg.output_dir, PROJECT_NAME),
                  "cells_png": png, **{f"best_model_{k}": v for k, v in model_paths.items()}},
        "seconds": round(time.time() - t0, 1),
        "search_error": search_error,
    }
    rundir.write_json(os.path.join(cfg.output_dir, RUN_JSON), summary)
    return summary


def search_summary_text(s: dict) -> str:
    if s.get("job") == "oneshot":
        return oneshot_job.summary_text(s)
    from keras_nas import visualize

    b, files, out = s["best"], s["files"], s["config"]["output_dir"]
    arch = rundir.load_architecture(files["best_genotype"])
    objective = s.get("objective", {}).get("name", OBJECTIVE)
    score = b.get("search_score", b.get("search_val_accuracy"))
    nas = advice.command("keras-nas", "keras_nas.cli")
    lines = [
        "",
        f"== search finished in {s['seconds']:.0f}s: {s['trials']['completed']} completed, "
        + (f"{s['trials']['stopped']} stopped early, " if s["trials"].get("stopped") else "")
        + f"{s['trials']['failed']} failed trial(s) ==",
        visualize.architecture_text(arch),
        f"best: trial {b.get('trial', b['trial_id'])}, search {objective} {score:.4f}, "
        f"held-out test accuracy {b['test_accuracy']:.4f} (search network, {b['params']:,} params)",
        *s.get("warnings", []),
        "written:",
        *(f"  {k:18s} {v}" for k, v in files.items() if v),
        f"  {'run summary':18s} {os.path.join(out, RUN_JSON)}",
        "next:",
        f"  {advice.command('tensorboard', 'tensorboard.main')} --logdir {files['tensorboard']}",
        f"  {nas} train --run_dir={out}          # retrain at final size",
        f"  {nas} export --run_dir={out}         # .keras, SavedModel, genotype JSON, standalone .py",
        f"  {nas} show {out}",
        f"  {nas} report {out}",
    ]
    return "\n".join(lines)
