"""NAS-Bench-201 multi-trial search benchmark: random search, aging evolution, REINFORCE,
predictor-guided search (``PredictorOracle``), Optuna's default TPE, and the proxy-assisted
variants (``rea_proxy``, ``reinforce_proxy``, ``predictor_proxy``: any algorithm name + ``_proxy``).

Runs keras-nas's real keras-tuner Oracles (``RandomOracle``, ``AgingEvolutionOracle``,
``ReinforceOracle``, ``PredictorOracle``; Optuna ``TPESampler()`` driven ask/tell by a small
controller adapter inside a ``ControllerOracle``, so it goes through exactly the same trial
lifecycle and budget accounting) through keras-tuner's trial lifecycle on the NAS-Bench-201 tables
(``keras_nas.benchmarks.NASBench201``; 12-epoch validation accuracy as the search signal,
simulated time budget) and prints mean +- std of the chosen cell's 200-epoch test accuracy
beside the published numbers, plus the oracle overhead per trial.

Overhead is measured with an oracle whose state store writes nothing (``store=NoFiles()``: no
keras-tuner per-trial json, no controller npz): it is the wall time spent in
``create_trial`` + ``update_trial`` + ``end_trial`` (keras-tuner bookkeeping + controller), and,
separately, the controller's own ``propose``/``observe`` (including REINFORCE's Adam updates).

Besides the budgeted search it reports the mean regret on the search signal (best 12-epoch
validation accuracy in the table minus the chosen cell's), the **sample-efficiency protocol**
(``--eff-runs``: 200-epoch ``cifar10_valid`` as the signal, no budget; number of evaluations
until the cell with the best ``cifar10_valid`` is evaluated, capped at ``--eff-cap``) and the
oracle overhead per trial around trial 500 (``--overhead-at``).

Proxy-assisted variants (``<algo>_proxy``): the same oracle with ``proxy=`` a callable returning the
searched dataset's synflow from ``benchmarks/data/nb201_proxies.csv`` (``TableProxy``; the
sample-efficiency protocol uses the CIFAR-10 column), ``proxy_samples`` / ``proxy_candidates`` from
``--proxy-samples`` / ``--proxy-candidates`` (default: the oracle's). Proxy time is counted in the
budget: ``--proxy-costs 0,0.4`` runs every proxy variant once per value, charging that many simulated
seconds per proxy evaluation (``NASBench201.simulate(proxy_cost_s=...)``; 0 = the published protocol,
where a precomputed table costs nothing); ``--include-overhead`` adds their wall time too. The
sample-efficiency table also reports the proxy evaluations spent until the target was found.

    python benchmarks/nas_bench_201.py --runs 100 --jobs 2
    python benchmarks/nas_bench_201.py --algos rs,rea,reinforce,tpe,predictor --runs 100 --runs-other 30 \
        --eff-runs 30 --jobs 2 --seed0 1001   # needs optuna (pip install keras-nas[bench])
    python benchmarks/nas_bench_201.py --algos rea,rea_proxy,reinforce,reinforce_proxy,predictor,predictor_proxy \
        --datasets cifar10 --proxy-costs 0,0.4 --eff-runs 30 --seed0 1001
    python benchmarks/nas_bench_201.py --measure-proxy-cost   # seconds to build + score one network
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from keras_nas.benchmarks.nas_bench_201 import BUDGETS, DATASETS, NASBench201, canonical_dataset  # noqa: E402
from keras_nas.controllers.base import Controller  # noqa: E402

# NAS-Bench-201 paper, Table 5 (mean +- std over 500 runs; searched on CIFAR-10, 200-epoch test
# accuracy of the chosen cell on each dataset). See ../shared/nas-bench-201/PUBLISHED.md for the
# status of each number (several are second-hand or unverified).
PUBLISHED = {
    "rs": {"cifar10": (93.70, 0.36), "cifar100": (71.04, 1.07), "imagenet16": (44.57, 1.25)},
    "rea": {"cifar10": (93.92, 0.30), "cifar100": (71.84, 0.99), "imagenet16": (45.54, 1.03)},
    "reinforce": {"cifar10": (93.85, 0.37), "cifar100": (71.71, 1.09), "imagenet16": (45.24, 1.18)},
}
OPTIMUM = {"cifar10": 94.37, "cifar100": 73.51, "imagenet16": 47.31}
NAMES = {
    "rs": "random search",
    "rea": "aging evolution (P=10, S=3)",
    "reinforce": "REINFORCE",
    "tpe": "Optuna TPESampler()",
    "predictor": "PredictorOracle",
}
PROXY_TABLE = os.path.join(HERE, "data", "nb201_proxies.csv")

# REINFORCE settings (see benchmarks/README.md, nas_bench_201): NB201's EMA 0.9 and update after
# every architecture (batch 1, as NB201's reinforce.py); LSTM controller with ENAS's tanh logit
# bound; the learning rate was chosen by a small sweep on CIFAR-10 (seeds 1..60).
REINFORCE_KWARGS = dict(learning_rate=0.01, baseline_decay=0.9, batch_size=1, tanh_constant=1.1)
FACTORIZED_KWARGS = dict(policy="factorized", learning_rate=0.1, baseline_decay=0.9, batch_size=1)


# PredictorOracle settings: the controller's defaults (chosen on tuning seeds 1..40, see README).
PREDICTOR_KWARGS = dict()


class OptunaTPEController(Controller):
    """Ask/tell adapter: Optuna's ``TPESampler()`` (default settings; only the seed is set, for
    reproducible runs) behind the keras-nas Controller contract. Benchmark only: no persistence."""

    def __init__(self, seed=None):
        import optuna

        super().__init__(seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        self.pending = {}
        self._dists = None

    def propose(self, space):
        if self._dists is None:
            dist = self._optuna.distributions.CategoricalDistribution
            self._dists = {p.name: dist(list(p.options)) for p in space.params}
        trial = self.study.ask(self._dists)
        values = {k: trial.params[k] for k in self._dists}
        self.pending.setdefault(tuple(sorted(values.items())), []).append(trial)
        return values

    def observe(self, values, reward, space=None):
        trial = self.pending[tuple(sorted(values.items()))].pop(0)
        if reward is None or not np.isfinite(reward):
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, float(reward))

    def set_state(self, state):
        raise NotImplementedError("the Optuna adapter does not resume (benchmark only)")


def make_factory(
    algo: str, reinforce_kwargs: dict, predictor_kwargs: dict = None, proxy=None, proxy_kwargs=None
):
    """``algo`` of rs, rea, reinforce, tpe, predictor, or any of them + ``_proxy`` (then ``proxy``, a
    callable ``values -> float``, and ``proxy_kwargs`` go to the oracle)."""
    if algo.endswith("_proxy"):
        base = make_factory(algo[: -len("_proxy")], reinforce_kwargs, predictor_kwargs)
        return functools.partial(base, proxy=proxy, **(proxy_kwargs or {}))
    from keras_nas.tuning.oracle import (
        AgingEvolutionOracle,
        ControllerOracle,
        PredictorOracle,
        RandomOracle,
        ReinforceOracle,
    )

    # allow_duplicates=True: the NB201 scripts re-evaluate (and pay for) repeated architectures.
    if algo == "rs":
        return functools.partial(RandomOracle, allow_duplicates=True)
    if algo == "rea":
        return functools.partial(
            AgingEvolutionOracle,
            population_size=10,
            sample_size=3,
            identity_prob=0.0,
            allow_duplicates=True,
        )
    if algo == "reinforce":
        return functools.partial(ReinforceOracle, allow_duplicates=True, **reinforce_kwargs)
    if algo == "predictor":
        # The controller itself never re-proposes a finished or pending cell.
        return functools.partial(PredictorOracle, allow_duplicates=True, **(predictor_kwargs or {}))
    if algo == "tpe":

        def tpe_oracle(objective=None, max_trials=10, hyperparameters=None, seed=None, **kwargs):
            return ControllerOracle(
                objective=objective,
                max_trials=max_trials,
                hyperparameters=hyperparameters,
                seed=seed,
                controller=OptunaTPEController(seed),
                allow_duplicates=True,
                **kwargs,
            )

        return tpe_oracle
    raise ValueError(f"unknown algo {algo!r}")


_BENCH = None
_PROXY_COLUMNS: dict = {}


def load_proxy_column(path: str, ds: str, name: str = "synflow") -> np.ndarray:
    """``<ds>_<name>`` of the proxy table, indexed by NAS-Bench-201 arch_index."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    col = np.array([float(r[f"{ds}_{name}"]) for r in rows])
    if [int(r["arch_index"]) for r in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: arch_index must be 0..{len(rows) - 1} in order")
    return col


class TableProxy:
    """A callable proxy ``values -> float``: the precomputed score of the cell (picklable)."""

    def __init__(self, bench, scores):
        self.bench, self.scores = bench, scores

    def __call__(self, values) -> float:
        return float(self.scores[self.bench.index_of(values)])


def measure_proxy_cost(n: int = 10, name: str = "synflow", seed: int = 0) -> float:
    """Mean seconds to build one random NAS-Bench-201 network (``build_nb201_network``, CIFAR-10 size) and score
    it with ``keras_nas.proxies.score`` -- what a tuner's ``proxy="synflow"`` costs per call. Three warm-up cells
    (tracing) are not counted."""
    import random

    from keras_nas import build_nb201_network
    from keras_nas.proxies import score
    from keras_nas.space.nb201 import NB201Space

    space, rng = NB201Space(), random.Random(seed)
    times = []
    for i in range(n + 3):
        cell = space.decode({d.name: rng.choice(d.options) for d in space.decisions})
        t0 = time.perf_counter()
        score(build_nb201_network(cell), name)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times))


