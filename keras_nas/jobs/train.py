"""The retraining job: ``keras-nas train`` and the second half of ``make demo``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from typing import Any, Callable, Optional

from keras_nas import families, rundir
from keras_nas.jobs import common
from keras_nas.rundir import BEST_GENOTYPE, JobError


@dataclasses.dataclass
class TrainConfig:
    """Retrain an architecture at final size. Field names are the ``keras-nas train`` flag names."""

    run_dir: str = "nas_run"
    genotype: str = ""  # empty: the run's best_genotype.json
    output_dir: str = ""  # empty: RUN_DIR/final
    data: str = ""  # empty: the run's dataset
    image_size: Optional[int] = None
    subset: Optional[int] = None
    epochs: int = 20
    num_cells: int = 2
    filters: int = 16
    drop_path: float = 0.1
    aux_head: bool = True
    augment: str = "none"  # opt-in: "shift", "flip" or "shift,flip" (keras_nas.data.AUGMENTATIONS)
    batch_size: int = 64
    learning_rate: float = 0.003
    strategy: str = "auto"
    seed: int = 0
    run_eagerly: bool = False


def _label_for_both_heads(x, y):
    """(image, label) -> (image, (label, label)) for a model with an auxiliary head."""
    return x, (y, y)


def check_train_config(cfg: TrainConfig) -> tuple:
    """``(architecture, run.json)`` of a retraining job, or :class:`JobError` naming the flag.
    Pure Python (the CLI calls it before TensorFlow is imported); nothing is written."""
    for name in ("epochs", "num_cells", "filters", "batch_size"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise JobError(f"--{name} must be a positive integer, got {v!r}.")
    from keras_nas.data import parse_augment

    parse_augment(cfg.augment)  # DataError naming --augment
    if not 0.0 <= cfg.drop_path < 1.0:
        raise JobError(f"--drop_path must be in [0, 1), got {cfg.drop_path!r}.")
    if cfg.output_dir or cfg.run_dir:  # the model goes to --output_dir, else RUN_DIR/final
        rundir.check_output_dir(
            cfg.output_dir or cfg.run_dir, "--output_dir" if cfg.output_dir else "--run_dir"
        )
    run = rundir.read_run(cfg.run_dir) if cfg.run_dir else {}
    if cfg.genotype:
        arch = rundir.load_architecture(cfg.genotype)
    elif cfg.run_dir and os.path.exists(os.path.join(cfg.run_dir, BEST_GENOTYPE)):
        arch = rundir.load_architecture(cfg.run_dir)
    else:
        raise JobError(
            f"--run_dir {cfg.run_dir!r} has no {BEST_GENOTYPE}; run `keras-nas search` first or pass "
            "--genotype."
        )
    return arch, run


def run_train(cfg: TrainConfig, log: Callable[[str], Any] = print) -> dict:
    """Train ``cfg.genotype`` (or the run's best) from scratch; save model, weights and ``train.json``."""
    t0 = time.time()
    arch, run = check_train_config(cfg)
    import keras

    from keras_nas import data as data_lib

    family = families.family_of(arch)
    rc = run.get("config", {})
    data_name = cfg.data or rc.get("data", "digits")
    image_size = cfg.image_size if cfg.image_size is not None else rc.get("image_size")
    subset = cfg.subset if cfg.subset is not None else rc.get("subset", 0)
    keras.utils.set_random_seed(cfg.seed)
    ds = data_lib.load_dataset(
        data_name,
        image_size=image_size,
        subset=subset,
        val_fraction=rc.get("val_fraction", 0.2),
        test_fraction=rc.get("test_fraction", 0.2),
        seed=rc.get("seed", cfg.seed),
    )
    try:
        family.check_input_size(ds.input_shape)
    except families.FamilyError as e:
        raise JobError(str(e)) from None
    log(f"data: {ds.describe()}")
    out = cfg.output_dir or os.path.join(cfg.run_dir or ".", "final")
    os.makedirs(out, exist_ok=True)
    train_ds = ds.pipeline(
        "train", cfg.batch_size, shuffle=True, seed=cfg.seed, augment=cfg.augment
    )
    steps = cfg.epochs * -(-len(ds.x_train) // cfg.batch_size)
    kind = family.name
    aux = cfg.aux_head and kind == "nasnet"
    build_kwargs = {
        "input_shape": list(ds.input_shape),
        "num_classes": ds.num_classes,
        "num_cells": cfg.num_cells,
        "filters": cfg.filters,
        "drop_path": cfg.drop_path if kind == "nasnet" else 0.0,
        "aux_head": aux,
        "drop_path_total_steps": steps if (kind == "nasnet" and cfg.drop_path) else None,
    }
    strategy = common.strategy(cfg.strategy)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = common.compile_model(
            family.build(arch, **build_kwargs), cfg.learning_rate, decay_steps=steps
        )
        model.run_eagerly = cfg.run_eagerly
    log(
        f"training {kind} architecture, N={cfg.num_cells} F={cfg.filters}, {model.count_params():,} params, "
        f"{cfg.epochs} epochs, drop_path={build_kwargs['drop_path']}, aux_head={aux}"
    )
    log(f"augmentation: {data_lib.describe_augment(cfg.augment)}")
    fit_ds = train_ds.map(_label_for_both_heads) if aux else train_ds
    val_ds = ds.pipeline("val", cfg.batch_size)
    fit_val = val_ds.map(_label_for_both_heads) if aux else val_ds
    tb = keras.callbacks.TensorBoard(os.path.join(out, "tensorboard"), write_graph=False)

    def progress(e, logs):
        val = next(
            (v for k, v in logs.items() if k.startswith("val_") and k.endswith("accuracy")),
            float("nan"),
        )
        log(
            f"[epoch {e + 1}/{cfg.epochs}] loss {logs.get('loss', float('nan')):.4f} val_acc {val:.4f} "
            f"| elapsed {time.time() - t0:.0f}s"
        )

    model.fit(
        fit_ds,
        validation_data=fit_val,
        epochs=cfg.epochs,
        verbose=0,
        callbacks=[tb, keras.callbacks.LambdaCallback(on_epoch_end=progress)],
    )
    val_acc, test_acc = (
        common.accuracy(model, val_ds),
        common.accuracy(model, ds.pipeline("test", cfg.batch_size)),
    )
    paths = rundir.save_model(model, out, "model", log)
    rundir.write_text(os.path.join(out, "genotype.json"), families.arch_to_json(arch))
    result = {
        "job": "train",
        "config": dataclasses.asdict(cfg),
        "architecture": str(arch),
        "space": kind,
        "build": build_kwargs,
        "data": {"description": ds.describe(), "name": data_name},
        "augment": list(data_lib.parse_augment(cfg.augment)),
        "val_accuracy": val_acc,
        "test_accuracy": test_acc,
        "params": int(model.count_params()),
        "files": {**paths, "genotype": os.path.join(out, "genotype.json")},
        "seconds": round(time.time() - t0, 1),
    }
    rundir.write_json(os.path.join(out, "train.json"), result)
    return result
