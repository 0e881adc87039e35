"""The flags of each ``keras-nas`` subcommand: one absl ``FlagValues`` factory per subcommand.

Why a module of its own: the definitions are long tables of names, defaults, bounds and help
text; :mod:`keras_nas.cli` keeps what the command does with them (parsing, help, running the
subcommand). Defaults come from the jobs' config dataclasses and several help texts from the
jobs' own tables (imported inside each factory, when its subcommand is parsed), so the flags and
the jobs do not drift apart. The checks made while parsing are :mod:`keras_nas.cli_checks`.
"""

from __future__ import annotations

from absl import flags

STRATEGY_HELP = (
    "tf.distribute strategy: auto (TPU/multi-GPU if present), default, mirrored, tpu, cpu:N."
)


def _strategy_ok(v: str) -> bool:
    v = (v or "").strip().lower()
    return v in ("auto", "tpu", "mirrored", "default") or (
        v.startswith("cpu:") and v[4:].isdigit() and int(v[4:]) > 0
    )


def _check_strategy(fv: flags.FlagValues):
    flags.register_validator(
        "strategy",
        _strategy_ok,
        message="must be auto, default, mirrored, tpu or cpu:N (N > 0)",
        flag_values=fv,
    )


def search_flags() -> flags.FlagValues:
    from keras_nas.jobs.search_config import (
        CONTROLLERS,
        EARLY_STOPPING,
        PROXIES,
        SPACES,
        SearchConfig,
    )

    d = SearchConfig()
    fv = flags.FlagValues()
    flags.DEFINE_enum(
        "space",
        d.space,
        SPACES,
        "Search space: NASNet/AmoebaNet cells, NAS-Bench-201 cell, or macro CNN.",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "controller",
        d.controller,
        CONTROLLERS,
        "Search algorithm: trial-based aging evolution, REINFORCE, predictor-guided (BANANAS-style) "
        "or random; or one-shot (one weight-sharing supernet, --space=nb201 or nasnet = the DARTS "
        "cell space; docs/oneshot.md): darts, drnas, gdas, enas, spos, supernet-evolution.",
        flag_values=fv,
    )
    from keras_nas.data import NPZ_HELP

    flags.DEFINE_string(
        "data",
        d.data,
        "Dataset: 'digits' (embedded, offline), PATH.npz, cifar10, cifar100, mnist, "
        "fashion_mnist, or a TensorFlow Datasets name (tfds:NAME). " + NPZ_HELP,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "image_size",
        None,
        "Side of the square network input (images are resized); default: "
        "native size, 16 for digits (8x8 upsampled).",
        lower_bound=4,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "subset",
        d.subset,
        "Use at most this many training images (0 = all); validation/test "
        "keep at most half as many.",
        lower_bound=0,
        flag_values=fv,
    )
    flags.DEFINE_float(
        "val_fraction",
        d.val_fraction,
        "Fraction of training data held out for search-validation "
        "(when the data has no validation split).",
        lower_bound=0.01,
        upper_bound=0.9,
        flag_values=fv,
    )
    flags.DEFINE_float(
        "test_fraction",
        d.test_fraction,
        "Fraction held out as the test split (when the data has none); never used by the search.",
        lower_bound=0.01,
        upper_bound=0.9,
        flag_values=fv,
    )
    from keras_nas.jobs.advice import MAX_AUTO_EPOCHS, MIN_PROXY_STEPS

    flags.DEFINE_integer(
        "epochs",
        d.epochs,
        "Proxy training epochs per trial; default: from the data size, enough "
        f"for {MIN_PROXY_STEPS} optimizer steps (ceil({MIN_PROXY_STEPS} / steps per epoch)), 1 to "
        f"{MAX_AUTO_EPOCHS}.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "num_cells",
        d.num_cells,
        "N: normal cells per stack of the search network.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "filters",
        d.filters,
        "F: filters of the first stack of the search network.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "num_blocks",
        d.num_blocks,
        "B: blocks per cell (nasnet space).",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_string(
        "ops",
        d.ops,
        "Op vocabulary (nasnet space): amoebanet, nasnet, darts, enas, or a "
        "comma-separated list of op names.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "macro_layers",
        d.macro_layers,
        "Conv layers of the macro space.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "batch_size",
        d.batch_size,
        "Batch size of the proxy training.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_float(
        "learning_rate",
        d.learning_rate,
        "Adam learning rate of the proxy training.",
        lower_bound=0.0,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "max_trials",
        d.max_trials,
        "Architectures to train (total, including resumed ones).",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "early_stopping",
        d.early_stopping,
        EARLY_STOPPING,
        "Stop hopeless trials from per-epoch "
        "val_accuracy: median (below the median of other trials at the same epoch) or asha "
        "(successive halving: rungs at E, E*eta, ... epochs). Stopped trials are recorded as STOPPED.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "early_stopping_epochs",
        d.early_stopping_epochs,
        "median: grace epochs before any stop; asha: epochs E at the first rung.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "early_stopping_eta",
        d.early_stopping_eta,
        "asha: the top 1/eta at each rung continue.",
        lower_bound=2,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "population_size",
        d.population_size,
        "Aging evolution P (0 = from --max_trials: "
        "max(max_trials // 5, min(max_trials // 2, 15)), 2 to 100; measured on NAS-Bench-201).",
        lower_bound=0,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "warmup_epochs",
        d.warmup_epochs,
        "One-shot controllers: first epochs that train only the shared weights, on uniformly "
        "sampled children (-1 = auto: half the epochs for enas, where it was measured to help, "
        "0 for the others).",
        lower_bound=-1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "sample_size",
        d.sample_size,
        "Aging evolution tournament size S (0 = P // 2 up to 100 trials, else ceil(P / 4)).",
        lower_bound=0,
        flag_values=fv,
    )
    from keras_nas.jobs.search_config import COST_HELP, COSTS, OBJECTIVES

    flags.DEFINE_string(
        "objective",
        d.objective,
        f"Metric the search optimises: {', '.join(OBJECTIVES)}, optionally "
        "NAME:min or NAME:max (default direction: min for losses, max for accuracies).",
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "cost",
        d.cost,
        COSTS,
        "Cost measured for every trial: "
        + "; ".join(f"{k}: {v}" for k, v in COST_HELP.items())
        + ". With --cost_target it shapes the reward (MnasNet: "
        "objective * (cost / target) ** cost_weight); without, it is recorded and gives the Pareto front.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "cost_target",
        d.cost_target,
        "MnasNet target T, in the unit of --cost (params, mult-adds, milliseconds); needs --cost.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "cost_weight",
        d.cost_weight,
        "MnasNet exponent w (soft constraint: -0.07; 0 ignores the cost).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "max_time",
        d.max_time,
        "Wall-clock budget of this invocation: 3600 (seconds), 90s, 30m, 2h, "
        "1h30m. No trial starts after it; the running one finishes. Running the same command again "
        "resumes with a fresh budget. Default: none.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "reinforce_learning_rate",
        None,
        "REINFORCE controller: Adam learning rate (default 0.0035).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "reinforce_batch_size",
        None,
        "REINFORCE controller: finished trials per policy update (default 10).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "reinforce_baseline_decay",
        None,
        "REINFORCE controller: EMA decay of the reward baseline (default 0.95).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "reinforce_entropy_weight",
        None,
        "REINFORCE controller: entropy bonus weight (default 1e-5).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "proxy",
        d.proxy,
        f"Zero-cost proxy for a proxy-assisted search: {', '.join(PROXIES)} "
        "(warm-up and ranked proposals; empty = none).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "proxy_samples",
        d.proxy_samples,
        "Architectures the proxy scores in the warm-up (0 = the oracle's default).",
        lower_bound=0,
        flag_values=fv,
    )
    flags.DEFINE_string(
        "output_dir",
        d.output_dir,
        "Run directory: tuner project, results, TensorBoard logs, best model.",
        flag_values=fv,
    )
    flags.DEFINE_string("strategy", d.strategy, STRATEGY_HELP, flag_values=fv)
    flags.DEFINE_integer(
        "seed", d.seed, "Seed of data splits, controller and weights.", flag_values=fv
    )
    flags.DEFINE_boolean(
        "overwrite",
        d.overwrite,
        "Start afresh instead of resuming the project in output_dir.",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "tensorboard",
        d.tensorboard,
        "Write TensorBoard logs under output_dir/tensorboard.",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "run_eagerly",
        False,
        "Train without tf.function (no tracing): faster when a trial has only "
        "a few steps (tiny smoke tests), slower otherwise.",
        flag_values=fv,
    )
    _check_strategy(fv)
    return fv


def train_flags() -> flags.FlagValues:
    from keras_nas.jobs.train import TrainConfig

    d = TrainConfig()
    fv = flags.FlagValues()
    flags.DEFINE_string(
        "run_dir",
        d.run_dir,
        "Search output directory (its best_genotype.json and data settings are used).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "genotype",
        d.genotype,
        "Architecture to train instead of the run's best: genotype string, "
        "JSON file, zoo name (nasnet_a, amoebanet_a, darts_v2, enas) or a run directory.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "output_dir",
        d.output_dir,
        "Where to save the trained model (default RUN_DIR/final).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "data",
        d.data,
        "Dataset (default: the run's); same forms as `search --data`.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "image_size",
        None,
        "Network input side (default: the run's).",
        lower_bound=4,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "subset",
        None,
        "Training images to use (default: the run's; 0 = all).",
        lower_bound=0,
        flag_values=fv,
    )
    flags.DEFINE_integer("epochs", d.epochs, "Training epochs.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer(
        "num_cells",
        d.num_cells,
        "N: normal cells per stack of the final network.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "filters",
        d.filters,
        "F: filters of the first stack of the final network.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_float(
        "drop_path",
        d.drop_path,
        "Maximum scheduled drop-path probability (0 disables).",
        lower_bound=0.0,
        upper_bound=0.99,
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "aux_head",
        d.aux_head,
        "Train with the auxiliary head (loss weight 0.4; nasnet space).",
        flag_values=fv,
    )
    from keras_nas.data import AUGMENT_HELP

    flags.DEFINE_string("augment", d.augment, AUGMENT_HELP, flag_values=fv)
    flags.DEFINE_integer("batch_size", d.batch_size, "Batch size.", lower_bound=1, flag_values=fv)
    flags.DEFINE_float(
        "learning_rate",
        d.learning_rate,
        "Initial Adam learning rate (cosine decay to 0).",
        lower_bound=0.0,
        flag_values=fv,
    )
    flags.DEFINE_string("strategy", d.strategy, STRATEGY_HELP, flag_values=fv)
    flags.DEFINE_integer("seed", d.seed, "Seed of weights and data order.", flag_values=fv)
    flags.DEFINE_boolean(
        "run_eagerly",
        False,
        "Train without tf.function (no tracing; for tiny smoke tests).",
        flag_values=fv,
    )
    _check_strategy(fv)
    return fv


def export_flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags.DEFINE_string("run_dir", "nas_run", "Search output directory.", flag_values=fv)
    flags.DEFINE_string(
        "model_dir",
        "",
        "Directory of the trained model to export (default RUN_DIR/final if it "
        "exists, else the search's best model in RUN_DIR).",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "export_dir", "", "Where to write the export (default RUN_DIR/export).", flag_values=fv
    )
    flags.DEFINE_boolean(
        "saved_model", True, "Also write a TensorFlow SavedModel (model.export).", flag_values=fv
    )
    return fv


def show_flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags.DEFINE_string(
        "png",
        "",
        "Where to write the picture (default: RUN_DIR/cells.png for a run directory, "
        "else ./cells.png).",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "text_only",
        False,
        "Print the text form only; draw nothing (no Pillow needed).",
        flag_values=fv,
    )
    return fv