def label(algo: str, proxy_cost: float) -> str:
    """Result key: ``algo``, or ``algo@<cost>s`` for a proxy variant run with proxy time charged."""
    return f"{algo}@{proxy_cost:g}s" if algo.endswith("_proxy") and proxy_cost else algo


def display_name(key: str) -> str:
    algo, _, cost = key.partition("@")
    base = algo[: -len("_proxy")] if algo.endswith("_proxy") else algo
    name = NAMES[base] + (" + synflow" if algo.endswith("_proxy") else "")
    return name + (f" ({cost}/eval charged)" if cost else "")


def _fresh_oracle(bench, factory, seed, max_trials, directory, metric):
    import keras_tuner as kt

    from keras_nas.tuning import internals
    from keras_nas.tuning.state import NoFiles

    oracle = factory(
        objective=kt.Objective(metric, "max"),
        max_trials=max_trials,
        hyperparameters=bench.hyperparameters(),
        seed=seed,
        store=NoFiles(),  # as simulate(write_files=False)
    )
    oracle.verbose = 0
    internals.set_project_dir(oracle, directory, f"{type(oracle).__name__}_{seed}")
    return oracle


def evals_to_best(bench, factory, seed, cap):
    """Sample-efficiency protocol: 200-epoch ``cifar10_valid`` as the signal, no budget; the number
    of evaluations (repeats included) until the cell with the best ``cifar10_valid`` is evaluated,
    or None when it is not within ``cap``. Same keras-tuner trial lifecycle as ``simulate``."""
    import keras_tuner as kt

    signal = bench.acc200[("cifar10", "valid")]
    target = int(np.argmax(signal))
    with tempfile.TemporaryDirectory(prefix="nb201_eff_") as d:
        oracle = _fresh_oracle(bench, factory, seed, cap, d, "val_acc_200ep")
        ctrl = getattr(oracle, "controller", None)
        for n in range(1, cap + 1):
            trial = oracle.create_trial("nb201-sim")
            if trial.status != kt.engine.trial.TrialStatus.RUNNING:
                return None, int(getattr(ctrl, "num_proxy_calls", 0) or 0)
            i = bench.index_of(trial.hyperparameters.values)
            oracle.update_trial(trial.trial_id, {"val_acc_200ep": float(signal[i])})
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
            oracle.end_trial(trial)
            if i == target:
                return n, int(getattr(ctrl, "num_proxy_calls", 0) or 0)
    return None, int(getattr(ctrl, "num_proxy_calls", 0) or 0)


