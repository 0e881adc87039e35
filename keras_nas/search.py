"""The search and retraining jobs as plain Python functions (used by the CLI and the demo).

Why a module of its own: ``keras-nas search`` / ``train``, ``make demo`` and notebooks
must run the same job, write the same files and resume the same way. A job is described
by a dataclass (:class:`SearchConfig`, :class:`TrainConfig`); flags map onto its fields.

Run directory layout (``SearchConfig.output_dir``)::

    run.json               what was run (config, data, build settings) and the result
    best_genotype.json     the winning architecture (keras-nas genotype JSON)
    best_model.keras       the winning search network, weights from its search training
    best_model.weights.h5
    best_cells.png         the winning cells
    results.csv/.json      every trial (see keras_nas.reporting)
    tensorboard/search/    TensorBoard events
    tuner/                 the keras-tuner project: running the same command again resumes it
    final/                 written by ``keras-nas train`` (TrainConfig)
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Mapping, Optional

from keras_nas.space import Genotype, MacroArchitecture, MacroSpace, NASNetCellSpace, NB201Cell, NB201Space

SPACES = ("nasnet", "nb201", "macro")
CONTROLLERS = ("evolution", "reinforce", "random")
PROJECT_NAME = "tuner"
RUN_JSON = "run.json"
BEST_GENOTYPE = "best_genotype.json"
OBJECTIVE = "val_accuracy"
MACRO_KWARGS = {"filters": (8, 16, 24, 32), "skip_connections": True}  # small: searches run on CPUs too


class JobError(ValueError):
    """A job cannot run as configured; the message names the setting (flag) and the fix."""


# -- spaces and architectures -----------------------------------------------------------------

def make_space(name: str, *, num_blocks: int = 5, ops: str = "amoebanet", macro_layers: int = 6):
    if name == "nasnet":
        return NASNetCellSpace(num_blocks=num_blocks, ops=ops.split(",") if "," in ops else ops)
    if name == "nb201":
        return NB201Space()
    if name == "macro":
        return MacroSpace(num_layers=macro_layers, **MACRO_KWARGS)
    raise JobError(f"space must be one of {list(SPACES)}, got {name!r}.")


def space_of(arch) -> str:
    if isinstance(arch, Genotype):
        return "nasnet"
    if isinstance(arch, NB201Cell):
        return "nb201"
    if isinstance(arch, MacroArchitecture):
        return "macro"
    raise JobError(f"Not an architecture: {type(arch).__name__}.")


def arch_to_json(arch) -> str:
    """JSON of any architecture kind (genotypes use keras-nas's versioned genotype format)."""
    if isinstance(arch, Genotype):
        return arch.to_json(indent=1)
    if isinstance(arch, NB201Cell):
        return json.dumps({"format": "keras-nas/nb201", "version": 1, "cell": str(arch)}, indent=1)
    return arch.to_json()


def _macro_parse(s: str) -> MacroArchitecture:
    layers = []
    for i, part in enumerate(s.strip().split(";")):
        body, _, skips = part.partition("<")
        f, _, rest = body.partition("x")
        k, _, st = rest.partition("s")
        try:
            layers.append((int(f), int(k), int(st), tuple(int(j) for j in skips.split(",") if j)))
        except ValueError:
            raise ValueError(f"macro layer {i} {part!r} is not FILTERSxKERNELsSTRIDE[<SKIP,...], e.g. '24x3s1' "
                             "or '36x5s2<0'.") from None
    return MacroArchitecture(layers)


def load_architecture(spec: str):
    """An architecture from a run directory, a JSON file, a zoo name or a string of any kind.

    Strings: NASNet genotype (``normal=...;reduce=...``), NB201 (``|op~0|+...``), macro
    (``24x3s1;36x5s2<0``) or JSON.
    """
    from keras_nas import zoo
    from keras_nas.space import load_genotype

    spec = str(spec).strip()
    if os.path.isdir(spec):
        path = os.path.join(spec, BEST_GENOTYPE)
        if not os.path.exists(path):
            raise JobError(f"{spec} is a directory without {BEST_GENOTYPE}; is it a keras-nas search output directory?")
        spec = path
    if os.path.isfile(spec):
        with open(spec, encoding="utf-8") as f:
            text = f.read().strip()
    else:
        text = spec
    key = text.lower().replace("-", "_")
    if key in zoo.GENOTYPES:
        return zoo.get(key)
    try:
        if text.startswith("{"):
            d = json.loads(text)
            fmt = d.get("format", "") if isinstance(d, dict) else ""
            if fmt == "keras-nas/nb201":
                return NB201Cell.parse(d["cell"])
            if fmt == "keras-nas/macro":
                return MacroArchitecture.from_json(text)
            return load_genotype(text)
        if text.startswith("|"):
            return NB201Cell.parse(text)
        if "normal=" in text or "reduce=" in text:
            return Genotype.parse(text).validate()
        if text[:1].isdigit() and "x" in text:
            return _macro_parse(text)
    except (ValueError, KeyError, TypeError) as e:  # GenotypeError / SpaceError are ValueErrors
        raise JobError(f"Cannot read architecture {spec[:80]!r}: {e}") from None
    raise JobError(
        f"Cannot read architecture {spec[:80]!r}: not a run directory, file, zoo name ({sorted(zoo.GENOTYPES)}), "
        "genotype string ('normal=...;reduce=...'), NB201 string ('|op~0|+...') or macro string ('24x3s1;...')."
    )


def builder_call(arch, *, input_shape, num_classes, num_cells=1, filters=8, drop_path=0.0, aux_head=False,
                 drop_path_total_steps=None):
    """``(name of the keras_nas.blocks.network builder, its keyword arguments)`` for ``arch``.

    The one place that maps run settings to builder arguments: :func:`build_model` and the
    standalone file written by ``keras-nas export`` both use it, so they build the same network.
    """
    kind = space_of(arch)
    base = {"input_shape": [int(d) for d in input_shape], "num_classes": int(num_classes)}
    if kind == "nasnet":
        return "build_network", {**base, "num_cells": num_cells, "filters": filters, "stem": "cifar",
                                 "drop_path": float(drop_path), "drop_path_total_steps": drop_path_total_steps,
                                 "aux_head": bool(aux_head)}
    if kind == "nb201":
        return "build_nb201_network", {**base, "channels": filters, "num_cells": num_cells}
    return "build_macro_network", base


def build_model(arch, **build_kwargs):
    """A Keras model (softmax output; with ``aux_head`` a second, auxiliary output) for ``arch``."""
    from keras_nas.blocks import network

    name, kwargs = builder_call(arch, **build_kwargs)
    kwargs["input_shape"] = tuple(kwargs["input_shape"])
    return getattr(network, name)(arch, **kwargs)


def compile_model(model, learning_rate, decay_steps: Optional[int] = None):
    """Adam (cosine-decayed over ``decay_steps`` when given), sparse CE; 0.4-weighted aux loss."""
    import keras

    lr = learning_rate
    if decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    n_out = len(model.outputs)
    loss = ["sparse_categorical_crossentropy"] * n_out if n_out > 1 else "sparse_categorical_crossentropy"
    metrics = [["accuracy"]] + [[] for _ in range(n_out - 1)] if n_out > 1 else ["accuracy"]
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=metrics,
                  loss_weights=[1.0] + [0.4] * (n_out - 1) if n_out > 1 else None, jit_compile=False)
    return model


