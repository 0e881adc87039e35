"""Early stopping on NAS-Bench-201 (CIFAR-10) as a two-fidelity simulation with asynchronous workers.

What it measures: for the same simulated wall-clock budget, does stopping hopeless trials at epoch
12 (``MedianStopping`` / ``ASHA``) let random search and aging evolution run more trials and end
with a better architecture than training every trial for 200 epochs?

The real keras-nas oracles are driven exactly as the keras-nas tuners drive them: ``create_trial``,
a per-epoch report ``update_trial(id, {"epoch_val_acc": acc}, step=12)`` whose answer may be
``STOPPED``, keras-tuner's final ``update_trial`` with the objective, ``end_trial``.

Fidelities and cost model (CIFAR-10, cifar10-valid split; e = ``cifar10valid_train_time_per_epoch_s``,
v = ``cifar10valid_eval_time_per_epoch_s`` of the cell):

* epoch 12: the 12-epoch validation accuracy (``nb201_hp12.csv``, ``cifar10_valid_12ep``), reached
  after 12 e + v seconds. Approximation: NB201's 12-epoch runs used a 12-epoch learning-rate
  schedule, so they stand in for "the 200-epoch run's accuracy at epoch 12" (the rules only use
  the ranking between cells).
* epoch 200: the 200-epoch validation accuracy (``nb201.csv``, ``cifar10_valid``) is the trial's
  objective; a full trial costs 200 e + v (+ v for the epoch-12 evaluation when a rule needs it).
* a trial stopped at epoch 12 costs 12 e + v.
* ``--workers`` simulated workers run trials asynchronously (event queue in simulated time);
  the budget is simulated wall-clock seconds; a trial unfinished at the deadline does not count.
* answer: the completed trial with the best 200-epoch validation accuracy; reported: its
  200-epoch CIFAR-10 test accuracy (``cifar10_test``), as ``benchmarks/nas_bench_201.py``.

    python benchmarks/early_stopping_nb201.py --runs 50 --budget 50000 --workers 4
"""

from __future__ import annotations

import argparse
import heapq
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from keras_nas.benchmarks.nas_bench_201 import NASBench201  # noqa: E402

LOW, HIGH = 12, 200


def make_oracle(algo, rule, seed, hyperparameters):
    import keras_tuner as kt

    from keras_nas.controllers.stopping import make_rule
    from keras_nas.tuning.oracle import AgingEvolutionOracle, RandomOracle
    from keras_nas.tuning.state import NoFiles

    kw = dict(
        objective=kt.Objective("val_acc", "max"),
        max_trials=100000,
        hyperparameters=hyperparameters,
        seed=seed,
        store=NoFiles(),
        allow_duplicates=True,
    )
    if rule == "median":
        kw["early_stopping"] = make_rule("median", grace_epochs=LOW, min_trials=5)
    elif rule == "asha":
        kw["early_stopping"] = make_rule("asha", min_epochs=LOW, eta=3)
    if algo == "rs":
        return RandomOracle(**kw)
    if algo == "rea":
        return AgingEvolutionOracle(population_size=10, sample_size=3, identity_prob=0.0, **kw)
    raise ValueError(algo)


