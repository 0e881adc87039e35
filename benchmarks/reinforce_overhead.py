"""Per-trial cost of ReinforceOracle vs RandomOracle through keras-tuner's real trial lifecycle,
state writes on (atomic oracle.json / trial.json / oracle_arrays.npz with fsync, in a temp dir).

Both oracles run in one process on NAS-Bench-201 CIFAR-10 (``create_trial`` -> table look-up ->
``update_trial`` -> ``end_trial``, ``allow_duplicates=True``), interleaved trial by trial (the
order alternating), so machine load hits both alike. Prints the median and mean ms per trial of
each over the 50 trials ending at trial 100, 250, 500, ..., the mean CPU time (``process_time``,
all threads of the process: robust to other processes' load, blind to fsync waits) and the load
average.

    nice -n 10 python benchmarks/reinforce_overhead.py --trials 2000
    nice -n 10 python benchmarks/reinforce_overhead.py --trials 300 --profile   # cProfile of REINFORCE
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--table-dir", default=os.path.join(REPO, "..", "shared", "nas-bench-201"))
    ap.add_argument(
        "--reinforce-kwargs", default="{}", help="ReinforceOracle keyword arguments (a Python dict)"
    )
    ap.add_argument(
        "--profile", action="store_true", help="cProfile REINFORCE's second half instead"
    )
    args = ap.parse_args(argv)
    import keras_tuner as kt

    from keras_nas.benchmarks.nas_bench_201 import NASBench201
    from keras_nas.tuning import internals
    from keras_nas.tuning.oracle import RandomOracle, ReinforceOracle

    bench = NASBench201(args.table_dir)
    signal = bench.acc12[("cifar10", "valid")]
    directory = tempfile.mkdtemp(prefix="reinforce_overhead_")

    def make(cls, name, **kw):
        o = cls(
            objective=kt.Objective("val_acc_12ep", "max"),
            max_trials=10**6,
            hyperparameters=bench.hyperparameters(),
            seed=0,
            allow_duplicates=True,
            **kw,
        )
        o.verbose = 0
        internals.set_project_dir(o, directory, name)
        return o

    def one(o):
        c0 = time.process_time()
        t0 = time.perf_counter()
        trial = o.create_trial("w")
        i = bench.index_of(trial.hyperparameters.values)
        o.update_trial(trial.trial_id, {"val_acc_12ep": float(signal[i])})
        trial.status = "COMPLETED"
        o.end_trial(trial)
        return time.perf_counter() - t0, time.process_time() - c0

    oracles = {
        "random": make(RandomOracle, "rs"),
        "reinforce": make(ReinforceOracle, "rl", **ast.literal_eval(args.reinforce_kwargs)),
    }
    times = {k: [] for k in oracles}
    cpu = {k: [] for k in oracles}
    print("load at start", os.getloadavg(), flush=True)
    try:
        if args.profile:
            pr = cProfile.Profile()
            for n in range(args.trials):
                if n == args.trials // 2:
                    pr.enable()
                one(oracles["reinforce"])
            pr.disable()
            pstats.Stats(pr).sort_stats("cumulative").print_stats(40)
            return
        marks = {100, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, args.trials}
        print(
            "| trial | random median ms | REINFORCE median ms | difference | random mean | REINFORCE mean "
            "| CPU ms random | CPU ms REINFORCE | CPU difference | load |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in range(args.trials):
            order = ("random", "reinforce") if n % 2 == 0 else ("reinforce", "random")
            for k in order:
                wall, c = one(oracles[k])
                times[k].append(wall)
                cpu[k].append(c)
            if n + 1 in marks:
                lo = max(0, n - 49)
                med = {k: 1000 * float(np.median(v[lo : n + 1])) for k, v in times.items()}
                mean = {k: 1000 * float(np.mean(v[lo : n + 1])) for k, v in times.items()}
                cm = {k: 1000 * float(np.mean(v[lo : n + 1])) for k, v in cpu.items()}
                print(
                    f"| {n + 1} | {med['random']:.1f} | {med['reinforce']:.1f} | "
                    f"{med['reinforce'] - med['random']:+.1f} | {mean['random']:.1f} | {mean['reinforce']:.1f} | "
                    f"{cm['random']:.1f} | {cm['reinforce']:.1f} | {cm['reinforce'] - cm['random']:+.1f} | "
                    f"{os.getloadavg()[0]:.1f} |",
                    flush=True,
                )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
