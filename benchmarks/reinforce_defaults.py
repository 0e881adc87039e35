"""Sweep of ReinforceOracle settings on NAS-Bench-201 CIFAR-10 (the runs behind its defaults).

Each named configuration (below) runs ``NASBench201.simulate`` (real oracle, no state files) for
the given seeds and budgets; one JSON line per run goes to ``--out``; ``--summary`` prints mean ±
std of the chosen cell's 200-epoch test accuracy per (budget, configuration).

    # tuning seeds (not the reported ones), NB201 budget (12,000 simulated s, ~100 trials):
    nice -n 10 python benchmarks/reinforce_defaults.py --configs random,defaults,old_defaults,... \\
        --seeds 1000:1060 --budgets nb --out sweep.jsonl
    # fixed trial budgets (huge time budget, max_trials=N):
    nice -n 10 python benchmarks/reinforce_defaults.py --configs random,defaults --seeds 0:30 --budgets 50,200
    python benchmarks/reinforce_defaults.py --summary sweep.jsonl
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import multiprocessing as mp
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

CONFIGS = {
    "defaults": dict(),
    "old_defaults": dict(
        learning_rate=0.0035, baseline_decay=0.95, batch_size=10, tanh_constant=None
    ),
    "lstm_lr0.01_b1_t1.1": dict(
        learning_rate=0.01, baseline_decay=0.9, batch_size=1, tanh_constant=1.1
    ),
    "fact_lr0.1_b1": dict(policy="factorized", learning_rate=0.1, baseline_decay=0.9, batch_size=1),
    "lstm_lr0.01_b5_t1.1": dict(
        learning_rate=0.01, baseline_decay=0.9, batch_size=5, tanh_constant=1.1
    ),
    "lstm_lr0.02_b5_t1.1": dict(
        learning_rate=0.02, baseline_decay=0.9, batch_size=5, tanh_constant=1.1
    ),
    "lstm_lr0.0035_b1_t1.1": dict(
        learning_rate=0.0035, baseline_decay=0.9, batch_size=1, tanh_constant=1.1
    ),
    "lstm_lr0.01_b1_t1.5": dict(
        learning_rate=0.01, baseline_decay=0.9, batch_size=1, tanh_constant=1.5
    ),
    "fact_lr0.05_b1": dict(
        policy="factorized", learning_rate=0.05, baseline_decay=0.9, batch_size=1
    ),
    "fact_lr0.1_b5": dict(policy="factorized", learning_rate=0.1, baseline_decay=0.9, batch_size=5),
}
_BENCH = None


def _work(task):
    global _BENCH
    table_dir, name, seeds, max_trials = task
    from keras_nas.benchmarks.nas_bench_201 import NASBench201
    from keras_nas.tuning.oracle import RandomOracle, ReinforceOracle

    if _BENCH is None:
        _BENCH = NASBench201(table_dir)
    if name == "random":
        factory = functools.partial(RandomOracle, allow_duplicates=True)
    else:
        factory = functools.partial(ReinforceOracle, allow_duplicates=True, **CONFIGS[name])
    out = []
    for s in seeds:
        r = _BENCH.simulate(
            factory,
            "cifar10",
            time_budget=None if max_trials is None else 1e12,
            seed=s,
            write_files=False,
            max_trials=max_trials or 100000,
        )
        out.append(
            dict(
                name=name,
                seed=s,
                max_trials=max_trials,
                n=r.num_trials,
                test=r.test_accuracy,
                ms=r.overhead_ms_per_trial,
            )
        )
    return out


def summary(paths):
    import numpy as np

    groups = collections.defaultdict(list)
    for p in paths:
        for line in open(p):
            r = json.loads(line)
            groups[(str(r["max_trials"]), r["name"])].append(r)
    print("| budget | configuration | runs | test acc | sem | trials/run |")
    print("|---|---|---|---|---|---|")
    for (mt, name), rs in sorted(
        groups.items(), key=lambda kv: (kv[0][0], -np.mean([r["test"] for r in kv[1]]))
    ):
        a = np.array([r["test"] for r in rs])
        print(
            f"| {'12,000 s' if mt == 'None' else mt + ' trials'} | {name} | {len(a)} | {a.mean():.2f} ± {a.std():.2f} "
            f"| {a.std() / np.sqrt(len(a)):.2f} | {np.mean([r['n'] for r in rs]):.0f} |"
        )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--configs", default="random,defaults")
    ap.add_argument("--seeds", default="1000:1060")
    ap.add_argument(
        "--budgets",
        default="nb",
        help="'nb' (12,000 simulated s) and/or trial counts, comma separated",
    )
    ap.add_argument("--out", default="reinforce_sweep.jsonl")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--table-dir", default=os.path.join(REPO, "..", "shared", "nas-bench-201"))
    ap.add_argument("--summary", nargs="*", help="print the summary of these JSONL files and exit")
    args = ap.parse_args(argv)
    if args.summary:
        return summary(args.summary)
    lo, hi = (int(x) for x in args.seeds.split(":"))
    seeds = list(range(lo, hi))
    budgets = [None if b == "nb" else int(b) for b in args.budgets.split(",")]
    tasks = [
        (args.table_dir, n, seeds[i : i + 10], b)
        for b in budgets
        for n in args.configs.split(",")
        for i in range(0, len(seeds), 10)
    ]
    t0 = time.time()
    with mp.get_context("spawn").Pool(args.jobs) as pool, open(args.out, "a") as f:
        for out in pool.imap_unordered(_work, tasks):
            for r in out:
                f.write(json.dumps(r) + "\n")
            f.flush()
    print(f"wall {time.time() - t0:.0f} s, load {os.getloadavg()}")
    summary([args.out])


if __name__ == "__main__":
    main()
