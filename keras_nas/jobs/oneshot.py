"""The one-shot search job: ``keras-nas search --controller=darts|drnas|gdas|enas|spos|supernet-evolution``.

Why a module of its own: a one-shot search trains one supernet instead of keras-tuner trials, so it
shares the search job's flags (:class:`~keras_nas.jobs.search.SearchConfig`), data loading and run
directory, but nothing of its tuner. ``jobs/search.py`` hands these controllers over here.

Flags, as the one-shot search reads them: ``--space`` nb201 (the NB201 cell) or nasnet (the DARTS
cell space: ``--num_blocks`` nodes per cell, ``--ops`` the candidates, ``none`` added as the
supernet's "edge off" op; ``--ops=darts`` is DARTS' own set); ``--epochs`` supernet epochs (default :data:`DEFAULT_EPOCHS`);
``--filters``/``--num_cells`` the supernet's C and N; ``--learning_rate`` Adam's (cosine to 0);
``--max_trials`` the children the final selection scores (spos, supernet-evolution, enas);
``--population_size``/``--sample_size`` supernet-evolution's P and S; ``--warmup_epochs`` the
epochs that train only the shared weights (default: half for enas); ``--run_eagerly`` runs the
steps untraced (tiny runs, tests).

The run directory (``--output_dir``) holds ``checkpoint.npz`` and ``oneshot.json`` (state and
trace, after every epoch: running the same command again resumes), ``best_genotype.json`` and
``run.json`` (so ``keras-nas train --run_dir=DIR`` retrains the derived cell on the same data),
and TensorBoard events under ``tensorboard/oneshot``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

from keras_nas import families, rundir
from keras_nas.jobs import common
from keras_nas.rundir import BEST_GENOTYPE, RUN_JSON, JobError

CONTROLLERS = ("darts", "drnas", "gdas", "enas", "spos", "supernet-evolution")
DEFAULT_EPOCHS = 20
# DARTS' architecture learning rate (3e-4) is made for ~20,000 steps (50 epochs of CIFAR-10); with a
# few hundred it leaves the architecture weights uniform (measured on the digits table: 0.20 +- 0.01
# after 90 steps), and 1e-2 worked there (benchmarks/README.md, weight-sharing section).
SMALL_RUN_STEPS = 2000
ARCH_LR_SMALL, ARCH_LR_DARTS = 1e-2, 3e-4


def arch_learning_rate(steps: int) -> float:
    """The architecture learning rate for a search of ``steps`` weight steps."""
    return ARCH_LR_SMALL if steps < SMALL_RUN_STEPS else ARCH_LR_DARTS


SPACE_OF = {"nb201": "nb201", "nasnet": "darts"}  # --space -> keras_nas.oneshot space


def check_oneshot_config(cfg) -> None:
    """Raise :class:`JobError` naming the flag for settings a one-shot search cannot use."""
    if cfg.space not in SPACE_OF:
        raise JobError(
            f"--controller={cfg.controller} searches --space=nb201 or --space=nasnet (the DARTS cell "
            f"space), not {cfg.space!r}; pass one of those, or use a trial-based --controller."
        )
    if cfg.proxy:
        raise JobError(
            f"--proxy applies to trial-based searches, not --controller={cfg.controller}; drop it."
        )
    if (cfg.early_stopping or "none") != "none":
        raise JobError(
            f"--early_stopping applies to trial-based searches, not --controller={cfg.controller}."
        )
    if (cfg.cost or "none") != "none":
        raise JobError(f"--cost is not supported by --controller={cfg.controller} yet; drop it.")
    epochs = cfg.epochs or DEFAULT_EPOCHS
    if cfg.warmup_epochs >= epochs:
        raise JobError(
            f"--warmup_epochs={cfg.warmup_epochs} must be smaller than the supernet's --epochs "
            f"({epochs}): the architecture is learnt only after the warm-up."
        )


def warmup_epochs(cfg, epochs: int) -> int:
    """``--warmup_epochs``, with -1 resolved: half the epochs for enas (its controller learns
    from shared weights that already mean something; measured on the digits table), else 0."""
    if cfg.warmup_epochs >= 0:
        return cfg.warmup_epochs
    return epochs // 2 if cfg.controller == "enas" else 0


def oneshot_ops(cfg):
    """The candidate ops of the DARTS cell space (``--space=nasnet``): ``--ops`` plus ``none`` (a
    child's unselected edges run it; derivation never keeps it); None for nb201 (all 5 NB201 ops).
    Raises ValueError for an unknown vocabulary or op."""
    if cfg.space != "nasnet":
        return None
    from keras_nas.space import ops as ops_lib

    vocab = ops_lib.resolve_vocabulary(cfg.ops.split(",") if "," in cfg.ops else cfg.ops)
    return vocab if ops_lib.NONE in vocab else (ops_lib.NONE, *vocab)


def run_oneshot(cfg, log: Callable[[str], Any] = print) -> dict:
    """Run (or resume) a one-shot search described by a ``SearchConfig``; returns the ``run.json`` summary."""
    check_oneshot_config(cfg)
    t0 = time.time()
    from keras_nas import data as data_lib
    from keras_nas import oneshot

    ds = data_lib.load_dataset(
        cfg.data,
        image_size=cfg.image_size,
        subset=cfg.subset,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        seed=cfg.seed,
    )
    family = families.get_family("nb201" if cfg.space == "nb201" else "nasnet")
    try:
        family.check_input_size(ds.input_shape)
    except families.FamilyError as e:
        raise JobError(str(e)) from None
    log(f"data: {ds.describe()}")
    os.makedirs(cfg.output_dir, exist_ok=True)
    if cfg.overwrite:
        for name in ("checkpoint.npz", "oneshot.json", BEST_GENOTYPE, RUN_JSON):
            path = os.path.join(cfg.output_dir, name)
            if os.path.exists(path):
                os.remove(path)
    epochs = cfg.epochs or DEFAULT_EPOCHS
    ops = oneshot_ops(cfg)
    steps = epochs * max(1, len(ds.y_train) // cfg.batch_size)
    arch_lr = arch_learning_rate(steps)
    warmup = warmup_epochs(cfg, epochs)
    log(
        f"one-shot {cfg.controller}: {epochs} supernet epochs ({warmup} of warm-up), {steps} steps, "
        f"architecture learning rate {arch_lr:g}"
    )
    try:
        r = oneshot.search(
            ds.x_train,
            ds.y_train,
            ds.x_val,
            ds.y_val,
            space=SPACE_OF[cfg.space],
            strategy=cfg.controller,
            epochs=epochs,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            channels=cfg.filters,
            num_cells=cfg.num_cells,
            num_blocks=cfg.num_blocks,
            ops=ops,
            num_classes=ds.num_classes,
            optimizer="adam",
            learning_rate=cfg.learning_rate,
            learning_rate_min=0.0,
            arch_learning_rate=arch_lr,
            warmup_epochs=warmup,
            num_samples=cfg.max_trials,
            population_size=cfg.population_size,
            sample_size=cfg.sample_size,
            directory=cfg.output_dir,
            distribute=common.strategy(cfg.strategy),
            run_eagerly=cfg.run_eagerly,
            tensorboard=cfg.tensorboard,
            log=log,
        )
    except oneshot.OneShotError as e:
        raise JobError(f"{e} (--output_dir={cfg.output_dir}; --overwrite starts afresh)") from None
    arch = r.architecture
    summary = {
        "job": "oneshot",
        "config": dataclasses.asdict(cfg),
        "epochs": epochs,
        "data": {
            "description": ds.describe(),
            "input_shape": list(ds.input_shape),
            "num_classes": ds.num_classes,
        },
        "space": family.name,
        "build": {
            "input_shape": list(ds.input_shape),
            "num_classes": ds.num_classes,
            "num_cells": cfg.num_cells,
            "filters": cfg.filters,
        },
        "best": {
            "architecture": str(arch),
            "search_val_accuracy": r.val_accuracy,
            "note": "accuracy of the derived cell with the supernet's shared weights",
        },
        "oneshot": {
            "strategy": cfg.controller,
            "epochs_trained": r.epochs,
            "epochs_this_run": r.epochs_this_run,
            "total_seconds": r.total_seconds,
            "candidates": r.candidates[:20],
        },
        "files": {
            "best_genotype": os.path.join(cfg.output_dir, BEST_GENOTYPE),
            "state": os.path.join(cfg.output_dir, "oneshot.json"),
            "checkpoint": os.path.join(cfg.output_dir, "checkpoint.npz"),
            "tensorboard": os.path.join(cfg.output_dir, "tensorboard"),
        },
        "seconds": round(time.time() - t0, 1),
    }
    rundir.write_json(os.path.join(cfg.output_dir, RUN_JSON), summary)
    return summary


def summary_text(s: dict) -> str:
    from keras_nas import visualize
    from keras_nas.jobs import advice

    out, files = s["config"]["output_dir"], s["files"]
    arch = rundir.load_architecture(files["best_genotype"])
    nas = advice.command("keras-nas", "keras_nas.cli")
    o = s["oneshot"]
    return "\n".join(
        [
            "",
            f"== one-shot search ({o['strategy']}) finished: {o['epochs_trained']} supernet epoch(s), "
            f"{o['total_seconds']:.0f}s in total ==",
            visualize.architecture_text(arch),
            f"derived cell: shared-weight search val_accuracy {s['best']['search_val_accuracy']:.4f} "
            "(retrain it for its real accuracy)",
            "written:",
            *(f"  {k:18s} {v}" for k, v in files.items()),
            f"  {'run summary':18s} {os.path.join(out, RUN_JSON)}",
            "next:",
            f"  {advice.command('tensorboard', 'tensorboard.main')} --logdir {files['tensorboard']}",
            f"  {nas} train --run_dir={out}          # retrain the derived cell",
            f"  {nas} show {out}",
        ]
    )
