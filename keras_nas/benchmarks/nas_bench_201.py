"""NAS-Bench-201 tabular benchmark: run real keras-tuner Oracles on the published protocol.

``NASBench201(table_dir)`` loads ``nb201.csv`` (200-epoch accuracies, costs) and
``nb201_hp12.csv`` (12-epoch accuracies) from a directory the user gives (the files
described in their ``SOURCE.md``). :meth:`NASBench201.simulate` drives a keras-tuner
``Oracle`` through its normal trial lifecycle (``create_trial`` -> read the trial's
hyperparameter values -> ``update_trial`` -> ``end_trial``); the "training" is a table
look-up. Nothing of the search algorithm is re-implemented here.

Protocol (NAS-Bench-201, Dong & Yang 2020; NATS-Bench for the per-dataset search):

* search signal: the **12-epoch validation accuracy** (seed mean; the original drew one
  random seed, which these tables do not hold): ``cifar10_valid_12ep`` (cifar10-valid split),
  ``cifar100_valid_12ep``, ``imagenet16_valid_12ep`` when searching on those datasets (NATS).
* cost of one evaluation: 12 training epochs + one validation pass. CIFAR-10:
  ``12 * cifar10valid_train_time_per_epoch_s + cifar10valid_eval_time_per_epoch_s``.
  CIFAR-100 / ImageNet16-120 have no per-epoch columns: the train epoch is
  ``<ds>_train_time_200ep_s / 200`` and the validation pass is the CIFAR-10-valid pass scaled by
  the number of validation images (25,000 -> 5,000 for CIFAR-100 x-valid, 3,000 for
  ImageNet16-120 x-valid; the NATS time fields are proportional to image counts, and the
  per-image training rate of the three datasets is equal in these tables).
* budget (simulated seconds): CIFAR-10 12,000 (NAS-Bench-201); CIFAR-100 40,000 and
  ImageNet16-120 120,000 (NATS-Bench ``run-all.sh``). An evaluation that would exceed the
  budget ends the run and is not counted; with ``include_overhead`` the oracle's own
  wall-clock time is added to the budget as the original REA/REINFORCE scripts did.
* answer: the architecture with the best 12-epoch validation accuracy in the history
  (first one on ties); reported: its 200-epoch accuracies.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from keras_nas.space.nb201 import EDGES, NB201Cell, NB201Space, edge_name

MAIN_FILE = "nb201.csv"
HP12_FILE = "nb201_hp12.csv"

DATASETS = ("cifar10", "cifar100", "imagenet16")
_ALIASES = {
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar10-valid": "cifar10",
    "cifar100": "cifar100",
    "cifar-100": "cifar100",
    "imagenet16": "imagenet16",
    "imagenet16-120": "imagenet16",
    "imagenet": "imagenet16",
}
# Simulated time budgets in seconds (NB201 for CIFAR-10, NATS-Bench tss for the others).
BUDGETS = {"cifar10": 12000.0, "cifar100": 40000.0, "imagenet16": 120000.0}
# Validation images per search dataset (cifar10-valid: 25k/25k split; x-valid halves of the test sets).
VALID_IMAGES = {"cifar10": 25000, "cifar100": 5000, "imagenet16": 3000}

_MAIN_COLUMNS = (
    "arch_index",
    "arch",
    "cifar10_valid",
    "cifar10_test",
    "cifar100_valid",
    "cifar100_test",
    "imagenet16_valid",
    "imagenet16_test",
    "cifar10valid_train_time_per_epoch_s",
    "cifar10valid_eval_time_per_epoch_s",
    "cifar100_train_time_200ep_s",
    "imagenet16_train_time_200ep_s",
)
_HP12_COLUMNS = (
    "arch_index",
    "arch",
    "cifar10_valid_12ep",
    "cifar10_test_12ep",
    "cifar100_valid_12ep",
    "cifar100_test_12ep",
    "imagenet16_valid_12ep",
    "imagenet16_test_12ep",
)


class BenchmarkDataError(ValueError):
    """The benchmark tables are missing or malformed."""


def canonical_dataset(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(
            f"Unknown NAS-Bench-201 dataset {name!r}; use one of {list(DATASETS)} (or 'ImageNet16-120')."
        )
    return _ALIASES[key]


def _read_table(path: str, columns: Sequence[str]) -> dict:
    if not os.path.isfile(path):
        raise BenchmarkDataError(
            f"NAS-Bench-201 table {path!r} not found. Pass NASBench201(table_dir) the directory holding "
            f"{MAIN_FILE} and {HP12_FILE} (see their SOURCE.md)."
        )
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise BenchmarkDataError(
                f"{path}: file is empty; it needs a header with {list(columns)}."
            ) from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise BenchmarkDataError(
                f"{path}: missing column(s) {missing}; the file must have {list(columns)} "
                f"(found {header[:6]}{' ...' if len(header) > 6 else ''})."
            )
        pos = [header.index(c) for c in columns]
        rows = [[r[i] for i in pos] for r in reader if r]
    if not rows:
        raise BenchmarkDataError(f"{path}: no data rows.")
    out = {}
    for j, c in enumerate(columns):
        col = [r[j] for r in rows]
        if c == "arch":
            out[c] = col
        else:
            try:
                out[c] = np.array(col, dtype=np.int64 if c == "arch_index" else np.float64)
            except ValueError as e:
                raise BenchmarkDataError(
                    f"{path}: column {c!r} holds a non-number ({e})."
                ) from None
    return out


class NASBench201:
    """Tables of NAS-Bench-201 (15,625 cells) and the search protocol on them.

    Args:
      table_dir: directory with ``nb201.csv`` and ``nb201_hp12.csv``.
    """

    def __init__(self, table_dir: str):
        table_dir = os.fspath(table_dir)
        if not os.path.isdir(table_dir):
            raise BenchmarkDataError(
                f"NAS-Bench-201 table directory {table_dir!r} does not exist; pass the directory holding "
                f"{MAIN_FILE} and {HP12_FILE}."
            )
        self.table_dir = table_dir
        main = _read_table(os.path.join(table_dir, MAIN_FILE), _MAIN_COLUMNS)
        hp12 = _read_table(os.path.join(table_dir, HP12_FILE), _HP12_COLUMNS)
        n = len(main["arch"])
        if len(hp12["arch"]) != n or hp12["arch"] != main["arch"]:
            raise BenchmarkDataError(
                f"{HP12_FILE} and {MAIN_FILE} list different architectures (rows must match, same order)."
            )
        if not np.array_equal(main["arch_index"], np.arange(n)):
            raise BenchmarkDataError(f"{MAIN_FILE}: arch_index must be 0..{n - 1} in order.")
        self.arch_strings = main["arch"]
        self._index = {}
        for i, s in enumerate(self.arch_strings):
            self._index[NB201Cell.parse(s).ops] = i
        self.space = NB201Space()
        self.acc200 = {
            (ds, split): main[f"{ds}_{split}"] for ds in DATASETS for split in ("valid", "test")
        }
        self.acc12 = {
            (ds, split): hp12[f"{ds}_{split}_12ep"]
            for ds in DATASETS
            for split in ("valid", "test")
        }
        c10_epoch = main["cifar10valid_train_time_per_epoch_s"]
        c10_eval = main["cifar10valid_eval_time_per_epoch_s"]
        self.costs = {
            "cifar10": 12.0 * c10_epoch + c10_eval,
            "cifar100": 12.0 * main["cifar100_train_time_200ep_s"] / 200.0
            + c10_eval * VALID_IMAGES["cifar100"] / VALID_IMAGES["cifar10"],
            "imagenet16": 12.0 * main["imagenet16_train_time_200ep_s"] / 200.0
            + c10_eval * VALID_IMAGES["imagenet16"] / VALID_IMAGES["cifar10"],
        }

    def __len__(self):
        return len(self.arch_strings)

    # -- look-ups --------------------------------------------------------------------------
    def index_of(self, cell) -> int:
        """Index of a cell given as :class:`NB201Cell`, its ``|op~0|+...`` string, or a values dict."""
        if isinstance(cell, (int, np.integer)):
            if not 0 <= int(cell) < len(self):
                raise IndexError(f"NAS-Bench-201 index {cell} out of range 0..{len(self) - 1}.")
            return int(cell)
        if isinstance(cell, str):
            cell = NB201Cell.parse(cell)
        elif isinstance(cell, Mapping):
            cell = NB201Cell([cell[edge_name(to, frm)] for to, frm in EDGES])
        elif not isinstance(cell, NB201Cell):
            raise TypeError(
                f"index_of: expected an NB201Cell, arch string or values dict, got {type(cell).__name__}."
            )
        return self._index[cell.ops]

    def query(self, cell, dataset: str, epochs: int = 200, split: str = "test") -> float:
        """Accuracy (percent) of ``cell`` on ``dataset`` after ``epochs`` (200 or 12), ``split``
        'test' or 'valid' (CIFAR-10 'valid' is the cifar10-valid split)."""
        ds = canonical_dataset(dataset)
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}.")
        i = self.index_of(cell)
        if epochs == 200:
            return float(self.acc200[(ds, split)][i])
        if epochs == 12:
            return float(self.acc12[(ds, split)][i])
        raise ValueError(
            f"epochs must be 200 or 12 (the tables hold those schedules), got {epochs!r}."
        )

    def search_signal(self, cell, dataset: str) -> float:
        """The reward a search sees: 12-epoch validation accuracy."""
        return self.query(cell, dataset, epochs=12, split="valid")

    def cost(self, cell, dataset: str) -> float:
        """Simulated seconds for one evaluation (12 train epochs + one validation pass)."""
        return float(self.costs[canonical_dataset(dataset)][self.index_of(cell)])

    def best(self, dataset: str, split: str = "test", epochs: int = 200) -> tuple:
        arr = (self.acc200 if epochs == 200 else self.acc12)[(canonical_dataset(dataset), split)]
        i = int(np.argmax(arr))
        return i, float(arr[i])

    def hyperparameters(self):
        """A keras-tuner HyperParameters holding the six edge Choices (the space's order)."""
        import keras_tuner as kt

        hp = kt.HyperParameters()
        self.space.register(hp)
        return hp

    # -- simulated search ------------------------------------------------------------------
    def simulate(
        self,
        make_oracle: Callable[..., Any],
        dataset: str = "cifar10",
        time_budget: Optional[float] = None,
        seed: int = 0,
        include_overhead: bool = False,
        write_files: bool = True,
        directory: Optional[str] = None,
        max_trials: int = 100000,
        proxy_cost_s: float = 0.0,
    ) -> "SearchResult":
        """One search run.

        ``make_oracle(objective=, max_trials=, hyperparameters=, seed=)`` returns a keras-tuner
        Oracle (e.g. ``functools.partial(AgingEvolutionOracle, population_size=10, sample_size=3)``).
        The oracle's project directory is ``directory`` (a temporary one, removed afterwards, when
        None). ``write_files=False`` gives a keras-nas oracle a state store that writes nothing
        (``store=NoFiles()``: no per-trial json/npz writes), which is how the algorithm's own
        overhead is measured in the benchmark script. Overhead is timed either way: ``overhead_s`` = wall time inside
        ``create_trial`` + ``update_trial`` + ``end_trial``; ``controller_s`` = the part spent in the
        controller's ``propose``/``observe`` (when the oracle has a keras-nas controller).

        Proxy-assisted oracles (``proxy=...``): their proxy calls run inside ``create_trial``, so
        ``include_overhead`` adds their wall time; ``proxy_cost_s`` also charges that many simulated
        seconds per proxy call (the controller's ``num_proxy_calls``), e.g. the measured cost of
        building and scoring one network, to the trial whose proposal made the calls. The published
        protocol charges nothing for a precomputed table (``proxy_cost_s=0``).
        """
        import keras_tuner as kt

        ds = canonical_dataset(dataset)
        budget = BUDGETS[ds] if time_budget is None else float(time_budget)
        signal = self.acc12[(ds, "valid")]
        costs = self.costs[ds]
        objective = kt.Objective("val_acc_12ep", "max")
        from keras_nas.tuning import internals
        from keras_nas.tuning.state import NoFiles

        extra = {} if write_files else {"store": NoFiles()}
        oracle = make_oracle(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=self.hyperparameters(),
            seed=seed,
            **extra,
        )
        if hasattr(oracle, "verbose"):
            oracle.verbose = 0  # keras-tuner's per-trial console table
        tmp = None
        if directory is None:
            directory = tmp = tempfile.mkdtemp(prefix="nb201_")
        try:
            internals.set_project_dir(oracle, directory, f"{type(oracle).__name__}_{ds}_{seed}")
            ctrl_time = [0.0]
            ctrl = getattr(oracle, "controller", None)
            if ctrl is not None:
                _time_methods(ctrl, ("propose", "observe"), ctrl_time)
            used, overhead, history = 0.0, 0.0, []
            n = 0
            calls = 0
            while True:
                t0 = time.perf_counter()
                trial = oracle.create_trial("nb201-sim")
                dt = time.perf_counter() - t0
                if trial.status != kt.engine.trial.TrialStatus.RUNNING:
                    break
                i = self.index_of(trial.hyperparameters.values)
                new_calls = int(getattr(ctrl, "num_proxy_calls", 0) or 0)
                cost = (
                    float(costs[i])
                    + (dt if include_overhead else 0.0)
                    + proxy_cost_s * (new_calls - calls)
                )
                calls = new_calls
                if used + cost > budget:
                    overhead += dt
                    break
                t1 = time.perf_counter()
                oracle.update_trial(trial.trial_id, {"val_acc_12ep": float(signal[i])})
                trial.status = kt.engine.trial.TrialStatus.COMPLETED
                oracle.end_trial(trial)
                dt2 = time.perf_counter() - t1
                used += cost + (dt2 if include_overhead else 0.0)
                overhead += dt + dt2
                history.append(i)
                n += 1
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        if not history:
            raise ValueError(f"Budget {budget} s is smaller than the first evaluation's cost.")
        hist = np.array(history)
        best = int(hist[int(np.argmax(signal[hist]))])
        return SearchResult(
            dataset=ds,
            seed=seed,
            best_index=best,
            num_trials=len(history),
            simulated_time=used,
            overhead_s=overhead,
            controller_s=ctrl_time[0],
            results={
                f"{d}_{s}": float(self.acc200[(d, s)][best])
                for d in DATASETS
                for s in ("valid", "test")
            },
            proxy_calls=int(getattr(ctrl, "num_proxy_calls", 0) or 0),
            proxy_s=float(getattr(ctrl, "proxy_seconds", 0.0) or 0.0),
        )


@dataclasses.dataclass
class SearchResult:
    dataset: str
    seed: int
    best_index: int
    num_trials: int
    simulated_time: float
    overhead_s: float  # wall time in create/update/end_trial (all trials of the run)
    controller_s: float  # of which in the controller's propose/observe
    results: dict  # 200-epoch accuracies of the chosen cell, "<dataset>_<valid|test>"
    proxy_calls: int = 0  # proxy evaluations (proxy-assisted oracles)
    proxy_s: float = 0.0  # their wall time (part of overhead_s)

    @property
    def test_accuracy(self) -> float:
        return self.results[f"{self.dataset}_test"]

    @property
    def overhead_ms_per_trial(self) -> float:
        return 1000.0 * self.overhead_s / max(self.num_trials, 1)


def _time_methods(obj, names, acc):
    for name in names:
        fn = getattr(obj, name)

        def timed(*a, _fn=fn, **k):
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                acc[0] += time.perf_counter() - t

        setattr(obj, name, timed)


def summarize(values: Sequence[float]) -> tuple:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std()) if len(a) > 1 else 0.0


__all__ = [
    "NASBench201",
    "SearchResult",
    "BenchmarkDataError",
    "BUDGETS",
    "DATASETS",
    "canonical_dataset",
]
