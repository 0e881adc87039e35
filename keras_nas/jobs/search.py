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
from keras_nas.jobs import common
from keras_nas.rundir import BEST_GENOTYPE, PROJECT_NAME, RUN_JSON, JobError

SPACES = tuple(families.FAMILIES)
CONTROLLERS = ("evolution", "reinforce", "random")
# keras_nas.proxies.NAMES, spelled out so the CLI checks --proxy without importing TensorFlow
PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "params", "flops")
OBJECTIVE = "val_accuracy"


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
    epochs: int = 1
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
    proxy: str = ""  # zero-cost proxy of a proxy-assisted search ("" = none)
    proxy_samples: int = 0  # its warm-up samples (0: the oracle's default)
    output_dir: str = "nas_run"
    strategy: str = "auto"
    seed: int = 0
    overwrite: bool = False
    tensorboard: bool = True
    run_eagerly: bool = False  # skip tf.function tracing: faster for a handful of steps (tests)

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
             "random": tuners.RandomArchitectureSearch}
    if cfg.controller not in bases:
        raise JobError(f"--controller must be one of {list(CONTROLLERS)}, got {cfg.controller!r}.")
    extra = {}
    if cfg.controller == "evolution":
        extra = {"population_size": cfg.population_size or None, "sample_size": cfg.sample_size or None}
    if cfg.proxy:
        extra.update(proxy=cfg.proxy, proxy_samples=cfg.proxy_samples or None)

    class ReportingTuner(bases[cfg.controller]):
        """The controller's tuner plus cost measurement and reporting after each trial."""

        def build_model(self, hp):
            model = super().build_model(hp)
            if cfg.run_eagerly:
                model.run_eagerly = True
            reporter.set_params(model.count_params())
            return model

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            reporter.trial_begin(trial.trial_id)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle scores the trial and tells the controller
            reporter.trial_end(self.oracle.trials[trial.trial_id], self.oracle)

    return ReportingTuner(hypermodel=hypermodel, objective=kt.Objective(OBJECTIVE, "max"), max_trials=cfg.max_trials,
                          seed=cfg.seed, directory=cfg.output_dir, project_name=PROJECT_NAME, overwrite=cfg.overwrite,
                          distribution_strategy=strategy, **extra)


# settings that define what a saved search searched: resuming it with others would mix or break it
RESUME_KEYS = ("space", "controller", "proxy", "num_blocks", "ops", "macro_layers", "num_cells", "filters", "data",
               "image_size")


def check_resume(cfg: SearchConfig):
    """Raise :class:`JobError` when ``cfg`` would resume a finished search in ``output_dir`` with a
    different space, controller, search network or data (nothing is written then)."""
    if cfg.overwrite:
        return
    saved = rundir.read_run(cfg.output_dir).get("config", {})
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
    for name in ("epochs", "num_cells", "filters", "num_blocks", "batch_size", "max_trials", "macro_layers"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise JobError(f"--{name} must be a positive integer, got {v!r}.")
    if not cfg.learning_rate > 0:
        raise JobError(f"--learning_rate must be positive, got {cfg.learning_rate!r}.")
    if cfg.proxy and cfg.proxy not in PROXIES:
        raise JobError(f"--proxy must be one of {list(PROXIES)} (or empty: no proxy), got {cfg.proxy!r}.")
    if cfg.proxy_samples and not cfg.proxy:
        raise JobError("--proxy_samples needs --proxy (e.g. --proxy=synflow).")
    if cfg.controller == "evolution":
        if cfg.population_size == 1:
            raise JobError("--population_size must be 0 (default: max_trials // 5) or >= 2 (a tournament needs "
                           "a population), got 1.")
        if cfg.population_size and cfg.sample_size > cfg.population_size:
            raise JobError(f"--sample_size ({cfg.sample_size}) must not exceed --population_size "
                           f"({cfg.population_size}).")
    if cfg.space == "nasnet" and cfg.image_size is not None and cfg.image_size < 4:
        raise JobError(f"--image_size {cfg.image_size} is too small: the NASNet network needs at least 4.")
    try:
        cfg.make_space()
    except ValueError as e:
        raise JobError(f"--ops={cfg.ops}: {e}") from None


def run_search(cfg: SearchConfig, log: Callable[[str], Any] = print) -> dict:
    """Run (or resume) a search; return the summary that is also written to ``run.json``."""
    check_search_config(cfg)
    check_resume(cfg)
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
    hypermodel = make_hypermodel(cfg, ds.input_shape, ds.num_classes)
    space = hypermodel.space
    log(f"space: {cfg.space}, {len(space)} decisions, {space.size:.3g} assignments; controller: {cfg.controller}"
        f"{f' assisted by {cfg.proxy}' if cfg.proxy else ''}; "
        f"{cfg.max_trials} trials of {cfg.epochs} epoch(s), N={cfg.num_cells} F={cfg.filters}")
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
    reporter = reporting.SearchReporter(cfg.output_dir, describe, max_trials=cfg.max_trials, objective=OBJECTIVE,
                                        population_size=pop or cfg.max_trials, image=image, log=log,
                                        tensorboard=cfg.tensorboard)
    tuner = make_tuner(cfg, hypermodel, reporter, strategy)
    done_before = len(tuner.oracle.trials)
    if done_before:
        log(f"resuming the search in {os.path.join(cfg.output_dir, PROJECT_NAME)}: {done_before} trial(s) already run")
    train_ds = ds.pipeline("train", cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = ds.pipeline("val", cfg.batch_size)
    search_error = None
    try:
        tuner.search(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=0)
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
        "data": {"description": ds.describe(), "input_shape": list(ds.input_shape), "num_classes": ds.num_classes},
        "space": cfg.space,
        "space_kwargs": {"num_blocks": cfg.num_blocks, "ops": cfg.ops, "macro_layers": cfg.macro_layers},
        "build": build_kwargs,
        "best": {
            "trial_id": best["trial_id"],
            "architecture": str(arch),
            "search_val_accuracy": best["score"],
            "val_accuracy": val_acc,
            "test_accuracy": test_acc,
            "params": int(model.count_params()),
        },
        "trials": {"total": len(records), "completed": sum(r["score"] is not None for r in records),
                   "failed": sum(r["status"] != "COMPLETED" for r in records)},
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
    from keras_nas import visualize

    b, files, out = s["best"], s["files"], s["config"]["output_dir"]
    arch = rundir.load_architecture(files["best_genotype"])
    lines = [
        "",
        f"== search finished in {s['seconds']:.0f}s: {s['trials']['completed']} completed, "
        f"{s['trials']['failed']} failed trial(s) ==",
        visualize.architecture_text(arch),
        f"best: trial id {b['trial_id']}, search-validation accuracy {b['search_val_accuracy']:.4f}, "
        f"held-out test accuracy {b['test_accuracy']:.4f} (search network, {b['params']:,} params)",
        "written:",
        *(f"  {k:18s} {v}" for k, v in files.items() if v),
        f"  {'run summary':18s} {os.path.join(out, RUN_JSON)}",
        "next:",
        f"  tensorboard --logdir {files['tensorboard']}",
        f"  keras-nas train --run_dir={out}          # retrain at final size",
        f"  keras-nas export --run_dir={out}         # .keras, SavedModel, genotype JSON, standalone .py",
        f"  keras-nas show {out}",
    ]
    return "\n".join(lines)