def accuracy(model, ds) -> float:
    """Top-1 accuracy of ``model``'s main output on a batched ``(x, y)`` dataset."""
    import numpy as np

    correct = total = 0
    for x, y in ds:
        p = model(x, training=False)
        if isinstance(p, (list, tuple)):
            p = p[0]
        correct += int(np.sum(np.argmax(np.asarray(p), -1) == np.asarray(y)))
        total += int(len(y))
    return correct / max(total, 1)


# -- the search job -------------------------------------------------------------------------------

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
    output_dir: str = "nas_run"
    strategy: str = "auto"
    seed: int = 0
    overwrite: bool = False
    tensorboard: bool = True
    run_eagerly: bool = False  # skip tf.function tracing: faster for a handful of steps (tests)


def _strategy(name: str):
    from keras_nas.distribute import resolve_strategy

    s = resolve_strategy(name)
    return None if type(s).__name__ == "_DefaultDistributionStrategy" else s


def _make_hypermodel(cfg: "SearchConfig", input_shape, num_classes):
    """keras-nas's HyperModel for the space; builds the same networks as :func:`build_model`."""
    from keras_nas.controllers import hypermodels as hm

    common = dict(learning_rate=cfg.learning_rate)
    if cfg.space == "nasnet":
        return hm.NASNetHyperModel(input_shape, num_classes, num_cells=cfg.num_cells, filters=cfg.filters,
                                   num_blocks=cfg.num_blocks, ops=cfg.ops.split(",") if "," in cfg.ops else cfg.ops, **common)
    if cfg.space == "nb201":
        return hm.NB201HyperModel(input_shape, num_classes, channels=cfg.filters, num_cells=cfg.num_cells, **common)
    return hm.MacroHyperModel(input_shape, num_classes, **MACRO_KWARGS, num_layers=cfg.macro_layers, **common)