def overhead_profile(bench, factory, seed, upto, window):
    """Oracle wall time per trial (create + update + end, file writes off) and the controller's part,
    averaged over trials ``window[0]..window[1]`` (1-based) of an unbudgeted CIFAR-10 (12-epoch) run."""
    import keras_tuner as kt

    from keras_nas.benchmarks.nas_bench_201 import _time_methods

    signal = bench.acc12[("cifar10", "valid")]
    tot, ctl = [], []
    with tempfile.TemporaryDirectory(prefix="nb201_ovh_") as d:
        oracle = _fresh_oracle(bench, factory, seed, upto + 1, d, "val_acc_12ep")
        acc = [0.0]
        if getattr(oracle, "controller", None) is not None:
            _time_methods(oracle.controller, ("propose", "observe"), acc)
        for n in range(1, upto + 1):
            c0 = acc[0]
            t0 = time.perf_counter()
            trial = oracle.create_trial("nb201-sim")
            i = bench.index_of(trial.hyperparameters.values)
            oracle.update_trial(trial.trial_id, {"val_acc_12ep": float(signal[i])})
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
            oracle.end_trial(trial)
            if window[0] <= n <= window[1]:
                tot.append(time.perf_counter() - t0)
                ctl.append(acc[0] - c0)
    return 1000 * float(np.mean(tot)), 1000 * float(np.max(tot)), 1000 * float(np.mean(ctl))


