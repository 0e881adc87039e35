"""The search job: ``keras-nas search`` and the first half of ``make demo``.

A job is described by a dataclass whose field names are the CLI flag names, so the CLI,
the demo and a notebook run the same job, write the same run directory
(:mod:`keras_nas.rundir`) and resume the same way. The dataclass, its flag choices and checks
are :mod:`keras_nas.jobs.search_config`; the tuner a search runs is built in
:mod:`keras_nas.jobs.search_tuner`; both are re-exported here. This module runs the search and
writes the run directory.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

from keras_nas import families, rundir
from keras_nas.jobs import advice, common
from keras_nas.jobs import oneshot as oneshot_job
from keras_nas.jobs.search_config import (  # noqa: F401 (re-exported: callers read them from here)
    CONTROLLERS,
    COST_HELP,
    COSTS,
    EARLY_STOPPING,
    OBJECTIVE,
    OBJECTIVES,
    PROXIES,
    REINFORCE_FLAGS,
    RESUME_KEYS,
    SPACES,
    SearchConfig,
    check_resume,
    check_search_config,
    parse_objective,
)
from keras_nas.jobs.search_tuner import (  # noqa: F401 (re-exported: callers read them from here)
    make_early_stopping,
    make_hypermodel,
    make_tuner,
    measure_cost,
)
from keras_nas.rundir import BEST_GENOTYPE, PROJECT_NAME, RUN_JSON, JobError


def run_search(cfg: SearchConfig, log: Callable[[str], Any] = print) -> dict:
    """Run (or resume) a search; return the summary that is also written to ``run.json``."""
    check_search_config(cfg)
    check_resume(cfg)
    if cfg.controller in oneshot_job.CONTROLLERS:
        return oneshot_job.run_oneshot(cfg, log)
    t0 = time.time()
    from keras_nas import data as data_lib
    from keras_nas import reporting, visualize

    ds = data_lib.load_dataset(
        cfg.data,
        image_size=cfg.image_size,
        subset=cfg.subset,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        seed=cfg.seed,
    )
    import keras

    keras.utils.set_random_seed(cfg.seed)
    try:
        cfg.family.check_input_size(ds.input_shape)
    except families.FamilyError as e:
        raise JobError(str(e)) from None
    log(f"data: {ds.describe()}")
    epochs = cfg.epochs or advice.auto_epochs(len(ds.x_train), cfg.batch_size)
    epochs_note = (
        ""
        if cfg.epochs
        else (
            f" (chosen from the data: >= {advice.MIN_PROXY_STEPS} steps of batch {cfg.batch_size}; set --epochs to override)"
        )
    )
    objective, direction = parse_objective(cfg.objective)
    hypermodel = make_hypermodel(cfg, ds.input_shape, ds.num_classes)
    space = hypermodel.space
    max_time = advice.parse_duration(cfg.max_time)
    budget = f", time budget {reporting.format_seconds(max_time)}" if max_time else ""
    log(
        f"space: {cfg.space}, {len(space)} decisions, {space.size:.3g} assignments; controller: {cfg.controller}"
        f"{f' assisted by {cfg.proxy}' if cfg.proxy else ''}; "
        f"{cfg.max_trials} trials of {epochs} epoch(s){epochs_note}, N={cfg.num_cells} F={cfg.filters}{budget}"
    )
    log(
        f"objective: {objective} ({direction})"
        + (
            f"; cost: {cfg.cost} ({COST_HELP[cfg.cost]})"
            + (
                f", MnasNet target {cfg.cost_target:g}, weight {cfg.cost_weight:g}"
                if cfg.cost_target
                else ", recorded only"
            )
            if (cfg.cost or "none") != "none"
            else ""
        )
    )
    build_kwargs = {
        "input_shape": list(ds.input_shape),
        "num_classes": ds.num_classes,
        "num_cells": cfg.num_cells,
        "filters": cfg.filters,
    }
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
    chance = (
        advice.chance_level(ds.y_val if objective.startswith("val_") else ds.y_train)
        if accuracy_objective
        else None
    )
    reporter = reporting.SearchReporter(
        cfg.output_dir,
        describe,
        max_trials=cfg.max_trials,
        objective=objective,
        direction=direction,
        population_size=pop or cfg.max_trials,
        image=image,
        log=log,
        tensorboard=cfg.tensorboard,
        chance=(chance[0], advice.noise_threshold(*chance)) if chance else None,
        chance_hint=f"raise --epochs (now {epochs})",
    )
    tuner = make_tuner(cfg, hypermodel, reporter, strategy)
    resumed = reporting.trial_counts(tuner.oracle)
    if resumed["total"]:
        rerun = resumed["unfinished"]
        log(
            f"resuming the search in {os.path.join(cfg.output_dir, PROJECT_NAME)}: {resumed['finished']} trial(s) "
            f"finished ({resumed['completed']} completed, {resumed['finished'] - resumed['completed']} failed)"
            + (f"; {rerun} unfinished (interrupted) trial(s) will be re-run" if rerun else "")
        )
    train_ds = ds.pipeline("train", cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = ds.pipeline("val", cfg.batch_size)
    search_error = None
    # per-trial training curves: keras-tuner files them under tensorboard/trials/<trial id>/execution<k>
    # with the trial's hyperparameters for TensorBoard's HParams dashboard
    tb = (
        [
            keras.callbacks.TensorBoard(
                os.path.join(cfg.output_dir, "tensorboard", "trials"), write_graph=False
            )
        ]
        if cfg.tensorboard
        else []
    )
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
        warnings_.append(
            f"note: the time budget (--max_time={reporting.format_seconds(max_time)}) ended the search "
            f"after {counts['finished']} of {cfg.max_trials} trials; run the same command again to "
            "continue (with a fresh time budget)."
        )
    if chance is not None and advice.near_chance(best["score"], *chance):
        warnings_.append(
            advice.chance_warning(
                best["score"],
                chance[0],
                chance[1],
                len(ds.y_val if objective.startswith("val_") else ds.y_train),
                epochs,
            )
        )
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
        "data": {
            "description": ds.describe(),
            "input_shape": list(ds.input_shape),
            "num_classes": ds.num_classes,
        },
        "space": cfg.space,
        "space_kwargs": {
            "num_blocks": cfg.num_blocks,
            "ops": cfg.ops,
            "macro_layers": cfg.macro_layers,
        },
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
        "trials": {
            "total": len(records),
            "completed": sum(r["score"] is not None for r in records),
            "failed": sum(r["status"] not in ("COMPLETED", "STOPPED") for r in records),
            "stopped": sum(r["status"] == "STOPPED" for r in records),
        },
        "warnings": warnings_,
        # (score, cost) non-dominated trials when --cost is set: [{"trial_id", "score", "cost", "reward"}]
        "pareto_front": tuner.pareto_front() if (cfg.cost or "none") != "none" else [],
        "files": {
            "best_genotype": os.path.join(cfg.output_dir, BEST_GENOTYPE),
            "results": os.path.join(cfg.output_dir, reporting.RESULTS_CSV),
            "tensorboard": os.path.join(cfg.output_dir, "tensorboard"),
            "tuner": os.path.join(cfg.output_dir, PROJECT_NAME),
            "cells_png": png,
            **{f"best_model_{k}": v for k, v in model_paths.items()},
        },
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
