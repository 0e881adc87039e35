"""Defaults chosen from the data and budget, and the warnings a search run owes its user.

Why a module: the CLI and the demo should not quietly waste a search. One epoch on a few
hundred images scores at chance, so evolution then selects on noise; aging evolution with
fewer trials than it needs is random search; a hint that prints ``keras-nas ...`` when that
command is not on PATH fails as printed. Pure Python (no TensorFlow): the CLI checks run it
before TensorFlow is imported.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from typing import Optional, Sequence

# -- epochs from the data size ------------------------------------------------------------------
# A proxy training of fewer optimizer steps than this scored at chance on a few hundred images
# (issue 14: 0.07-0.17 on 10 classes after 1 epoch of ~5 steps). 100 steps of Adam at 3e-3 are
# enough for the small search networks to separate clearly from chance on digits.
MIN_PROXY_STEPS = 100
MAX_AUTO_EPOCHS = 30


def auto_epochs(num_train: int, batch_size: int) -> int:
    """Proxy epochs per trial when ``--epochs`` is not given: enough for :data:`MIN_PROXY_STEPS`
    optimizer steps, at least 1, at most :data:`MAX_AUTO_EPOCHS`.

    E.g. batch 64: 300 images (5 steps/epoch) -> 20 epochs; digits' 1078 (17 steps) -> 6;
    CIFAR-10's 30,000 (469 steps) -> 1.
    """
    steps_per_epoch = max(1, -(-int(num_train) // max(1, int(batch_size))))
    return int(min(MAX_AUTO_EPOCHS, max(1, -(-MIN_PROXY_STEPS // steps_per_epoch))))


# -- scores within noise of chance -----------------------------------------------------------------
NOISE_SE = 2.0  # "within noise": less than this many binomial standard errors above chance


def chance_level(labels: Sequence[int]) -> tuple:
    """``(prior, standard_error)`` of accuracy on ``labels``: the majority-class frequency (what a
    network that learned nothing but the class prior scores) and the binomial standard error of an
    accuracy at that level measured on ``len(labels)`` images."""
    n = len(labels)
    if n == 0:
        return 0.0, 0.0
    counts: dict = {}
    for y in labels:
        counts[int(y)] = counts.get(int(y), 0) + 1
    prior = max(counts.values()) / n
    return prior, math.sqrt(prior * (1.0 - prior) / n)


def noise_threshold(prior: float, se: float) -> float:
    """Accuracies below this are within noise of chance: :data:`NOISE_SE` standard errors above it."""
    return prior + NOISE_SE * max(se, 1e-12)


def near_chance(score: Optional[float], prior: float, se: float) -> bool:
    """True when an accuracy ``score`` is less than :data:`NOISE_SE` standard errors above chance."""
    return score is not None and score < noise_threshold(prior, se)


def chance_warning(score: float, prior: float, se: float, num_val: int, epochs: int) -> str:
    return (
        f"warning: the best search-validation accuracy {score:.4f} is within noise of chance (the "
        f"majority-class prior {prior:.4f}, +{NOISE_SE:g} standard errors = {prior + NOISE_SE * se:.4f} on "
        f"{num_val} validation images): the trials learned little, so the search ranked them on noise. "
        f"Raise --epochs (this run: {epochs}), use more data (--subset=0, or a larger dataset), or tune "
        "--learning_rate; then search again."
    )


# -- aging evolution's budget ----------------------------------------------------------------------
# Measured on NAS-Bench-201 (benchmarks/small_budget_evolution.py, benchmarks/README.md): at 10 trials no
# (P, S) beat random search by more than the noise; at 20, the default P=10, S=5 did (by 3-4 standard errors).
EVOLUTION_MIN_TRIALS = 20


def evolution_hint(max_trials: int, population_size: int) -> Optional[str]:
    """A hint when aging evolution is given too few trials to beat random search, else None."""
    if max_trials < EVOLUTION_MIN_TRIALS:
        return (
            f"note: aging evolution with {max_trials} trials (population {population_size}) is about as good as "
            f"random search: on NAS-Bench-201 it beat random search only from about {EVOLUTION_MIN_TRIALS} trials "
            f"on (see docs/search.md). Raise --max_trials if you can."
        )
    return None


# -- durations -------------------------------------------------------------------------------------
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(value, flag: str = "--max_time") -> Optional[float]:
    """Seconds from ``3600``, ``"3600"``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1h30m"``; None/0/"" -> None
    (no limit). ValueError naming ``flag`` otherwise."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, bool):
        raise ValueError(
            f"{flag} must be a duration such as 3600, 90s, 30m, 2h or 1h30m; got {value!r}."
        )
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        m = _DURATION.match(text)
        if not text or not m or not any(m.groups()):
            raise ValueError(
                f"{flag} must be a duration such as 3600 (seconds), 90s, 30m, 2h or 1h30m; got {value!r}."
            )
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = 3600 * h + 60 * mi + s
    if seconds == 0:
        return None
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"{flag} must be a positive duration (0 or empty: no time limit), got {value!r}."
        )
    return seconds


# -- commands that run as printed ------------------------------------------------------------------
def command(program: str = "keras-nas", module: str = "keras_nas.cli") -> str:
    """How to invoke ``program`` from this shell: its name when it is on PATH, else the script next to
    this Python (a virtual environment's ``bin/``, e.g. ``.venv/bin/keras-nas`` after ``make demo``),
    else ``python -m module`` with this interpreter."""
    if shutil.which(program):
        return program
    bindir = os.path.dirname(sys.executable)
    script = os.path.join(bindir, program)
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return _short(script)
    return f"{_short(sys.executable)} -m {module}"


def _short(path: str) -> str:
    """``path`` relative to the working directory when it lies under it (shorter, still runs)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    if rel.startswith(".."):
        return path
    return rel if os.sep in rel else os.path.join(".", rel)