def _worker(task):
    global _BENCH
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    (
        mode,
        table_dir,
        algo,
        ds,
        seeds,
        arg,
        include_overhead,
        rkw,
        pkw,
        proxy_cost,
        xkw,
        proxy_table,
    ) = task
    if _BENCH is None:
        _BENCH = NASBench201(table_dir)
    proxy = None
    if algo.endswith("_proxy"):
        if ds not in _PROXY_COLUMNS:
            _PROXY_COLUMNS[ds] = load_proxy_column(proxy_table, ds)
        proxy = TableProxy(_BENCH, _PROXY_COLUMNS[ds])
    factory = make_factory(algo, rkw, pkw, proxy, xkw)
    out = []
    for s in seeds:
        if mode == "eff":
            n, calls = evals_to_best(_BENCH, factory, s, arg)
            out.append((mode, algo, ds, s, n, calls))
            continue
        if mode == "ovh":
            out.append(
                (
                    mode,
                    algo,
                    ds,
                    s,
                    list(overhead_profile(_BENCH, factory, s, arg, (arg - 19, arg))),
                )
            )
            continue
        r = _BENCH.simulate(
            factory,
            ds,
            time_budget=arg,
            seed=s,
            include_overhead=include_overhead,
            write_files=False,
            proxy_cost_s=proxy_cost,
        )
        sig = _BENCH.acc12[(ds, "valid")]
        regret = float(sig.max() - sig[r.best_index])
        out.append(
            (
                label(algo, proxy_cost),
                ds,
                s,
                int(r.best_index),
                r.num_trials,
                r.overhead_s,
                r.controller_s,
                r.results,
                regret,
                r.proxy_calls,
            )
        )
    return out


