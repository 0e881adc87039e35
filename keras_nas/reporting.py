"""What a search run leaves behind and shows while it runs: results file, TensorBoard, progress.

Why one module: the CLI, the demo and the Python API all report the same way, and the
files are the contract other tools (``keras-nas train/export/show``, notebooks) read.

Files under the output directory:

* ``results.csv`` / ``results.json`` -- one row per trial: architecture, score, cost
  (parameter count, training seconds), status, start time, failure reason. Rewritten
  after every trial from the tuner's oracle (so a resumed run lists earlier trials too).
* ``tensorboard/search/`` -- event files, tags listed in :data:`TAGS`.

The reporter reads only the trials (status, score, metrics, message) and
``oracle.summary_scalars()`` -> ``{name: float}``, logged as ``controller/<name>``.
keras-nas's ``ControllerOracle`` asks its controller's ``summary_scalars(param_space)``:
aging evolution gives ``population/best``, ``population/median``, ``population/size`` and
``failed``; REINFORCE gives ``reward`` (mean of the last update's batch), ``baseline``,
``entropy`` and ``prob/<decision>`` (probability of the most likely option, along the
policy's most likely trajectory). Any other oracle may publish the same way.

Population best/median fitness are always logged: the controller's when it publishes
``population/best``/``population/median``, else those of the last ``population_size``
completed trials -- which is the aging-evolution population by definition.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
import time
from typing import Any, Callable, Mapping, Optional

from keras_nas import atomic

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
TB_DIR = os.path.join("tensorboard", "search")
TAGS = (
    "trial/score",
    "trial/params",
    "trial/train_seconds",
    "trial/failed",
    "trial/architecture",
    "search/best_so_far",
    "search/completed_trials",
    "population/best_fitness",
    "population/median_fitness",
    "cells/best",
)
CSV_FIELDS = (
    "trial",
    "trial_id",
    "status",
    "score",
    "params",
    "train_seconds",
    "started",
    "architecture",
    "failure_reason",
)


def _write(path: str, text: str) -> None:
    atomic.write_text(path, text, fsync=False)


def format_seconds(s: float) -> str:
    s = int(round(max(s, 0)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _failure_reason(message: Optional[str]) -> str:
    """The last non-empty line of a traceback: the exception and its message."""
    from keras_nas.tuning.failures import failure_reason

    return failure_reason(message) or ""


def _finite(x) -> Optional[float]:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


class SearchReporter:
    """Collects per-trial records, writes results files and TensorBoard, prints progress.

    Args:
      output_dir: where results and logs go.
      describe: ``hp values -> architecture string`` (the search space's decode + str).
      max_trials: for "trial i/N" and the time estimate.
      objective / direction: the metric the search optimises (e.g. ``val_accuracy``, ``"max"``).
      population_size: window for population statistics when the controller has none.
      image: ``hp values -> PNG bytes`` of the architecture (None: no images).
      log: where progress lines go (``print`` by default).
      chance: ``(prior, threshold)`` of an accuracy objective: the progress line flags a best score
        below ``threshold`` (chance plus noise) as within noise of chance, with ``chance_hint``.

    Trials are numbered 1, 2, ... in creation order (``trial`` in every line, file and report);
    ``trial_id`` is keras-tuner's id (its ``trial_<id>`` directory), kept beside it in the files.
    """

    def __init__(
        self,
        output_dir: str,
        describe: Callable[[Mapping], str],
        *,
        max_trials: int,
        objective: str = "val_accuracy",
        direction: str = "max",
        population_size: int = 10,
        image: Optional[Callable[[Mapping], bytes]] = None,
        log: Callable[[str], Any] = print,
        tensorboard: bool = True,
        chance: Optional[tuple] = None,
        chance_hint: str = "raise --epochs",
    ):
        self.output_dir = output_dir
        self.describe = describe
        self.max_trials = max_trials
        self.objective = objective
        self.direction = direction
        self.chance = chance
        self.chance_hint = chance_hint
        self.population_size = max(1, int(population_size))
        self.image = image
        self.log = log
        os.makedirs(output_dir, exist_ok=True)
        self._extra_path = os.path.join(output_dir, "trial_costs.json")
        self.extra: dict = {}
        if os.path.exists(self._extra_path):
            try:
                with open(self._extra_path, encoding="utf-8") as f:
                    self.extra = json.load(f)
                if not isinstance(self.extra, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as e:  # a report, not state: start it again
                log(
                    f"warning: {self._extra_path} is unreadable ({e}); trial costs of earlier trials are "
                    "left out of the results files."
                )
                self.extra = {}
        self._writer = None
        self._tensorboard = tensorboard
        self._session_start = time.time()
        self._session_trials = 0
        self._current: dict = {}
        self._best_logged = None

    # -- hooks called by the tuner ----------------------------------------------------
    def trial_begin(self, trial_id: str):
        self._current = {"started": time.time(), "params": None}

    def set_params(self, n: int):
        self._current["params"] = int(n)

    def trial_end(self, trial, oracle):
        cur = self._current or {"started": time.time()}
        self.extra[trial.trial_id] = {
            "started": cur["started"],
            "train_seconds": time.time() - cur["started"],
            "params": cur.get("params"),
        }
        _write(self._extra_path, json.dumps(self.extra))
        self._session_trials += 1
        records = self.records(oracle)
        self.write_results(records)
        rec = next(r for r in records if r["trial_id"] == trial.trial_id)
        self._log_tensorboard(rec, records, oracle)
        self._progress(rec, records, oracle)

    # -- records ------------------------------------------------------------------------
    def records(self, oracle) -> list:
        """One dict per trial known to the oracle, in creation order."""
        out = []
        trials = list(getattr(oracle, "trials", {}).values())
        trials.sort(
            key=lambda t: (len(t.trial_id), t.trial_id)
        )  # keras-tuner ids are zero-padded counters
        for i, t in enumerate(trials):
            ex = self.extra.get(t.trial_id, {})
            values = dict(t.hyperparameters.values)
            try:
                arch = self.describe(values)
            except Exception as e:  # an incomplete or foreign trial; keep the row
                arch = f"<undecodable: {e}>"
            status = str(getattr(t.status, "value", t.status))
            score = _finite(t.score) if status == "COMPLETED" else None
            out.append(
                {
                    "trial": i + 1,
                    "trial_id": t.trial_id,
                    "status": status,
                    "score": score,
                    "params": ex.get("params"),
                    "train_seconds": round(ex["train_seconds"], 2)
                    if "train_seconds" in ex
                    else None,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ex["started"]))
                    if "started" in ex
                    else "",
                    "architecture": arch,
                    "failure_reason": _failure_reason(getattr(t, "message", None))
                    if status != "COMPLETED"
                    else "",
                    "hyperparameters": values,
                }
            )
        return out

    def write_results(self, records: list):
        """results.csv and results.json, each written atomically (rebuilt from the trials every time)."""
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in CSV_FIELDS})
        _write(os.path.join(self.output_dir, RESULTS_CSV), buf.getvalue())
        _write(
            os.path.join(self.output_dir, RESULTS_JSON),
            json.dumps(
                {"objective": self.objective, "direction": self.direction, "trials": records},
                indent=1,
            ),
        )

    def best(self, records: list) -> Optional[dict]:
        """The completed trial with the best score (the first one on ties), None if none completed."""
        done = [r for r in records if r["score"] is not None]
        if not done:
            return None
        sign = -1.0 if self.direction == "min" else 1.0
        return max(done, key=lambda r: sign * r["score"])

    # -- TensorBoard ------------------------------------------------------------------------
    def writer(self):
        if self._writer is None and self._tensorboard:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(os.path.join(self.output_dir, TB_DIR))
        return self._writer

    def _population_fitness(self, records, scalars) -> tuple:
        """(best, median) fitness of the controller's population when it publishes them
        (``population/best``/``population/median``), else of the last ``population_size``
        completed trials; None when there is nothing to report."""
        if "population/best" in scalars and "population/median" in scalars:
            return scalars["population/best"], scalars["population/median"]
        done = [r["score"] for r in records if r["score"] is not None][-self.population_size :]
        return (max(done), statistics.median(done)) if done else None

    @staticmethod
    def controller_scalars(oracle) -> dict:
        """``{name: float}`` the oracle publishes through ``summary_scalars()``; {} if none.
        Non-finite values are left out; statistics never break a search."""
        src = getattr(oracle, "summary_scalars", None)
        if not callable(src):
            return {}
        try:
            src = src()
        except Exception:
            return {}
        out = {}
        for k, v in (src or {}).items():
            fv = _finite(v)
            if fv is not None:
                out[str(k)] = fv
        return out

    def _log_tensorboard(self, rec, records, oracle):
        w = self.writer()
        if w is None:
            return
        import tensorflow as tf

        step = rec["trial"]
        best = self.best(records)
        with w.as_default(step=step):
            if rec["score"] is not None:
                tf.summary.scalar("trial/score", rec["score"])
            if rec["params"] is not None:
                tf.summary.scalar("trial/params", float(rec["params"]))
            if rec["train_seconds"] is not None:
                tf.summary.scalar("trial/train_seconds", rec["train_seconds"])
            tf.summary.scalar(
                "trial/failed", 0.0 if rec["status"] in ("COMPLETED", "STOPPED") else 1.0
            )
            tf.summary.text(
                "trial/architecture", f"{rec['status']} score={rec['score']}: {rec['architecture']}"
            )
            if best is not None:
                tf.summary.scalar("search/best_so_far", best["score"])
            tf.summary.scalar(
                "search/completed_trials", float(sum(r["score"] is not None for r in records))
            )
            scalars = self.controller_scalars(oracle)
            if "population/best" not in scalars:  # else controller/population/* already says it
                pop = self._population_fitness(records, scalars)
                if pop:
                    tf.summary.scalar("population/best_fitness", pop[0])
                    tf.summary.scalar("population/median_fitness", pop[1])
            if rec["score"] is not None and callable(getattr(oracle, "summary_scalars", None)):
                scalars.setdefault("reward", rec["score"])
            for k, v in scalars.items():
                tf.summary.scalar(f"controller/{k}", v)
            if (
                best is not None
                and self.image is not None
                and best["trial_id"] != self._best_logged
            ):
                try:
                    png = self.image(best["hyperparameters"])
                    tf.summary.image(
                        "cells/best", tf.image.decode_png(png, channels=3)[None], max_outputs=1
                    )
                    self._best_logged = best["trial_id"]
                except ImportError:  # Pillow missing: no pictures
                    self.image = None
        w.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- console ----------------------------------------------------------------------------
    def _progress(self, rec, records, oracle=None):
        counts = trial_counts(oracle) if oracle is not None else {"finished": len(records)}
        best = self.best(records)
        elapsed = time.time() - self._session_start
        per_trial = elapsed / max(self._session_trials, 1)
        left = max(self.max_trials - counts["finished"], 0) * per_trial
        budget = getattr(oracle, "time_budget", None)
        remaining = budget.remaining() if budget is not None else None
        eta = f"~{format_seconds(left)} left"
        if remaining is not None and remaining < left:  # the time budget ends the search first
            eta = f"~{format_seconds(remaining)} left (time budget)"
        score = (
            f"{rec['score']:.4f}"
            if rec["score"] is not None
            else f"{rec['status']} ({rec['failure_reason'][:80]})"
        )
        params = f" {rec['params'] / 1e3:.1f}k params" if rec["params"] else ""
        best_s = (
            f"best {best['score']:.4f} (trial {best['trial']})"
            if best
            else "no completed trial yet"
        )
        if best is not None and self.chance is not None:
            if best["score"] < self.chance[1]:
                best_s += f", within noise of chance ({self.chance[0]:.3f}): {self.chance_hint}"
        self.log(
            f"[trial {rec['trial']}/{self.max_trials}] {self.objective}={score}{params} "
            f"in {rec['train_seconds']:.1f}s | {best_s} | elapsed {format_seconds(elapsed)}, "
            f"{eta}\n    {rec['architecture']}"
        )


def trial_counts(oracle) -> dict:
    """``{"total", "finished", "completed", "unfinished"}`` trials of ``oracle``: finished = completed or
    failed; unfinished = started but not ended (a killed run's running trial, re-run on resume)."""
    statuses = [
        str(getattr(t.status, "value", t.status)) for t in getattr(oracle, "trials", {}).values()
    ]
    completed = statuses.count("COMPLETED")
    finished = completed + statuses.count("FAILED")
    return {
        "total": len(statuses),
        "finished": finished,
        "completed": completed,
        "unfinished": len(statuses) - finished,
    }


# -- results_summary: architectures instead of raw decisions ---------------------------------


def _architecture_of(values: Mapping, hypermodel) -> Optional[str]:
    """``str`` of the architecture ``values`` encode, or None when ``hypermodel`` cannot decode them."""
    try:
        genotype = getattr(hypermodel, "genotype", None)
        if callable(genotype):
            return str(genotype(dict(values)))
        space = getattr(hypermodel, "space", None)
        if space is not None and hasattr(space, "decode"):
            return str(space.decode({d.name: values[d.name] for d in space.decisions}))
    except Exception:  # a foreign or incomplete trial: show its raw values instead
        return None
    return None


def summarize_trial(trial, hypermodel=None, *, raw: bool = False) -> str:
    """keras-tuner's ``Trial.summary()`` text with the architecture in place of its decisions.

    Why: a cell search has 16-40 decisions (``normal/b0_in0: 0`` ...), unreadable as a list;
    the genotype string says the same in one line. ``raw=True`` appends the decisions too;
    they are always shown when ``hypermodel`` cannot decode them. A trial that did not
    complete shows its status and failure reason (the last line of ``trial.message``).
    """
    values = dict(getattr(getattr(trial, "hyperparameters", None), "values", None) or {})
    lines = [f"Trial {trial.trial_id} summary"]
    arch = _architecture_of(values, hypermodel) if values else None
    if arch is not None:
        lines.append(f"Architecture: {arch}")
    if arch is None or raw:
        lines.append(
            f"Hyperparameters ({len(values)}):"
            if values
            else "Hyperparameters: default configuration"
        )
        lines += [f"{name}: {value}" for name, value in values.items()]
    else:  # values the architecture does not hold (a learning rate the HyperModel adds, say)
        decided = {d.name for d in getattr(getattr(hypermodel, "space", None), "decisions", ())}
        other = {k: v for k, v in values.items() if k not in decided} if decided else {}
        if other:
            lines.append("Other hyperparameters:")
            lines += [f"{name}: {value}" for name, value in other.items()]
    status = str(getattr(getattr(trial, "status", None), "value", getattr(trial, "status", "")))
    if getattr(trial, "score", None) is not None:
        lines.append(f"Score: {trial.score}")
    if status and status != "COMPLETED":
        lines.append(f"Status: {status}")
    reason = _failure_reason(getattr(trial, "message", None))
    if reason:
        lines.append(f"Reason: {reason}")
    return "\n".join(lines)


class ResultsSummaryMixin:
    """Put before ``kt.Tuner`` in a tuner's bases: ``results_summary()`` then prints each
    trial's architecture (:func:`summarize_trial`) instead of its raw decisions.

    ``results_summary(num_trials=10, raw=False)``: ``raw=True`` lists the decisions as well.
    """

    def results_summary(self, num_trials: int = 10, raw: bool = False):
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Showing {num_trials} best trials")
        print(f"{self.oracle.objective}")
        for trial in self.oracle.get_best_trials(num_trials):
            print()
            print(summarize_trial(trial, getattr(self, "hypermodel", None), raw=raw))
