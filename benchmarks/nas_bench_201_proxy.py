"""NAS-Bench-201 benchmark of proxy-assisted search: aging evolution and REINFORCE with and without synflow.

(The predictor / Optuna TPE / sample-efficiency comparison is ``nas_bench_201.py``.)

Runs keras-nas's real keras-tuner Oracles (``RandomOracle``, ``AgingEvolutionOracle``,
``ReinforceOracle``) through keras-tuner's trial lifecycle on the NAS-Bench-201 tables
(``keras_nas.benchmarks.NASBench201``; 12-epoch validation accuracy as the search signal,
simulated time budget) and prints mean +- std of the chosen cell's 200-epoch test accuracy
beside the published numbers, plus the oracle overhead per trial.

Overhead is measured with an oracle whose state store writes nothing (``store=NoFiles()``: no
keras-tuner per-trial json, no controller npz): it is the wall time spent in
``create_trial`` + ``update_trial`` + ``end_trial`` (keras-tuner bookkeeping + controller), and,
separately, the controller's own ``propose``/``observe`` (including REINFORCE's Adam updates).

Proxy-assisted variants (``rea_proxy``, ``reinforce_proxy``: the same oracles with ``proxy=`` a callable
returning the searched dataset's synflow from ``benchmarks/data/nb201_proxies.csv``, ``proxy_samples``
and ``proxy_candidates`` from ``--proxy-samples`` / ``--proxy-candidates``). The published protocol
charges nothing for a precomputed table; ``--proxy-costs 0,0.4`` also runs each proxy variant charging
0.4 simulated seconds per proxy evaluation (the measured cost of building and scoring a network).

    python benchmarks/nas_bench_201_proxy.py --runs 100 --jobs 2
    python benchmarks/nas_bench_201_proxy.py --algos rea,rea_proxy,reinforce,reinforce_proxy --proxy-costs 0,0.4
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from keras_nas.benchmarks.nas_bench_201 import BUDGETS, DATASETS, NASBench201, canonical_dataset  # noqa: E402

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
    "rea_proxy": "aging evolution + synflow",
    "reinforce_proxy": "REINFORCE + synflow",
}
PROXY_TABLE = os.path.join(HERE, "data", "nb201_proxies.csv")

# REINFORCE settings (see benchmarks/README.md, nas_bench_201): NB201's EMA 0.9 and update after
# every architecture (batch 1, as NB201's reinforce.py); LSTM controller with ENAS's tanh logit
# bound; the learning rate was chosen by a small sweep on CIFAR-10 (seeds 1..60).
REINFORCE_KWARGS = dict(learning_rate=0.01, baseline_decay=0.9, batch_size=1, tanh_constant=1.1)
FACTORIZED_KWARGS = dict(policy="factorized", learning_rate=0.1, baseline_decay=0.9, batch_size=1)


def make_factory(algo: str, reinforce_kwargs: dict, proxy=None, proxy_kwargs=None):
    from keras_nas.tuning.oracle import AgingEvolutionOracle, RandomOracle, ReinforceOracle

    if algo.endswith("_proxy"):
        base = make_factory(algo[: -len("_proxy")], reinforce_kwargs)
        return functools.partial(base, proxy=proxy, **(proxy_kwargs or {}))
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


def _worker(task):
    global _BENCH
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    table_dir, algo, ds, seeds, budget, include_overhead, rkw, proxy_cost, pkw, proxy_table = task
    if _BENCH is None:
        _BENCH = NASBench201(table_dir)
    proxy = None
    if algo.endswith("_proxy"):
        if ds not in _PROXY_COLUMNS:
            _PROXY_COLUMNS[ds] = load_proxy_column(proxy_table, ds)
        proxy = TableProxy(_BENCH, _PROXY_COLUMNS[ds])
    factory = make_factory(algo, rkw, proxy, pkw)
    out = []
    for s in seeds:
        r = _BENCH.simulate(
            factory,
            ds,
            time_budget=budget,
            seed=s,
            include_overhead=include_overhead,
            write_files=False,
            proxy_cost_s=proxy_cost,
        )
        out.append(
            (
                label(algo, proxy_cost),
                ds,
                s,
                r.best_index,
                r.num_trials,
                r.overhead_s,
                r.controller_s,
                r.results,
                r.proxy_calls,
                r.proxy_s,
            )
        )
    return out


def label(algo: str, proxy_cost: float) -> str:
    return f"{algo}@{proxy_cost:g}s" if algo.endswith("_proxy") and proxy_cost else algo


def display_name(key: str) -> str:
    algo, _, cost = key.partition("@")
    return NAMES[algo] + (f" ({cost}/eval charged)" if cost else "")


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
    ap.add_argument("--algos", default="rs,rea,reinforce")
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
        help="comma-separated simulated seconds charged per proxy evaluation; one run of every proxy "
        "variant per value (0 = the published protocol: a precomputed table costs nothing)",
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
    rkw = FACTORIZED_KWARGS if args.factorized else REINFORCE_KWARGS
    pkw = {
        k: v
        for k, v in (
            ("proxy_samples", args.proxy_samples),
            ("proxy_candidates", args.proxy_candidates),
        )
        if v is not None
    }
    proxy_costs = [float(c) for c in args.proxy_costs.split(",") if c.strip()]
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
                            args.table_dir,
                            algo,
                            ds,
                            seeds[i : i + chunk],
                            budget,
                            args.include_overhead,
                            rkw,
                            cost,
                            pkw,
                            args.proxy_table,
                        )
                    )
    # REINFORCE chunks first: they are the slow ones.
    tasks.sort(key=lambda t: not t[1].startswith("reinforce"))
    keys = list(dict.fromkeys(label(t[1], t[7]) for t in tasks))
    keys.sort(key=lambda k: [a for a in algos].index(k.partition("@")[0]))
    t0 = time.time()
    results = []
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            for out in pool.imap_unordered(_worker, tasks):
                results.extend(out)
    else:
        for t in tasks:
            results.extend(_worker(t))
    wall = time.time() - t0

    print(f"NAS-Bench-201 simulated search; table dir {os.path.abspath(args.table_dir)}")
    print(
        "budgets (simulated s): "
        + ", ".join(f"{d} {args.budget or BUDGETS[d]:.0f}" for d in datasets)
        + f"; include_overhead={args.include_overhead}; REINFORCE {rkw}; proxy options {pkw or 'defaults'}"
    )
    print(
        "Per-dataset search (each dataset searched with its own 12-epoch valid accuracy, NATS style):"
    )
    hdr = (
        "| algo | dataset | runs | archs/run | test acc (ours) | published (NB201) | overhead ms/trial | "
        "controller ms/trial | proxy evals/run |"
    )
    print(hdr)
    print("|" + "---|" * 9)
    for ds in datasets:
        for key in keys:
            rs = [r for r in results if r[0] == key and r[1] == ds]
            if not rs:
                continue
            acc = np.array([r[7][f"{ds}_test"] for r in rs])
            trials = sum(r[4] for r in rs)
            ovh = 1000 * sum(r[5] for r in rs) / trials
            ctl = 1000 * sum(r[6] for r in rs) / trials
            pub = PUBLISHED.get(key, {}).get(ds)
            pub = f"{pub[0]:.2f} ± {pub[1]:.2f}" if pub else "-"
            evals = sum(r[8] for r in rs) / len(rs)
            print(
                f"| {display_name(key)} | {ds} | {len(rs)} | {trials / len(rs):.0f} | {acc.mean():.2f} ± "
                f"{acc.std():.2f} | {pub} | {ovh:.2f} | {ctl:.2f} | {evals:.0f} |"
            )
    if "cifar10" in datasets:
        print(
            "\nNB201 paper protocol (searched on CIFAR-10, the chosen cell's 200-epoch test accuracy on each dataset):"
        )
        print("| algo | runs | C10 test | C100 test | IN16 test | published C10 / C100 / IN16 |")
        print("|---|---|---|---|---|---|")
        for key in keys:
            rs = [r for r in results if r[0] == key and r[1] == "cifar10"]
            if not rs:
                continue
            cols = []
            for ds in DATASETS:
                a = np.array([r[7][f"{ds}_test"] for r in rs])
                cols.append(f"{a.mean():.2f} ± {a.std():.2f}")
            pub = (
                " / ".join(f"{PUBLISHED[key][d][0]:.2f}" for d in DATASETS)
                if key in PUBLISHED
                else "-"
            )
            print(f"| {display_name(key)} | {len(rs)} | " + " | ".join(cols) + f" | {pub} |")
    print("\noptimum (test): " + ", ".join(f"{d} {OPTIMUM[d]}" for d in DATASETS))
    print(f"wall time {wall:.0f} s with {args.jobs} job(s)")


if __name__ == "__main__":
    main()
