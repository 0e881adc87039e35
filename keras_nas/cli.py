"""The ``keras-nas`` command line: ``search``, ``train``, ``export``, ``show`` (absl flags).

Why absl: TensorFlow training jobs are configured with absl flags and ``--flagfile``; a
search job launched on a cluster reads the same way. Each subcommand has its own
``FlagValues`` so ``keras-nas SUBCOMMAND --help`` lists exactly its flags, and a wrong flag
or value fails before anything heavy is imported, with a message naming the flag.

Usage::

    keras-nas search --output_dir=runs/a [--space=nasnet --controller=evolution --data=digits ...]
    keras-nas search --flagfile=search.cfg
    keras-nas train  --run_dir=runs/a --epochs=30 --num_cells=2 --filters=16
    keras-nas export --run_dir=runs/a
    keras-nas show   runs/a | genotype.json | nasnet_a | 'normal=...;reduce=...'
    keras-nas report runs/a              # runs/a/report/index.html
"""

from __future__ import annotations

import os
import sys
import warnings

from absl import flags

from keras_nas import cli_checks
from keras_nas.report import command as report_command  # light: absl only

PROG = "keras-nas"
SUBCOMMANDS = ("search", "train", "export", "show", "report")
SUMMARY = {
    "search": "search architectures (keras-tuner project; running the same command again resumes)",
    "train": "retrain the best (or a given) architecture at final size and save it",
    "export": "export a trained model: .keras, SavedModel, genotype JSON, standalone Python builder",
    "show": "print an architecture and draw its cells as PNG",
    "report": report_command.SUMMARY,
}
STRATEGY_HELP = "tf.distribute strategy: auto (TPU/multi-GPU if present), default, mirrored, tpu, cpu:N."


def _strategy_ok(v: str) -> bool:
    v = (v or "").strip().lower()
    return v in ("auto", "tpu", "mirrored", "default") or (v.startswith("cpu:") and v[4:].isdigit() and int(v[4:]) > 0)


def _check_strategy(fv: flags.FlagValues):
    flags.register_validator("strategy", _strategy_ok, message="must be auto, default, mirrored, tpu or cpu:N (N > 0)",
                             flag_values=fv)


