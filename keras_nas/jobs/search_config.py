"""What a search is: :class:`SearchConfig` (one field per ``keras-nas search`` flag), the
choices each flag takes, and the checks a configuration passes before anything runs.

Why a module of its own: the CLI reads these tables for its flag definitions and runs the checks
before TensorFlow is imported (:mod:`keras_nas.cli_checks`); the search itself
(:mod:`keras_nas.jobs.search`) and its tuner (:mod:`keras_nas.jobs.search_tuner`) build on them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

from keras_nas import families, rundir
from keras_nas.jobs import advice
from keras_nas.jobs import oneshot as oneshot_job
from keras_nas.rundir import PROJECT_NAME, JobError

SPACES = tuple(families.FAMILIES)
# one-shot controllers: keras_nas/jobs/oneshot.py
CONTROLLERS = ("evolution", "reinforce", "predictor", "random") + oneshot_job.CONTROLLERS
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
REINFORCE_FLAGS = {
    "reinforce_learning_rate": "learning_rate",
    "reinforce_batch_size": "batch_size",
    "reinforce_baseline_decay": "baseline_decay",
    "reinforce_entropy_weight": "entropy_weight",
}


def parse_objective(spec: str) -> tuple:
    """``'val_loss'`` -> ``('val_loss', 'min')``; ``'val_accuracy:max'``; JobError naming --objective."""
    name, _, direction = str(spec or "").strip().partition(":")
    direction = direction or ("min" if name.endswith("loss") else "max")
    if name not in OBJECTIVES or direction not in ("min", "max"):
        raise JobError(
            f"--objective must be one of {', '.join(OBJECTIVES)}, optionally with :min or :max "
            f"(default: min for losses, max for accuracies); got {spec!r}."
        )
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
    warmup_epochs: int = -1  # one-shot: -1 = auto (enas: epochs // 2, others 0)
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
        return self.family.space(
            num_blocks=self.num_blocks, ops=self.ops, macro_layers=self.macro_layers
        )


# settings that define what a saved search searched: resuming it with others would mix or break it
RESUME_KEYS = (
    "space",
    "controller",
    "proxy",
    "num_blocks",
    "ops",
    "macro_layers",
    "num_cells",
    "filters",
    "data",
    "image_size",
    "objective",
    "cost",
    "cost_target",
    "cost_weight",
)


def check_resume(cfg: SearchConfig):
    """Raise :class:`JobError` when ``cfg`` would resume a finished search in ``output_dir`` with a
    different space, controller, search network or data (nothing is written then)."""
    if cfg.overwrite:
        return
    try:
        saved = rundir.read_run(cfg.output_dir).get("config", {})
    except (
        JobError
    ) as e:  # run.json is a report, rewritten when the search ends; the tuner/ state decides
        import warnings

        warnings.warn(
            f"{e} Resuming without comparing settings; the search state in "
            f"{os.path.join(cfg.output_dir, PROJECT_NAME)} is kept."
        )
        return
    if not isinstance(saved, dict):
        return
    diff = [
        (k, saved[k], getattr(cfg, k))
        for k in RESUME_KEYS
        if k in saved and saved[k] != getattr(cfg, k)
    ]
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
    elif cfg.warmup_epochs >= 0:
        raise JobError(
            f"--warmup_epochs applies to one-shot controllers "
            f"({', '.join(oneshot_job.CONTROLLERS)}), not --controller={cfg.controller}; drop it."
        )
    if cfg.early_stopping not in EARLY_STOPPING:
        raise JobError(
            f"--early_stopping must be one of {list(EARLY_STOPPING)}, got {cfg.early_stopping!r}."
        )
    if not isinstance(cfg.early_stopping_eta, int) or cfg.early_stopping_eta < 2:
        raise JobError(
            f"--early_stopping_eta must be an integer >= 2, got {cfg.early_stopping_eta!r}."
        )
    for name in (
        "epochs",
        "num_cells",
        "filters",
        "num_blocks",
        "batch_size",
        "max_trials",
        "macro_layers",
        "early_stopping_epochs",
    ):
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
            raise JobError(
                "--cost_target needs --cost=params, flops or latency (the cost it targets)."
            )
        if not cfg.cost_target > 0:
            raise JobError(
                f"--cost_target must be positive (in the unit of --cost={cfg.cost}), got {cfg.cost_target!r}."
            )
    if not -10.0 <= cfg.cost_weight <= 0.0:
        raise JobError(
            f"--cost_weight must be in [-10, 0] (MnasNet: -0.07; 0 ignores the cost), got {cfg.cost_weight!r}."
        )
    given = [f for f in REINFORCE_FLAGS if getattr(cfg, f) is not None]
    if given and cfg.controller != "reinforce":
        raise JobError(
            f"--{given[0]} applies to --controller=reinforce only (this run: --controller={cfg.controller}); "
            "drop it or switch controller."
        )
    if cfg.reinforce_learning_rate is not None and not 0 < cfg.reinforce_learning_rate <= 1:
        raise JobError(
            f"--reinforce_learning_rate must be in (0, 1], got {cfg.reinforce_learning_rate!r}."
        )
    if cfg.reinforce_batch_size is not None and not 1 <= cfg.reinforce_batch_size <= 10_000:
        raise JobError(
            f"--reinforce_batch_size must be in [1, 10000], got {cfg.reinforce_batch_size!r}."
        )
    if cfg.reinforce_baseline_decay is not None and not 0 <= cfg.reinforce_baseline_decay < 1:
        raise JobError(
            f"--reinforce_baseline_decay must be in [0, 1), got {cfg.reinforce_baseline_decay!r}."
        )
    if cfg.reinforce_entropy_weight is not None and not 0 <= cfg.reinforce_entropy_weight <= 1:
        raise JobError(
            f"--reinforce_entropy_weight must be in [0, 1], got {cfg.reinforce_entropy_weight!r}."
        )
    if not cfg.learning_rate > 0:
        raise JobError(f"--learning_rate must be positive, got {cfg.learning_rate!r}.")
    if cfg.proxy and cfg.proxy not in PROXIES:
        raise JobError(
            f"--proxy must be one of {list(PROXIES)} (or empty: no proxy), got {cfg.proxy!r}."
        )
    if cfg.proxy_samples and not cfg.proxy:
        raise JobError("--proxy_samples needs --proxy (e.g. --proxy=synflow).")
    if cfg.controller == "evolution":
        if cfg.population_size == 1:
            raise JobError(
                "--population_size must be 0 (default: from --max_trials) or >= 2 (a tournament needs "
                "a population), got 1."
            )
        if cfg.population_size and cfg.sample_size > cfg.population_size:
            raise JobError(
                f"--sample_size ({cfg.sample_size}) must not exceed --population_size "
                f"({cfg.population_size})."
            )
    if cfg.space == "nasnet" and cfg.image_size is not None and cfg.image_size < 4:
        raise JobError(
            f"--image_size {cfg.image_size} is too small: the NASNet network needs at least 4."
        )
    try:  # one-shot: the DARTS cell space takes 'none' (--ops=darts), the trial-based one does not
        if cfg.controller in oneshot_job.CONTROLLERS:
            oneshot_job.oneshot_ops(cfg)
        else:
            cfg.make_space()
    except ValueError as e:
        raise JobError(f"--ops={cfg.ops}: {e}") from None
