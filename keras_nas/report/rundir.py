"""Reading a search run directory for the report: results, settings, controller scalars.

Why a reader of its own: the report must work on a finished run, a run still going and a
run killed half-way, and start in well under a second, so it reads the files only
(``results.json``, ``run.json``, ``trial_costs.json``, ``tuner/oracle.json``, the TensorBoard
event files) and imports neither TensorFlow nor keras-tuner. Event files are decoded with
tensorboard's protobuf classes (no TensorFlow needed); a truncated last record (a killed
writer) ends the file quietly.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import struct
import time
from typing import Optional

from keras_nas import reporting

RUN_JSON = "run.json"
COSTS_JSON = "trial_costs.json"
ORACLE_JSON = os.path.join("tuner", "oracle.json")
# oracle.json's controller_class -> the --controller name
CONTROLLER_CLASSES = {
    "AgingEvolution": "evolution",
    "ReinforceController": "reinforce",
    "RandomController": "random",
}


class ReportError(ValueError):
    """The path cannot be reported on; the message names the path and what is missing."""


@dataclasses.dataclass
class Run:
    """What the report needs from a run directory (see :func:`load_run`)."""

    path: str
    trials: list  # results.json rows, trial order
    objective: str = "val_accuracy"
    config: dict = dataclasses.field(default_factory=dict)  # run.json "config" ({} while running)
    summary: dict = dataclasses.field(default_factory=dict)  # run.json
    controller: str = ""  # evolution / reinforce / random / "" (unknown)
    oracle: dict = dataclasses.field(default_factory=dict)  # oracle.json "keras_nas" state
    scalars: dict = dataclasses.field(default_factory=dict)  # {tag: [(step, wall_time, value)]}

    @property
    def completed(self) -> list:
        return [
            t for t in self.trials if t.get("status") == "COMPLETED" and t.get("score") is not None
        ]

    @property
    def not_completed(self) -> list:
        return [t for t in self.trials if t.get("status") != "COMPLETED"]

    def best(self) -> dict:
        return max(self.completed, key=lambda t: t["score"])

    def population_size(self) -> tuple:
        """``(P, where it came from)`` of an aging-evolution run, or ``(0, why not)``."""
        p = int(self.config.get("population_size") or 0)
        if p:
            return p, "--population_size"
        sizes = [v for _, _, v in self.scalars.get("controller/population/size", [])]
        if sizes:
            return int(max(sizes)), "the logged controller/population/size"
        pop = (
            self.oracle.get("controller", {}).get("population")
            if isinstance(self.oracle, dict)
            else None
        )
        if pop:
            return len(pop), "the oracle state's population"
        return (
            0,
            "the population size is not recorded (no run.json, TensorBoard logs or oracle state)",
        )


def _read_json(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: cannot read the {what} ({e}).") from None


def _trial_times(trials: list, costs: dict):
    """Add ``t_start``/``t_end`` (epoch seconds) to each row: trial_costs.json, else results."""
    for t in trials:
        c = costs.get(str(t.get("trial_id")), {}) if isinstance(costs, dict) else {}
        start = c.get("started")
        if start is None and t.get("started"):
            try:
                start = time.mktime(time.strptime(t["started"], "%Y-%m-%dT%H:%M:%S"))
            except (ValueError, OverflowError):
                start = None
        secs = c.get("train_seconds", t.get("train_seconds"))
        t["t_start"] = float(start) if start is not None else None
        t["t_end"] = float(start) + float(secs) if start is not None and secs is not None else None
        if t.get("params") is None and c.get("params") is not None:
            t["params"] = c["params"]


def load_run(path: str, *, require_completed: bool = True) -> Run:
    """The run in ``path``; :class:`ReportError` naming the path when it is not one.

    A run directory is one with ``results.json`` (written by ``keras-nas search`` after every
    trial); ``run.json`` appears only when the search finishes, so it is optional here.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ReportError(
            f"{path!r} does not exist; pass a search output directory (--output_dir of "
            "`keras-nas search`)."
        )
    if not os.path.isdir(path):
        raise ReportError(f"{path!r} is a file, not a search output directory.")
    results = os.path.join(path, reporting.RESULTS_JSON)
    if not os.path.isfile(results):
        raise ReportError(
            f"{path!r} is not a keras-nas search run directory: it has no {reporting.RESULTS_JSON} "
            "(`keras-nas search` writes it after the first trial)."
        )
    data = _read_json(results, "trial results")
    if not isinstance(data, dict) or not isinstance(data.get("trials"), list):
        raise ReportError(f"{results}: not a keras-nas results file (no 'trials' list).")
    run = Run(
        path=path,
        trials=[t for t in data["trials"] if isinstance(t, dict)],
        objective=str(data.get("objective") or "val_accuracy"),
    )
    if require_completed and not run.completed:
        raise ReportError(
            f"{path!r}: none of the {len(run.trials)} trial(s) in {reporting.RESULTS_JSON} "
            "completed; there is nothing to report yet (failure reasons are in its failure_reason "
            "column)."
        )
    if os.path.isfile(os.path.join(path, RUN_JSON)):
        summary = _read_json(os.path.join(path, RUN_JSON), "run summary")
        run.summary = summary if isinstance(summary, dict) else {}
        run.config = (
            run.summary.get("config", {}) if isinstance(run.summary.get("config"), dict) else {}
        )
    costs = {}
    if os.path.isfile(os.path.join(path, COSTS_JSON)):
        try:
            costs = _read_json(os.path.join(path, COSTS_JSON), "trial costs")
        except ReportError:  # costs only refine the timings; results.json has them to the second
            costs = {}
    _trial_times(run.trials, costs)
    oracle_path = os.path.join(path, ORACLE_JSON)
    if os.path.isfile(oracle_path):
        try:
            state = _read_json(oracle_path, "oracle state").get("keras_nas") or {}
        except (ReportError, AttributeError):
            state = {}
        run.oracle = state if isinstance(state, dict) else {}
    saved_class = run.oracle.get("controller_class", "")
    run.controller = run.config.get("controller") or CONTROLLER_CLASSES.get(saved_class, "")
    run.scalars = read_scalars(os.path.join(path, reporting.TB_DIR))
    return run