def _make_tuner(cfg: SearchConfig, hypermodel, reporter, strategy):
    """keras-nas's tuner for ``cfg.controller``, extended to measure cost and report every trial."""
    import keras_tuner as kt
    from keras_nas.controllers import tuners

    bases = {"evolution": tuners.AgingEvolution, "reinforce": tuners.ReinforceSearch,
             "random": tuners.RandomArchitectureSearch}
    if cfg.controller not in bases:
        raise JobError(f"--controller must be one of {list(CONTROLLERS)}, got {cfg.controller!r}.")
    extra = {}
    if cfg.controller == "evolution":
        extra = {"population_size": cfg.population_size or None, "sample_size": cfg.sample_size or None}

    class ReportingTuner(bases[cfg.controller]):
        """The controller's tuner plus cost measurement and reporting after each trial."""

        def _try_build(self, hp):
            model = super()._try_build(hp)
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


def check_output_dir(path: str, flag: str = "--output_dir"):
    """Raise :class:`JobError` unless ``path`` is (or can be made as) a writable directory."""
    if not path or not str(path).strip():
        raise JobError(f"{flag} must not be empty; pass a directory, e.g. {flag}=runs/a.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise JobError(f"{flag} {path!r} is a file, not a directory; pass a directory (new or existing).")
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)  # the nearest existing ancestor: where the directory would be made
    if not os.path.isdir(probe):
        raise JobError(f"{flag} {path!r} cannot be made: {probe!r} is a file.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise JobError(f"{flag} {path!r}: {probe!r} is not writable; pass a directory you can write to.")


def check_input_size(space: str, input_shape, flag: str = "--image_size"):
    """Raise :class:`JobError` when the space's network cannot take ``input_shape`` (its reductions)."""
    h, w = int(input_shape[0]), int(input_shape[1])
    if space in ("nasnet", "nb201") and min(h, w) < 4:
        raise JobError(f"{flag}: {h}x{w} images are too small for the {space} network's two reductions; "
                       f"it needs height and width >= 4 (set {flag}=8 or more).")
    if space == "nb201" and (h % 4 or w % 4):
        raise JobError(f"{flag}: the nb201 network's two stride-2 residual blocks need a height and width divisible "
                       f"by 4, got {h}x{w}; set {flag} to a multiple of 4 (e.g. 8, 16, 32).")


# settings that define what a saved search searched: resuming it with others would mix or break it
RESUME_KEYS = ("space", "controller", "num_blocks", "ops", "macro_layers", "num_cells", "filters", "data", "image_size")


def check_resume(cfg: "SearchConfig"):
    """Raise :class:`JobError` when ``cfg`` would resume a finished search in ``output_dir`` with a
    different space, controller, search network or data (nothing is written then)."""
    if cfg.overwrite:
        return
    saved = read_run(cfg.output_dir).get("config", {})
    diff = [(k, saved[k], getattr(cfg, k)) for k in RESUME_KEYS if k in saved and saved[k] != getattr(cfg, k)]
    if diff:
        what = ", ".join(f"--{k}={new!r} (saved run: {old!r})" for k, old, new in diff)
        raise JobError(
            f"--output_dir {cfg.output_dir!r} holds a search run with other settings: {what}. Resuming would mix "
            "incompatible trials; use the saved values, a new --output_dir, or --overwrite to start afresh."
        )


def check_search_config(cfg: SearchConfig):
    """Raise :class:`JobError` naming the flag for values the flag parser cannot check alone."""
    check_output_dir(cfg.output_dir)
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
        make_space(cfg.space, num_blocks=cfg.num_blocks, ops=cfg.ops, macro_layers=cfg.macro_layers)
    except ValueError as e:
        raise JobError(f"--ops={cfg.ops}: {e}") from None


def _save_model(model, directory: str, stem: str, log) -> dict:
    paths = {"weights": os.path.join(directory, f"{stem}.weights.h5")}
    model.save_weights(paths["weights"])
    try:
        paths["keras"] = os.path.join(directory, f"{stem}.keras")
        model.save(paths["keras"])
    except Exception as e:  # a custom layer that cannot be serialised: the weights still are
        log(f"warning: could not save {stem}.keras ({e}); the weights file and genotype rebuild it.")
        paths.pop("keras")
    return paths


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
    check_input_size(cfg.space, ds.input_shape)
    log(f"data: {ds.describe()}")
    hypermodel = _make_hypermodel(cfg, ds.input_shape, ds.num_classes)
    space = hypermodel.space
    log(f"space: {cfg.space}, {len(space)} decisions, {space.size:.3g} assignments; controller: {cfg.controller}; "
        f"{cfg.max_trials} trials of {cfg.epochs} epoch(s), N={cfg.num_cells} F={cfg.filters}")
    build_kwargs = {"input_shape": list(ds.input_shape), "num_classes": ds.num_classes, "num_cells": cfg.num_cells,
                    "filters": cfg.filters}
    os.makedirs(cfg.output_dir, exist_ok=True)
    strategy = _strategy(cfg.strategy)

    def describe(values):
        return str(space.decode({d.name: values[d.name] for d in space.decisions}))

    def image(values):
        return visualize.architecture_png(space.decode({d.name: values[d.name] for d in space.decisions}))

    pop = cfg.population_size
    if not pop and cfg.controller == "evolution":
        from keras_nas.controllers.oracles import default_population_size

        pop = default_population_size(cfg.max_trials)
    reporter = reporting.SearchReporter(cfg.output_dir, describe, max_trials=cfg.max_trials, objective=OBJECTIVE,
                                        population_size=pop or cfg.max_trials, image=image, log=log,
                                        tensorboard=cfg.tensorboard)
    tuner = _make_tuner(cfg, hypermodel, reporter, strategy)
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

    arch = space.decode({d.name: best["hyperparameters"][d.name] for d in space.decisions})
    with open(os.path.join(cfg.output_dir, BEST_GENOTYPE), "w", encoding="utf-8") as f:
        f.write(arch_to_json(arch))
    model = tuner.get_best_models(1)[0]
    test_ds = ds.pipeline("test", cfg.batch_size)
    val_acc, test_acc = accuracy(model, val_ds), accuracy(model, test_ds)
    model_paths = _save_model(model, cfg.output_dir, "best_model", log)
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
        "files": {"best_genotype": os.path.join(cfg.output_dir, BEST_GENOTYPE), "results": os.path.join(cfg.output_dir, reporting.RESULTS_CSV),
                  "tensorboard": os.path.join(cfg.output_dir, "tensorboard"), "tuner": os.path.join(cfg.output_dir, PROJECT_NAME),
                  "cells_png": png, **{f"best_model_{k}": v for k, v in model_paths.items()}},
        "seconds": round(time.time() - t0, 1),
        "search_error": search_error,
    }
    with open(os.path.join(cfg.output_dir, RUN_JSON), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary


def search_summary_text(s: dict) -> str:
    from keras_nas import visualize

    b, files, out = s["best"], s["files"], s["config"]["output_dir"]
    arch = load_architecture(files["best_genotype"])
    lines = [
        "",
        f"== search finished in {s['seconds']:.0f}s: {s['trials']['completed']} completed, {s['trials']['failed']} failed trial(s) ==",
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


# -- the retraining job -------------------------------------------------------------------------

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
    augment: bool = True
    batch_size: int = 64
    learning_rate: float = 0.003
    strategy: str = "auto"
    seed: int = 0
    run_eagerly: bool = False


def _label_for_both_heads(x, y):
    """(image, label) -> (image, (label, label)) for a model with an auxiliary head."""
    return x, (y, y)


def read_run(run_dir: str) -> dict:
    path = os.path.join(run_dir, RUN_JSON)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, ValueError) as e:
        raise JobError(f"{path} is unreadable ({e}); restore it from a backup, or start afresh (--overwrite or a "
                       "new directory).") from None
    if not isinstance(run, dict):
        raise JobError(f"{path} does not hold a JSON object (is it a keras-nas run.json?).")
    return run


def run_train(cfg: TrainConfig, log: Callable[[str], Any] = print) -> dict:
    """Train ``cfg.genotype`` (or the run's best) from scratch; save model, weights and ``train.json``."""
    import keras

    from keras_nas import data as data_lib

    for name in ("epochs", "num_cells", "filters", "batch_size"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise JobError(f"--{name} must be a positive integer, got {v!r}.")
    if not 0.0 <= cfg.drop_path < 1.0:
        raise JobError(f"--drop_path must be in [0, 1), got {cfg.drop_path!r}.")
    if cfg.output_dir or cfg.run_dir:  # the model goes to --output_dir, else RUN_DIR/final
        check_output_dir(cfg.output_dir or cfg.run_dir, "--output_dir" if cfg.output_dir else "--run_dir")
    t0 = time.time()
    run = read_run(cfg.run_dir) if cfg.run_dir else {}
    if cfg.genotype:
        arch = load_architecture(cfg.genotype)
    elif cfg.run_dir and os.path.exists(os.path.join(cfg.run_dir, BEST_GENOTYPE)):
        arch = load_architecture(cfg.run_dir)
    else:
        raise JobError(f"--run_dir {cfg.run_dir!r} has no {BEST_GENOTYPE}; run `keras-nas search` first or pass --genotype.")
    rc = run.get("config", {})
    data_name = cfg.data or rc.get("data", "digits")
    image_size = cfg.image_size if cfg.image_size is not None else rc.get("image_size")
    subset = cfg.subset if cfg.subset is not None else rc.get("subset", 0)
    keras.utils.set_random_seed(cfg.seed)
    ds = data_lib.load_dataset(data_name, image_size=image_size, subset=subset,
                               val_fraction=rc.get("val_fraction", 0.2), test_fraction=rc.get("test_fraction", 0.2),
                               seed=rc.get("seed", cfg.seed))
    check_input_size(space_of(arch), ds.input_shape)
    log(f"data: {ds.describe()}")
    out = cfg.output_dir or os.path.join(cfg.run_dir or ".", "final")
    os.makedirs(out, exist_ok=True)
    train_ds = ds.pipeline("train", cfg.batch_size, shuffle=True, seed=cfg.seed, augment=cfg.augment)
    steps = cfg.epochs * -(-len(ds.x_train) // cfg.batch_size)
    kind = space_of(arch)
    aux = cfg.aux_head and kind == "nasnet"
    build_kwargs = {"input_shape": list(ds.input_shape), "num_classes": ds.num_classes, "num_cells": cfg.num_cells,
                    "filters": cfg.filters, "drop_path": cfg.drop_path if kind == "nasnet" else 0.0, "aux_head": aux,
                    "drop_path_total_steps": steps if (kind == "nasnet" and cfg.drop_path) else None}
    strategy = _strategy(cfg.strategy)
    import contextlib

    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = compile_model(build_model(arch, **build_kwargs), cfg.learning_rate, decay_steps=steps)
        model.run_eagerly = cfg.run_eagerly
    log(f"training {kind} architecture, N={cfg.num_cells} F={cfg.filters}, {model.count_params():,} params, "
        f"{cfg.epochs} epochs, drop_path={build_kwargs['drop_path']}, aux_head={aux}")
    fit_ds = train_ds.map(_label_for_both_heads) if aux else train_ds
    val_ds = ds.pipeline("val", cfg.batch_size)
    fit_val = val_ds.map(_label_for_both_heads) if aux else val_ds
    tb = keras.callbacks.TensorBoard(os.path.join(out, "tensorboard"), write_graph=False)
    progress = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: log(
        f"[epoch {e + 1}/{cfg.epochs}] loss {logs.get('loss', float('nan')):.4f} "
        f"val_acc {next((v for k, v in logs.items() if k.startswith('val_') and k.endswith('accuracy')), float('nan')):.4f} "
        f"| elapsed {time.time() - t0:.0f}s"))
    model.fit(fit_ds, validation_data=fit_val, epochs=cfg.epochs, verbose=0, callbacks=[tb, progress])
    val_acc, test_acc = accuracy(model, val_ds), accuracy(model, ds.pipeline("test", cfg.batch_size))
    paths = _save_model(model, out, "model", log)
    with open(os.path.join(out, "genotype.json"), "w", encoding="utf-8") as f:
        f.write(arch_to_json(arch))
    result = {
        "job": "train", "config": dataclasses.asdict(cfg), "architecture": str(arch), "space": kind,
        "build": build_kwargs, "data": {"description": ds.describe(), "name": data_name},
        "val_accuracy": val_acc, "test_accuracy": test_acc, "params": int(model.count_params()),
        "files": {**paths, "genotype": os.path.join(out, "genotype.json")}, "seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(out, "train.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return result
