"""Checks the ``keras-nas`` command line runs before TensorFlow is imported or anything is written.

Why a module of its own: the flag definitions in ``cli_flags.py`` carry absl lower bounds only, so
huge counts (``--max_trials=99999999999999999999``), non-finite floats (``--learning_rate=inf``),
seeds NumPy refuses, NUL bytes in paths and fractions that leave no training data passed the parser
and failed minutes later, if at all. And the jobs import TensorFlow (tens of seconds under load)
before they look at a missing data file, run directory or malformed genotype. Here every such value
is rejected at once with the flag and its valid range named; the jobs keep their own checks too.
"""

from __future__ import annotations

import math
import sys

from absl import flags

# flag -> (lowest, highest) accepted value, for every subcommand that defines the flag. The highs
# are far above any real use and low enough that a typo cannot exhaust memory or overflow.
INT_RANGES = {
    "image_size": (4, 4096),
    "subset": (0, 2**31 - 1),
    "epochs": (1, 100_000),
    "num_cells": (1, 64),
    "filters": (1, 4096),
    "num_blocks": (1, 32),
    "macro_layers": (1, 256),
    "batch_size": (1, 65_536),
    "max_trials": (1, 1_000_000),
    "population_size": (0, 1_000_000),
    "sample_size": (0, 1_000_000),
    "early_stopping_epochs": (1, 100_000),
    "early_stopping_eta": (2, 1000),
    "proxy_samples": (0, 1_000_000),
    "seed": (0, 2**32 - 1),  # what numpy.random.seed (keras.utils.set_random_seed) accepts
    "reinforce_batch_size": (1, 10_000),
}
# flag -> (lowest, highest, help text of the range); None values (flag not given) always pass
FLOAT_RANGES = {
    "cost_target": (0.0, 1e18, "[0, 1e18] (0: none)"),
    "cost_weight": (-10.0, 0.0, "[-10, 0]"),
    "reinforce_learning_rate": (1e-12, 1.0, "(0, 1]"),
    "reinforce_baseline_decay": (0.0, 0.999999, "[0, 1)"),
    "reinforce_entropy_weight": (0.0, 1.0, "[0, 1]"),
}
LEARNING_RATE_MAX = 10.0


def _int_in(lo: int, hi: int):
    return lambda v: v is None or lo <= v <= hi


def add_checks(fv: flags.FlagValues):
    """Register range, finiteness and NUL-byte validators on a subcommand's flags (run at parse time)
    and state the ranges in their help."""
    for name in list(fv):
        flag = fv[name]
        kind = flag.flag_type()
        if name in INT_RANGES and kind == "int":
            lo, hi = INT_RANGES[name]
            flag.help += f" Range: [{lo}, {hi}]."
            flags.register_validator(
                name, _int_in(lo, hi), message=f"must be an integer in [{lo}, {hi}]", flag_values=fv
            )
        elif kind == "float":
            flags.register_validator(
                name,
                lambda v: v is None or math.isfinite(v),
                message="must be a finite number (not inf or nan)",
                flag_values=fv,
            )
            if name in FLOAT_RANGES:
                lo, hi, text = FLOAT_RANGES[name]
                flag.help += f" Range: {text}."
                flags.register_validator(
                    name,
                    lambda v, lo=lo, hi=hi: v is None or lo <= v <= hi,
                    message=f"must be a number in {text}",
                    flag_values=fv,
                )
        elif kind == "string":
            flags.register_validator(
                name,
                lambda v: v is None or "\x00" not in v,
                message="must not contain a NUL byte (\\x00)",
                flag_values=fv,
            )
    if "learning_rate" in fv:
        fv["learning_rate"].help += f" Range: (0, {LEARNING_RATE_MAX:g}]."
        flags.register_validator(
            "learning_rate",
            lambda v: 0 < v <= LEARNING_RATE_MAX,
            message=f"must be a number in (0, {LEARNING_RATE_MAX:g}]",
            flag_values=fv,
        )
    if "max_time" in fv:
        from keras_nas.jobs.advice import parse_duration

        def duration_ok(v):
            try:
                parse_duration(v)
            except ValueError:
                return False
            return True

        flags.register_validator(
            "max_time",
            duration_ok,
            message="must be a duration such as 3600 (seconds), 90s, "
            "30m, 2h or 1h30m (empty: no limit)",
            flag_values=fv,
        )
    if "objective" in fv:
        from keras_nas.jobs.search_config import OBJECTIVES, parse_objective

        def objective_ok(v):
            try:
                parse_objective(v)
            except ValueError:
                return False
            return True

        flags.register_validator(
            "objective",
            objective_ok,
            message=f"must be one of {', '.join(OBJECTIVES)}, optionally with :min or :max",
            flag_values=fv,
        )
    if "augment" in fv:
        from keras_nas.data import AUGMENTATIONS, parse_augment

        def augment_ok(v):
            try:
                parse_augment(v)
            except ValueError:
                return False
            return True

        flags.register_validator(
            "augment",
            augment_ok,
            message="must be 'none' or a comma-separated list of "
            f"{', '.join(AUGMENTATIONS)} (e.g. --augment=shift,flip)",
            flag_values=fv,
        )
    if "val_fraction" in fv and "test_fraction" in fv:
        fv["test_fraction"].help += " --val_fraction + --test_fraction must be below 1."
        flags.register_multi_flags_validator(
            ["val_fraction", "test_fraction"],
            lambda d: d["val_fraction"] + d["test_fraction"] < 1.0,
            message="--val_fraction + --test_fraction must be below 1 (both split off the same data; the rest "
            "trains)",
            flag_values=fv,
        )


def precheck(sub: str, fv: flags.FlagValues, positional) -> None:
    """Raise a ValueError subclass (JobError, DataError, GenotypeError) for input that cannot run.

    Pure Python: imports no TensorFlow, writes nothing. The same functions the jobs call, called
    earlier, so the messages are the jobs' own.
    """
    import dataclasses

    def config(cls):
        return cls(**{f.name: fv[f.name].value for f in dataclasses.fields(cls)})

    if sub == "search":
        from keras_nas.jobs import search_config

        cfg = config(search_config.SearchConfig)
        search_config.check_search_config(cfg)
        search_config.check_resume(cfg)
        _check_data(cfg.data, "--data")
    elif sub == "train":
        from keras_nas.jobs import train

        cfg = config(train.TrainConfig)
        _, run = train.check_train_config(cfg)
        if cfg.data:
            _check_data(cfg.data, "--data")
        else:
            _check_data(
                run.get("config", {}).get("data", "digits"),
                f"the dataset of --run_dir {cfg.run_dir!r}",
            )
    elif sub == "export":
        from keras_nas import export, rundir

        export._find_model(fv.run_dir, fv.model_dir or None)
        if fv.export_dir:
            rundir.check_output_dir(fv.export_dir, "--export_dir")
    elif sub == "show":
        from keras_nas import rundir

        rundir.load_architecture(positional[0])


def _check_data(name, label: str):
    from keras_nas import data

    try:
        data.check_source(name)
    except data.DataError as e:
        raise data.DataError(f"{label}: {e}") from None


def known_errors() -> tuple:
    """Exception types the CLI reports as one line. Those of TensorFlow-backed modules count only
    once their module is loaded, so reporting an error never imports TensorFlow."""
    from keras_nas.tuning.errors import StateFileError

    known = [ValueError, FileNotFoundError, StateFileError]
    for module, name in (("keras_nas.distribute", "StrategyError"),):
        if module in sys.modules:
            known.append(getattr(sys.modules[module], name))
    return tuple(known)