def _search_flags() -> flags.FlagValues:
    from keras_nas.jobs.search import CONTROLLERS, EARLY_STOPPING, PROXIES, SPACES, SearchConfig

    d = SearchConfig()
    fv = flags.FlagValues()
    flags.DEFINE_enum("space", d.space, SPACES, "Search space: NASNet/AmoebaNet cells, NAS-Bench-201 cell, or macro CNN.", flag_values=fv)
    flags.DEFINE_enum("controller", d.controller, CONTROLLERS, "Search algorithm: trial-based aging evolution, REINFORCE, predictor-guided (BANANAS-style) or random; "
                      "or one-shot (one weight-sharing supernet, --space=nb201 or nasnet = the DARTS cell space; "
                      "docs/oneshot.md): darts, drnas, gdas, enas, spos, supernet-evolution.", flag_values=fv)
    from keras_nas.data import NPZ_HELP

    flags.DEFINE_string("data", d.data, "Dataset: 'digits' (embedded, offline), PATH.npz, cifar10, cifar100, mnist, "
                        "fashion_mnist, or a TensorFlow Datasets name (tfds:NAME). " + NPZ_HELP, flag_values=fv)
    flags.DEFINE_integer("image_size", None, "Side of the square network input (images are resized); default: "
                         "native size, 16 for digits (8x8 upsampled).", lower_bound=4, flag_values=fv)
    flags.DEFINE_integer("subset", d.subset, "Use at most this many training images (0 = all); validation/test "
                         "keep at most half as many.", lower_bound=0, flag_values=fv)
    flags.DEFINE_float("val_fraction", d.val_fraction, "Fraction of training data held out for search-validation "
                       "(when the data has no validation split).", lower_bound=0.01, upper_bound=0.9, flag_values=fv)
    flags.DEFINE_float("test_fraction", d.test_fraction, "Fraction held out as the test split (when the data has "
                       "none); never used by the search.", lower_bound=0.01, upper_bound=0.9, flag_values=fv)
    from keras_nas.jobs.advice import MAX_AUTO_EPOCHS, MIN_PROXY_STEPS

    flags.DEFINE_integer("epochs", d.epochs, "Proxy training epochs per trial; default: from the data size, enough "
                         f"for {MIN_PROXY_STEPS} optimizer steps (ceil({MIN_PROXY_STEPS} / steps per epoch)), 1 to "
                         f"{MAX_AUTO_EPOCHS}.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("num_cells", d.num_cells, "N: normal cells per stack of the search network.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("filters", d.filters, "F: filters of the first stack of the search network.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("num_blocks", d.num_blocks, "B: blocks per cell (nasnet space).", lower_bound=1, flag_values=fv)
    flags.DEFINE_string("ops", d.ops, "Op vocabulary (nasnet space): amoebanet, nasnet, darts, enas, or a "
                        "comma-separated list of op names.", flag_values=fv)
    flags.DEFINE_integer("macro_layers", d.macro_layers, "Conv layers of the macro space.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("batch_size", d.batch_size, "Batch size of the proxy training.", lower_bound=1, flag_values=fv)
    flags.DEFINE_float("learning_rate", d.learning_rate, "Adam learning rate of the proxy training.", lower_bound=0.0, flag_values=fv)
    flags.DEFINE_integer("max_trials", d.max_trials, "Architectures to train (total, including resumed ones).", lower_bound=1, flag_values=fv)
    flags.DEFINE_enum("early_stopping", d.early_stopping, EARLY_STOPPING, "Stop hopeless trials from per-epoch "
                      "val_accuracy: median (below the median of other trials at the same epoch) or asha "
                      "(successive halving: rungs at E, E*eta, ... epochs). Stopped trials are recorded as STOPPED.",
                      flag_values=fv)
    flags.DEFINE_integer("early_stopping_epochs", d.early_stopping_epochs, "median: grace epochs before any stop; "
                         "asha: epochs E at the first rung.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("early_stopping_eta", d.early_stopping_eta, "asha: the top 1/eta at each rung continue.",
                         lower_bound=2, flag_values=fv)
    flags.DEFINE_integer("population_size", d.population_size, "Aging evolution P (0 = from --max_trials: "
                         "max(max_trials // 5, min(max_trials // 2, 15)), 2 to 100; measured on NAS-Bench-201).", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("sample_size", d.sample_size, "Aging evolution tournament size S (0 = P // 2 up "
                         "to 100 trials, else ceil(P / 4)).", lower_bound=0, flag_values=fv)
    from keras_nas.jobs.search import COST_HELP, COSTS, OBJECTIVES

    flags.DEFINE_string("objective", d.objective, f"Metric the search optimises: {', '.join(OBJECTIVES)}, optionally "
                        "NAME:min or NAME:max (default direction: min for losses, max for accuracies).", flag_values=fv)
    flags.DEFINE_enum("cost", d.cost, COSTS, "Cost measured for every trial: " + "; ".join(
        f"{k}: {v}" for k, v in COST_HELP.items()) + ". With --cost_target it shapes the reward (MnasNet: "
        "objective * (cost / target) ** cost_weight); without, it is recorded and gives the Pareto front.", flag_values=fv)
    flags.DEFINE_float("cost_target", d.cost_target, "MnasNet target T, in the unit of --cost (params, mult-adds, "
                       "milliseconds); needs --cost.", flag_values=fv)
    flags.DEFINE_float("cost_weight", d.cost_weight, "MnasNet exponent w (soft constraint: -0.07; 0 ignores the cost).",
                       flag_values=fv)
    flags.DEFINE_string("max_time", d.max_time, "Wall-clock budget of this invocation: 3600 (seconds), 90s, 30m, 2h, "
                        "1h30m. No trial starts after it; the running one finishes. Running the same command again "
                        "resumes with a fresh budget. Default: none.", flag_values=fv)
    flags.DEFINE_float("reinforce_learning_rate", None, "REINFORCE controller: Adam learning rate (default 0.0035).",
                       flag_values=fv)
    flags.DEFINE_integer("reinforce_batch_size", None, "REINFORCE controller: finished trials per policy update "
                         "(default 10).", flag_values=fv)
    flags.DEFINE_float("reinforce_baseline_decay", None, "REINFORCE controller: EMA decay of the reward baseline "
                       "(default 0.95).", flag_values=fv)
    flags.DEFINE_float("reinforce_entropy_weight", None, "REINFORCE controller: entropy bonus weight (default 1e-5).",
                       flag_values=fv)
    flags.DEFINE_string("proxy", d.proxy, f"Zero-cost proxy for a proxy-assisted search: {', '.join(PROXIES)} "
                        "(warm-up and ranked proposals; empty = none).", flag_values=fv)
    flags.DEFINE_integer("proxy_samples", d.proxy_samples, "Architectures the proxy scores in the warm-up (0 = "
                         "the oracle's default).", lower_bound=0, flag_values=fv)
    flags.DEFINE_string("output_dir", d.output_dir, "Run directory: tuner project, results, TensorBoard logs, best model.", flag_values=fv)
    flags.DEFINE_string("strategy", d.strategy, STRATEGY_HELP, flag_values=fv)
    flags.DEFINE_integer("seed", d.seed, "Seed of data splits, controller and weights.", flag_values=fv)
    flags.DEFINE_boolean("overwrite", d.overwrite, "Start afresh instead of resuming the project in output_dir.", flag_values=fv)
    flags.DEFINE_boolean("tensorboard", d.tensorboard, "Write TensorBoard logs under output_dir/tensorboard.", flag_values=fv)
    flags.DEFINE_boolean("run_eagerly", False, "Train without tf.function (no tracing): faster when a trial has only "
                         "a few steps (tiny smoke tests), slower otherwise.", flag_values=fv)
    _check_strategy(fv)
    return fv


def _train_flags() -> flags.FlagValues:
    from keras_nas.jobs.train import TrainConfig

    d = TrainConfig()
    fv = flags.FlagValues()
    flags.DEFINE_string("run_dir", d.run_dir, "Search output directory (its best_genotype.json and data settings are used).", flag_values=fv)
    flags.DEFINE_string("genotype", d.genotype, "Architecture to train instead of the run's best: genotype string, "
                        "JSON file, zoo name (nasnet_a, amoebanet_a, darts_v2, enas) or a run directory.", flag_values=fv)
    flags.DEFINE_string("output_dir", d.output_dir, "Where to save the trained model (default RUN_DIR/final).", flag_values=fv)
    flags.DEFINE_string("data", d.data, "Dataset (default: the run's); same forms as `search --data`.", flag_values=fv)
    flags.DEFINE_integer("image_size", None, "Network input side (default: the run's).", lower_bound=4, flag_values=fv)
    flags.DEFINE_integer("subset", None, "Training images to use (default: the run's; 0 = all).", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("epochs", d.epochs, "Training epochs.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("num_cells", d.num_cells, "N: normal cells per stack of the final network.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("filters", d.filters, "F: filters of the first stack of the final network.", lower_bound=1, flag_values=fv)
    flags.DEFINE_float("drop_path", d.drop_path, "Maximum scheduled drop-path probability (0 disables).", lower_bound=0.0,
                       upper_bound=0.99, flag_values=fv)
    flags.DEFINE_boolean("aux_head", d.aux_head, "Train with the auxiliary head (loss weight 0.4; nasnet space).", flag_values=fv)
    from keras_nas.data import AUGMENT_HELP

    flags.DEFINE_string("augment", d.augment, AUGMENT_HELP, flag_values=fv)
    flags.DEFINE_integer("batch_size", d.batch_size, "Batch size.", lower_bound=1, flag_values=fv)
    flags.DEFINE_float("learning_rate", d.learning_rate, "Initial Adam learning rate (cosine decay to 0).", lower_bound=0.0, flag_values=fv)
    flags.DEFINE_string("strategy", d.strategy, STRATEGY_HELP, flag_values=fv)
    flags.DEFINE_integer("seed", d.seed, "Seed of weights and data order.", flag_values=fv)
    flags.DEFINE_boolean("run_eagerly", False, "Train without tf.function (no tracing; for tiny smoke tests).", flag_values=fv)
    _check_strategy(fv)
    return fv


def _export_flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags.DEFINE_string("run_dir", "nas_run", "Search output directory.", flag_values=fv)
    flags.DEFINE_string("model_dir", "", "Directory of the trained model to export (default RUN_DIR/final if it "
                        "exists, else the search's best model in RUN_DIR).", flag_values=fv)
    flags.DEFINE_string("export_dir", "", "Where to write the export (default RUN_DIR/export).", flag_values=fv)
    flags.DEFINE_boolean("saved_model", True, "Also write a TensorFlow SavedModel (model.export).", flag_values=fv)
    return fv


def _show_flags() -> flags.FlagValues:
    fv = flags.FlagValues()
    flags.DEFINE_string("png", "", "Where to write the picture (default: RUN_DIR/cells.png for a run directory, "
                        "else ./cells.png).", flag_values=fv)
    flags.DEFINE_boolean("text_only", False, "Print the text form only; draw nothing (no Pillow needed).", flag_values=fv)
    return fv


FLAG_FACTORIES = {"search": _search_flags, "train": _train_flags, "export": _export_flags, "show": _show_flags,
                  "report": report_command.define_flags}
POSITIONAL = {"show": "GENOTYPE_OR_RUN", "report": report_command.POSITIONAL}


def usage() -> str:
    lines = [f"usage: {PROG} SUBCOMMAND [--flags] (--flagfile=FILE reads flags from a file)", "", "subcommands:"]
    lines += [f"  {k:8s} {v}" for k, v in SUMMARY.items()]
    lines += ["", f"`{PROG} SUBCOMMAND --help` lists the flags of a subcommand."]
    return "\n".join(lines)


def help_text(sub: str, fv: flags.FlagValues) -> str:
    pos = f" {POSITIONAL[sub]}" if sub in POSITIONAL else ""
    head = f"usage: {PROG} {sub}{pos} [--flags]\n\n{SUMMARY[sub]}.\n"
    if sub == "show":
        head += "\nGENOTYPE_OR_RUN: a genotype string, a JSON file, a zoo name (nasnet_a, amoebanet_a, darts_v2, enas),\n" \
                "an NB201 or macro architecture string, or a search output directory.\n"
    # get_help groups flags under their defining module's path; the heading is noise here.
    body = "\n".join(l for l in fv.get_help(include_special_flags=False).splitlines()
                     if l.startswith(" ") or not l.rstrip().endswith(":")).strip("\n")
    return f"{head}\nflags:\n{body}\n  --flagfile: read flags from FILE (one --flag=value per line).\n"


class UsageError(Exception):
    pass


def parse(argv):
    """``argv`` (without the program name) -> (subcommand, FlagValues, positional args)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        raise SystemExit(print(usage()) or 0)
    sub, rest = argv[0], list(argv[1:])
    if sub not in FLAG_FACTORIES:
        raise UsageError(f"unknown subcommand {sub!r}; choose one of {', '.join(SUBCOMMANDS)}.\n\n{usage()}")
    fv = FLAG_FACTORIES[sub]()
    cli_checks.add_checks(fv)  # upper bounds, finite floats, no NUL bytes: checked while parsing
    if any(a in ("-h", "--help", "-help", "--helpfull", "--helpshort") for a in rest):
        raise SystemExit(print(help_text(sub, fv)) or 0)
    try:
        remaining = fv([f"{PROG} {sub}"] + rest)
    except flags.Error as e:
        raise UsageError(f"{e}\nSee `{PROG} {sub} --help`.") from None
    positional = remaining[1:]
    dashed = [a for a in positional if a.startswith("-")]
    if dashed:
        raise UsageError(f"unknown flag {dashed[0]!r}. See `{PROG} {sub} --help`.")
    want = 1 if sub in POSITIONAL else 0
    if len(positional) != want:
        if want:
            raise UsageError(f"`{PROG} {sub}` needs exactly one {POSITIONAL[sub]} argument, got {len(positional)}.")
        raise UsageError(f"`{PROG} {sub}` takes no positional arguments, got {positional!r}. Flags are written --name=value.")
    return sub, fv, positional


def _log(msg: str):
    print(msg, flush=True)


def _quiet():
    """Keep TensorFlow/Keras chatter off the progress lines (before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for pattern in (".*shuffle=True.*", ".*ran out of data.*", ".*Gradients do not exist.*", ".*Skipping variable loading.*",
                    ".*does not have a `build_config`.*"):
        warnings.filterwarnings("ignore", message=pattern)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)
    except Exception:  # pragma: no cover
        pass
    from keras_nas import quiet

    quiet.filter_tensorflow_import_logs()


def _config(cls, fv):
    import dataclasses

    return cls(**{f.name: fv[f.name].value for f in dataclasses.fields(cls)})


def cmd_search(fv, _):
    from keras_nas.jobs import search

    summary = search.run_search(_config(search.SearchConfig, fv), log=_log)
    _log(search.search_summary_text(summary))


def cmd_train(fv, _):
    from keras_nas.jobs import train

    cfg = _config(train.TrainConfig, fv)
    r = train.run_train(cfg, log=_log)
    out = os.path.dirname(r["files"]["weights"])
    _log(f"\n== trained {r['space']} architecture in {r['seconds']:.0f}s: {r['params']:,} params, "
         f"validation accuracy {r['val_accuracy']:.4f}, held-out test accuracy {r['test_accuracy']:.4f}, "
         f"augmentation: {', '.join(r['augment']) or 'none'} ==")
    _log("written:\n" + "\n".join(f"  {k:9s} {v}" for k, v in r["files"].items()) + f"\n  train.json {os.path.join(out, 'train.json')}")
    from keras_nas.jobs.advice import command

    _log(f"next:\n  {command()} export --run_dir={cfg.run_dir}" + (f" --model_dir={out}" if cfg.output_dir else ""))


def cmd_export(fv, _):
    from keras_nas import export

    r = export.export_run(fv.run_dir, model_dir=fv.model_dir or None, export_dir=fv.export_dir or None,
                          saved_model=fv.saved_model, log=_log)
    _log(f"\n== exported ({r['params']:,} params) ==\n{r['architecture']}")  # the whole genotype, never cut
    _log("\n".join(f"  {k:13s} {v}" for k, v in r["files"].items()))
    _log(f"rebuild without keras-nas:  python {r['files']['python']} {r['files']['weights']}")


def cmd_show(fv, positional):
    from keras_nas import rundir, visualize

    spec = positional[0]
    arch = rundir.load_architecture(spec)
    _log(visualize.architecture_text(arch))
    if fv.text_only:
        return
    png = fv.png or (os.path.join(spec, "cells.png") if os.path.isdir(spec) else "cells.png")
    try:
        visualize.save_png(arch, png)
    except ImportError as e:
        raise UsageError(f"{e} Use --text_only to skip the picture.") from None
    except OSError as e:
        raise UsageError(f"cannot write the picture {png!r} ({e.strerror or e}); pass --png=PATH in a writable "
                         "directory, or --text_only.") from None
    _log(f"picture: {png}")


COMMANDS = {"search": cmd_search, "train": cmd_train, "export": cmd_export, "show": cmd_show}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        sub, fv, positional = parse(argv)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if sub == "report":  # reads files only: answers before TensorFlow would be imported below
        return report_command.main(fv, positional, PROG)
    _quiet()
    try:
        cli_checks.precheck(sub, fv, positional)  # bad input fails before TensorFlow is imported
        COMMANDS[sub](fv, positional)
    except UsageError as e:
        print(f"{PROG} {sub}: error: {e}", file=sys.stderr)
        return 2
    except cli_checks.known_errors() as e:  # evaluated only when something was raised
        print(f"{PROG} {sub}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG} {sub}: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0


def run():
    """Console-script entry point (``keras-nas``)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