def simulate(
    bench: NASBench201, algo: str, rule: str, seed: int, budget: float, workers: int
) -> dict:
    import keras_tuner as kt

    from keras_nas.tuning.early_stopping import epoch_metric

    status = kt.engine.trial.TrialStatus
    oracle = make_oracle(algo, rule, seed, bench.hyperparameters())
    oracle.verbose = 0
    import tempfile

    from keras_nas.tuning import internals

    tmp = tempfile.mkdtemp(prefix="es_nb201_")
    internals.set_project_dir(oracle, tmp, "p")
    e = bench_epoch[0]
    v = bench_eval[0]
    acc12 = bench.acc12[("cifar10", "valid")]
    acc200 = bench.acc200[("cifar10", "valid")]
    events, seq = [], 0
    completed, stopped, started = [], 0, 0
    epochs_used = 0.0

    def start(w, t):
        nonlocal seq, started
        trial = oracle.create_trial(f"w{w}")
        if trial.status != status.RUNNING:
            return
        started += 1
        i = bench.index_of(trial.hyperparameters.values)
        if rule == "none":  # no report at epoch 12: straight to the end
            heapq.heappush(events, (t + HIGH * e[i] + v[i], seq, w, "end", trial, i))
        else:
            heapq.heappush(events, (t + LOW * e[i] + v[i], seq, w, "low", trial, i))
        seq += 1

    for w in range(workers):
        start(w, 0.0)
    while events:
        t, _, w, kind, trial, i = heapq.heappop(events)
        if t > budget:
            continue  # unfinished at the deadline: not counted
        if kind == "low":
            answer = oracle.update_trial(
                trial.trial_id, {epoch_metric(oracle.objective): float(acc12[i])}, step=LOW
            )
            if answer.status == status.STOPPED:
                oracle.update_trial(trial.trial_id, {"val_acc": float(acc12[i])}, step=LOW)
                trial.status = status.COMPLETED  # as keras-tuner says after a fit that returned
                oracle.end_trial(trial)
                assert oracle.trials[trial.trial_id].status == status.STOPPED
                stopped += 1
                epochs_used += LOW
                start(w, t)
            else:
                heapq.heappush(events, (t + (HIGH - LOW) * e[i] + v[i], seq, w, "end", trial, i))
                seq += 1
            continue
        oracle.update_trial(trial.trial_id, {"val_acc": float(acc200[i])}, step=HIGH)
        trial.status = status.COMPLETED
        oracle.end_trial(trial)
        completed.append(i)
        epochs_used += HIGH
        start(w, t)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    if not completed:
        return {
            "test": float("nan"),
            "completed": 0,
            "stopped": stopped,
            "started": started,
            "epochs": epochs_used,
        }
    best = max(completed, key=lambda j: acc200[j])
    return {
        "test": float(bench.acc200[("cifar10", "test")][best]),
        "completed": len(completed),
        "stopped": stopped,
        "started": started,
        "epochs": epochs_used,
    }


bench_epoch, bench_eval = [None], [None]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--budget", type=float, default=50000.0, help="simulated wall-clock seconds")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--algos", default="rs,rea")
    ap.add_argument("--rules", default="none,median,asha")
    ap.add_argument("--table-dir", default=os.path.join(REPO, "..", "shared", "nas-bench-201"))
    ap.add_argument("--seed0", type=int, default=1)
    args = ap.parse_args(argv)
    table_dir = args.table_dir if os.path.isdir(args.table_dir) else "/work/shared/nas-bench-201"
    bench = NASBench201(table_dir)
    import csv

    with open(os.path.join(table_dir, "nb201.csv")) as f:
        rows = list(csv.DictReader(f))
    bench_epoch[0] = np.array([float(r["cifar10valid_train_time_per_epoch_s"]) for r in rows])
    bench_eval[0] = np.array([float(r["cifar10valid_eval_time_per_epoch_s"]) for r in rows])
    t0 = time.time()
    print(
        f"NB201 CIFAR-10 two-fidelity simulation: budget {args.budget:.0f} simulated s, {args.workers} workers, "
        f"{args.runs} seeds from {args.seed0}; median(grace={LOW}, min_trials=5), asha(min_epochs={LOW}, eta=3)"
    )
    print(
        "| algo | early stopping | runs | test acc (200 ep) mean +- std | trials run | of which completed | "
        "stopped at epoch 12 | epochs used |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for algo in args.algos.split(","):
        for rule in args.rules.split(","):
            rs = [
                simulate(bench, algo, rule, s, args.budget, args.workers)
                for s in range(args.seed0, args.seed0 + args.runs)
            ]
            acc = np.array([r["test"] for r in rs])
            fin = lambda k: np.mean([r[k] for r in rs])  # noqa: E731, B023
            print(
                f"| {algo} | {rule} | {len(rs)} | {np.nanmean(acc):.2f} +- {np.nanstd(acc):.2f} | "
                f"{fin('completed') + fin('stopped'):.1f} | {fin('completed'):.1f} | {fin('stopped'):.1f} | "
                f"{fin('epochs'):.0f} |",
                flush=True,
            )
    print(f"({time.time() - t0:.0f} s wall)")


if __name__ == "__main__":
    main()
