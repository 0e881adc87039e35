"""Aging evolution at small trial budgets (10-50 trials): which population P and tournament S?

Why: keras-nas's CLI and tuners default to a handful of trials, and aging evolution with a
population that is too large is random search (nothing is bred before P random trials), one that
is too small forgets good parents (a trial lives P births). This measures, on the NAS-Bench-201
table (search signal: 12-epoch validation accuracy; answer: the best of the history by that
signal; reported: its 200-epoch test accuracy), each (P, S) against random search at the same
number of trials, with the defaults a user gets (no duplicates re-evaluated, the space's default
identity mutation). No time budget: each run stops after exactly ``N`` trials.

Speed: ``NASBench201.simulate`` spends ~10 ms per trial in keras-tuner's bookkeeping, too slow for
this grid on a shared 2-core machine. ``--fast`` (default) runs the same controllers through the
same ask/tell sequence as ``ControllerOracle`` (propose, complete, reject a repeat up to 20 times
unless it is an identity mutation, observe the reward) without keras-tuner; ``--check K`` first
asserts, for K seeds of every (N, P, S), that it picks exactly the cell ``simulate`` picks.

    python benchmarks/small_budget_evolution.py --runs 300 --jobs 2 --check 3
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

from keras_nas.benchmarks.nas_bench_201 import NASBench201, canonical_dataset  # noqa: E402

_BENCH = None


def _factory(p, s):
    from keras_nas.tuning.oracle import AgingEvolutionOracle, RandomOracle

    if p == 0:
        return RandomOracle
    return functools.partial(AgingEvolutionOracle, population_size=p, sample_size=s)


def _controller(p, s, seed):
    from keras_nas.controllers.base import RandomController
    from keras_nas.controllers.evolution import AgingEvolutionController

    return RandomController(seed=seed) if p == 0 else AgingEvolutionController(p, s, seed=seed)


def fast_search(bench, ds, n, p, s, seed, max_collisions=20):
    """Index of the cell a search of ``n`` trials picks: ``ControllerOracle``'s ask/tell loop
    (allow_duplicates=False) without keras-tuner."""
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    space = param_space_from_hyperparameters(bench.hyperparameters())
    signal = bench.acc12[(ds, "valid")]
    ctrl = _controller(p, s, seed)
    seen, history = set(), []
    for _ in range(n):
        for _ in range(max_collisions + 1):
            values = space.complete(ctrl.propose(space), ctrl.sample_value)
            key = tuple(sorted(values.items()))
            if ctrl.last_origin == "identity" or key not in seen:
                break
            ctrl.discard(values, space)
        else:
            break  # space exhausted (never at these budgets)
        seen.add(key)
        i = bench.index_of(values)
        ctrl.observe(values, float(signal[i]), space)
        history.append(i)
    hist = np.array(history)
    return int(hist[int(np.argmax(signal[hist]))])


def _worker(task):
    global _BENCH
    table_dir, ds, n, p, s, seeds, fast = task
    if _BENCH is None:
        _BENCH = NASBench201(table_dir)
    out = []
    for seed in seeds:
        if fast:
            best = fast_search(_BENCH, ds, n, p, s, seed)
        else:
            r = _BENCH.simulate(
                _factory(p, s), ds, time_budget=1e12, seed=seed, write_files=False, max_trials=n
            )
            assert r.num_trials == n, (r.num_trials, n)
            best = r.best_index
        out.append((ds, n, p, s, seed, float(_BENCH.acc200[(ds, "test")][best]), best))
    return out


POPULATIONS = (2, 3, 4, 5, 6, 8, 10, 15, 20)


def configs(n, populations=POPULATIONS):
    """(P, S) pairs tried at budget n; (0, 0) is random search."""
    out = [(0, 0)]
    for p in populations:
        if p >= n:
            continue
        for s in sorted({2, max(2, -(-p // 4)), max(2, p // 2)}):
            if s <= p:
                out.append((p, s))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--budgets", default="10,20,30,50")
    ap.add_argument("--datasets", default="cifar10")
    ap.add_argument("--table-dir", default=os.path.join(REPO, "..", "shared", "nas-bench-201"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--populations", default=",".join(map(str, POPULATIONS)), help="P values tried")
    ap.add_argument(
        "--slow", action="store_true", help="every run through NASBench201.simulate (keras-tuner)"
    )
    ap.add_argument(
        "--check", type=int, default=0, help="seeds per (N, P, S) compared with simulate first"
    )
    args = ap.parse_args(argv)
    pops = tuple(int(p) for p in args.populations.split(","))
    if args.check:
        bench = NASBench201(args.table_dir)
        for ds in [canonical_dataset(d) for d in args.datasets.split(",")]:
            for n in [int(b) for b in args.budgets.split(",")]:
                for p, s in configs(n, pops):
                    for seed in range(1, 1 + args.check):
                        slow = _worker((args.table_dir, ds, n, p, s, [seed], False))[0][-1]
                        fast = fast_search(bench, ds, n, p, s, seed)
                        assert slow == fast, (ds, n, p, s, seed, slow, fast)
        print(
            f"check: the fast loop picked the same cell as NASBench201.simulate for {args.check} seeds of "
            "every (dataset, N, P, S)"
        )
    budgets = [int(b) for b in args.budgets.split(",")]
    datasets = [canonical_dataset(d) for d in args.datasets.split(",")]
    tasks = []
    chunk = 50
    for ds in datasets:
        for n in budgets:
            for p, s in configs(n, pops):
                for i in range(0, args.runs, chunk):
                    tasks.append(
                        (
                            args.table_dir,
                            ds,
                            n,
                            p,
                            s,
                            list(range(1 + i, 1 + min(args.runs, i + chunk))),
                            not args.slow,
                        )
                    )
    t0 = time.time()
    results = []
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for out in pool.imap_unordered(_worker, tasks):
            results.extend(out)
    bench = NASBench201(args.table_dir)
    print(f"{args.runs} seeds per cell; wall {time.time() - t0:.0f}s")
    for ds in datasets:
        opt = bench.best(ds)[1]
        print(
            f"\n### {ds}: mean 200-epoch test accuracy of the chosen cell (regret = {opt:.2f} - mean); "
            "+-: standard error of the mean; minus random: paired by seed (the same seed draws the same first random cells)"
        )
        for n in budgets:
            rs = {r[4]: r[5] for r in results if r[0] == ds and r[1] == n and r[2] == 0}
            rs_mean = np.mean(list(rs.values()))
            print(f"\nN={n}: random search {rs_mean:.2f} (regret {opt - rs_mean:.2f})")
            print("| P | S | test acc | regret | minus random |")
            print("|---|---|---|---|---|")
            for p, s in configs(n, pops)[1:]:
                acc = {
                    r[4]: r[5]
                    for r in results
                    if r[0] == ds and r[1] == n and r[2] == p and r[3] == s
                }
                a = np.array([acc[k] for k in sorted(acc)])
                d = np.array([acc[k] - rs[k] for k in sorted(acc)])
                print(
                    f"| {p} | {s} | {a.mean():.2f} +- {a.std(ddof=1) / np.sqrt(len(a)):.2f} | {opt - a.mean():.2f} "
                    f"| {d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f} |"
                )


if __name__ == "__main__":
    main()