# -- TensorBoard event files without TensorFlow ---------------------------------------------------

_DTYPES = {
    1: ("float_val", "<f"),
    2: ("double_val", "<d"),
    3: ("int_val", "<i"),
    9: ("int64_val", "<q"),
}


def _records(data: bytes):
    """TFRecord framing: u64 length, u32 length CRC, payload, u32 payload CRC."""
    i = 0
    while i + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        if i + 12 + n + 4 > len(data):
            return  # a record cut short by a killed writer
        yield data[i + 12 : i + 12 + n]
        i += 12 + n + 4


def _scalar(value) -> Optional[float]:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor" or value.tensor.tensor_shape.dim:
        return None
    field, fmt = _DTYPES.get(value.tensor.dtype, (None, None))
    if field is None:
        return None
    vals = list(getattr(value.tensor, field))
    if vals:
        return float(vals[0])
    content = value.tensor.tensor_content
    return float(struct.unpack(fmt, content[: struct.calcsize(fmt)])[0]) if content else None


def read_scalars(logdir: str) -> dict:
    """``{tag: [(step, wall_time, value)]}`` of every scalar under ``logdir`` (by step; a step
    written twice, e.g. by a resumed run, keeps its last value). ``{}`` when there are none."""
    files = sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*")))
    if not files:
        return {}
    try:
        from tensorboard.compat.proto import event_pb2
    except (
        ImportError
    ):  # tensorboard is a dependency; without it the plots that need it are skipped
        return {}
    out: dict = {}
    for f in files:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for rec in _records(data):
            try:
                ev = event_pb2.Event.FromString(rec)
            except Exception:  # a corrupt record: skip it, keep the rest
                continue
            for v in ev.summary.value:
                x = _scalar(v)
                if x is not None:
                    out.setdefault(v.tag, {})[int(ev.step)] = (int(ev.step), float(ev.wall_time), x)
    return {tag: [by_step[s] for s in sorted(by_step)] for tag, by_step in out.items()}