def _log(f, out):
    if f is not None:
        for r in out:
            f.write(json.dumps(list(r)) + "\n")
        f.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--runs", type=int, default=100, help="independent searches per algorithm and dataset"
    )
    ap.add_argument(
        "--runs-other",
        type=int,
        default=None,
        help="runs for CIFAR-100/ImageNet16-120 (default --runs)",
    )
    ap.add_argument("--datasets", default="cifar10,cifar100,imagenet16")
    ap.add_argument(
        "--algos",
        default="rs,rea,reinforce",
        help="of rs,rea,reinforce,tpe,predictor, each also with _proxy (e.g. rea_proxy: + synflow)",
    )
    ap.add_argument("--table-dir", default=os.path.join(REPO, "..", "shared", "nas-bench-201"))
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="simulated seconds (default: per dataset, see module)",
    )
    ap.add_argument(
        "--include-overhead", action="store_true", help="add the oracle's wall time to the budget"
    )
    ap.add_argument(
        "--factorized", action="store_true", help="REINFORCE with the factorized (NB201) policy"
    )
    ap.add_argument("--seed0", type=int, default=1)
    ap.add_argument(
        "--eff-runs", type=int, default=0, help="sample-efficiency runs per algorithm (0: skip)"
    )
    ap.add_argument(
        "--eff-algos",
        default=None,
        help="algorithms for the sample-efficiency protocol (default --algos)",
    )
    ap.add_argument(
        "--eff-cap",
        type=int,
        default=1500,
        help="evaluations before a sample-efficiency run gives up",
    )
    ap.add_argument(
        "--overhead-at",
        type=int,
        default=0,
        help="time trials N-19..N of one run per algorithm (0: skip)",
    )
    ap.add_argument(
        "--predictor-kwargs", default="{}", help="JSON dict of PredictorOracle arguments"
    )
    ap.add_argument(
        "--log", default=None, help="append every finished chunk's results to this JSON-lines file"
    )
    ap.add_argument(
        "--report",
        default=None,
        help="print the tables from a --log file (possibly partial); no runs",
    )
    ap.add_argument(
        "--priority", default="", help="comma-separated algorithms whose chunks run first"
    )
    ap.add_argument(
        "--proxy-table", default=PROXY_TABLE, help="synflow per cell (nb201_proxy_table.py)"
    )
    ap.add_argument(
        "--proxy-samples", type=int, default=None, help="proxy_samples (default: the oracle's)"
    )
    ap.add_argument(
        "--proxy-candidates",
        type=int,
        default=None,
        help="proxy_candidates (default: the oracle's)",
    )
    ap.add_argument(
        "--proxy-costs",
        default="0",
        help="comma-separated simulated seconds charged per proxy evaluation; one budgeted run of every "
        "proxy variant per value (0 = the published protocol: a precomputed table costs nothing)",
    )
    ap.add_argument(
        "--measure-proxy-cost",
        action="store_true",
        help="only measure the seconds of building + scoring one network with synflow, and exit",
    )
    args = ap.parse_args(argv)
    if args.measure_proxy_cost:
        load = os.getloadavg()
        print(
            f"synflow (build + score) per NB201 network: {measure_proxy_cost():.3f} s "
            f"(load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end)"
        )
        return

    datasets = [canonical_dataset(d) for d in args.datasets.split(",") if d]
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    eff_algos = (
        algos
        if args.eff_algos is None
        else [a.strip() for a in args.eff_algos.split(",") if a.strip()]
    )
    rkw = FACTORIZED_KWARGS if args.factorized else REINFORCE_KWARGS
    pkw = dict(PREDICTOR_KWARGS, **json.loads(args.predictor_kwargs))
    xkw = {
        k: v
        for k, v in (
            ("proxy_samples", args.proxy_samples),
            ("proxy_candidates", args.proxy_candidates),
        )
        if v is not None
    }
    proxy_costs = [float(c) for c in args.proxy_costs.split(",") if c.strip()]
    extra = (xkw, args.proxy_table)
    for a in algos + eff_algos:
        if (a[: -len("_proxy")] if a.endswith("_proxy") else a) not in NAMES:
            ap.error(f"unknown algorithm {a!r}")
    bench = NASBench201(args.table_dir)  # fail early with a clear message
    del bench
    tasks = []
    chunk = 10
    for ds in datasets:
        runs = args.runs if ds == "cifar10" or args.runs_other is None else args.runs_other
        budget = args.budget if args.budget is not None else BUDGETS[ds]
        for algo in algos:
            seeds = list(range(args.seed0, args.seed0 + runs))
            for cost in proxy_costs if algo.endswith("_proxy") else [0.0]:
                for i in range(0, runs, chunk):
                    tasks.append(
                        (
                            "budget",
                            args.table_dir,
                            algo,
                            ds,
                            seeds[i : i + chunk],
                            budget,
                            args.include_overhead,
                            rkw,
                            pkw,
                            cost,
                        )
                        + extra
                    )
    if args.eff_runs:
        seeds = list(range(args.seed0, args.seed0 + args.eff_runs))
        for algo in eff_algos:
            # proxy variants: one run per chunk (a run can take minutes), so --log keeps every finished run
            step = 1 if algo.endswith("_proxy") else 2 if algo in ("rs", "rea", "reinforce") else 5
            for i in range(0, len(seeds), step):
                tasks.append(
                    (
                        "eff",
                        args.table_dir,
                        algo,
                        "cifar10",
                        seeds[i : i + step],
                        args.eff_cap,
                        False,
                        rkw,
                        pkw,
                        0.0,
                    )
                    + extra
                )
    if args.overhead_at:
        for algo in algos:
            tasks.append(
                (
                    "ovh",
                    args.table_dir,
                    algo,
                    "cifar10",
                    [args.seed0],
                    args.overhead_at,
                    False,
                    rkw,
                    pkw,
                    0.0,
                )
                + extra
            )
    # Order: --priority algorithms first (a run cut short still has the comparison that matters),
    # then the slow chunks first.
    prio = [a.strip() for a in args.priority.split(",") if a.strip()]
    slow = {"eff": 0, "ovh": 2}
    tasks.sort(
        key=lambda t: (
            prio.index(t[2]) if t[2] in prio else len(prio),
            slow.get(t[0], 1),
            t[2] not in ("reinforce", "tpe", "rs"),
        )
    )
    t0 = time.time()
    results = []
    log = open(args.log, "a") if args.log else None
    if args.report:
        with open(args.report) as f:
            results = [tuple(json.loads(line)) for line in f if line.strip()]
        tasks = []
    if args.jobs > 1 and tasks:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            for out in pool.imap_unordered(_worker, tasks):
                results.extend(out)
                _log(log, out)
    else:
        for t in tasks:
            out = _worker(t)
            results.extend(out)
            _log(log, out)
    wall = time.time() - t0
    eff = [r for r in results if r[0] == "eff"]
    ovh = [r for r in results if r[0] == "ovh"]
    results = [r for r in results if r[0] not in ("eff", "ovh")]
    # Result keys in --algos order (proxy variants once per charged cost); older --log files lack proxy fields.
    keys = list(dict.fromkeys(r[0] for r in results))
    keys.sort(
        key=lambda k: (
            algos.index(k.partition("@")[0]) if k.partition("@")[0] in algos else len(algos),
            k,
        )
    )
    proxied = any(k.partition("@")[0].endswith("_proxy") for k in keys + eff_algos)

    print(f"NAS-Bench-201 simulated search; table dir {os.path.abspath(args.table_dir)}")
    print(
        "budgets (simulated s): "
        + ", ".join(f"{d} {args.budget or BUDGETS[d]:.0f}" for d in datasets)
        + f"; include_overhead={args.include_overhead}; REINFORCE {rkw}; PredictorOracle {pkw or 'defaults'}"
        + (
            f"; proxy options {xkw or 'defaults'}, proxy costs {proxy_costs} s/eval"
            if proxied
            else ""
        )
    )
    print(
        "Per-dataset search (each dataset searched with its own 12-epoch valid accuracy, NATS style);"
    )
    print(
        "regret = best 12-epoch valid accuracy in the table minus the chosen cell's (mean ± std of the mean):"
    )
    hdr = (
        "| algo | dataset | runs | archs/run | test acc (ours) | regret (12-ep valid) | published (NB201) "
        "| overhead ms/trial | controller ms/trial |" + (" proxy evals/run |" if proxied else "")
    )
    print(hdr)
    print("|" + "---|" * (10 if proxied else 9))
    for ds in datasets:
        for key in keys:
            algo = key
            rs = [r for r in results if r[0] == key and r[1] == ds]
            if not rs:
                continue
            acc = np.array([r[7][f"{ds}_test"] for r in rs])
            reg = np.array([r[8] for r in rs])
            trials = sum(r[4] for r in rs)
            ovh_ms = 1000 * sum(r[5] for r in rs) / trials
            ctl = 1000 * sum(r[6] for r in rs) / trials
            pub = PUBLISHED.get(algo, {}).get(ds)
            pub = f"{pub[0]:.2f} ± {pub[1]:.2f}" if pub else "—"
            px = f" {sum(r[9] if len(r) > 9 else 0 for r in rs) / len(rs):.0f} |" if proxied else ""
            print(
                f"| {display_name(key)} | {ds} | {len(rs)} | {trials / len(rs):.0f} | {acc.mean():.2f} ± "
                f"{acc.std():.2f} | {reg.mean():.3f} ± {reg.std() / np.sqrt(len(reg)):.3f} | {pub} | {ovh_ms:.2f} "
                f"| {ctl:.2f} |{px}"
            )
    if "cifar10" in datasets:
        print(
            "\nNB201 paper protocol (searched on CIFAR-10, the chosen cell's 200-epoch test accuracy on each dataset):"
        )
        print("| algo | runs | C10 test | C100 test | IN16 test | published C10 / C100 / IN16 |")
        print("|---|---|---|---|---|---|")
        for algo in keys:
            rs = [r for r in results if r[0] == algo and r[1] == "cifar10"]
            if not rs:
                continue
            cols = []
            for ds in DATASETS:
                a = np.array([r[7][f"{ds}_test"] for r in rs])
                cols.append(f"{a.mean():.2f} ± {a.std():.2f}")
            pub = (
                " / ".join(f"{PUBLISHED[algo][d][0]:.2f}" for d in DATASETS)
                if algo in PUBLISHED
                else "—"
            )
            print(f"| {display_name(algo)} | {len(rs)} | " + " | ".join(cols) + f" | {pub} |")
    if eff:
        print(
            f"\nSample efficiency (signal: 200-epoch cifar10_valid, no budget; evaluations, repeats included, until "
            f"the best-cifar10_valid cell is evaluated; cap {args.eff_cap}, a run that misses counts as > cap):"
        )
        print(
            "| algo | runs | median | mean (found only) | 25th / 75th percentile | found within cap |"
            + (" proxy evals/run (median) |" if proxied else "")
        )
        print("|---|---|---|---|---|---|" + ("---|" if proxied else ""))
        for algo in eff_algos:
            ns = [r[4] for r in eff if r[1] == algo]
            calls = [r[5] if len(r) > 5 else 0 for r in eff if r[1] == algo]
            if not ns:
                continue
            x = np.array([n if n is not None else np.inf for n in ns], dtype=float)
            found = x[np.isfinite(x)]

            def fmt(v):
                return (
                    f"> {args.eff_cap}"
                    if not np.isfinite(v)
                    else f"{v:.0f}"
                    if v == int(v)
                    else f"{v:.1f}"
                )

            q25, med, q75 = (
                np.percentile(x, q, method="lower" if not np.all(np.isfinite(x)) else "linear")
                for q in (25, 50, 75)
            )
            px = f" {np.median(calls):.0f} |" if proxied else ""
            print(
                f"| {display_name(algo)} | {len(x)} | {fmt(med)} | {found.mean() if len(found) else float('nan'):.0f} "
                f"| {fmt(q25)} / {fmt(q75)} | {len(found)}/{len(x)} |{px}"
            )
            if len(x) <= 40:
                print(f"  {algo} values: " + ", ".join(fmt(v) for v in sorted(x)))
    if ovh:
        n = args.overhead_at
        print(
            f"\nOverhead per trial at trials {n - 19}..{n} (one unbudgeted CIFAR-10 run, seed {args.seed0}, "
            "file writes off):"
        )
        print("| algo | oracle ms/trial (mean) | max | controller ms/trial (mean) |")
        print("|---|---|---|---|")
        for algo in algos:
            for r in ovh:
                if r[1] == algo:
                    m, mx, c = r[4]
                    print(f"| {display_name(algo)} | {m:.1f} | {mx:.1f} | {c:.1f} |")
    print("\noptimum (test): " + ", ".join(f"{d} {OPTIMUM[d]}" for d in DATASETS))
    print(f"wall time {wall:.0f} s with {args.jobs} job(s)")


if __name__ == "__main__":
    main()
