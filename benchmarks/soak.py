"""Soak benchmark: an aging-evolution search with a trivial evaluator for 20,000 trials through
keras-tuner's full trial lifecycle (a real ``keras_tuner.Tuner.search`` loop: create_trial ->
run_trial -> update_trial -> end_trial -> Tuner.save, with every file keras-tuner and keras-nas
write). Records trials/s per block of trials, RSS and the project directory size, so a per-trial
cost that grows with the number of finished trials shows up.

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/soak.py --trials 20000 --out /tmp/soak

``--tuner kt-random`` runs keras-tuner's own ``RandomSearch`` with the same evaluator (its
``oracle.json`` keeps O(history) lists, rewritten on every save) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def dir_size_mb(path) -> tuple:
    total, files = 0, 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(root, n))
                files += 1
            except OSError:
                pass
    return total / 2**20, files


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--block", type=int, default=1000)
    ap.add_argument("--out", default="/tmp/keras_nas_soak")
    ap.add_argument("--tuner", default="aging", choices=["aging", "kt-random"])
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--resume", action="store_true", help="keep the project (overwrite=False)")
    args = ap.parse_args(argv)

    import keras_tuner as kt

    from keras_nas.controllers import tuners
    from keras_nas.space import NASNetCellSpace

    cells = NASNetCellSpace(num_blocks=5)
    hp = kt.HyperParameters()
    cells.register(hp)
    kinds = {d.name: d.kind for d in cells.decisions}
    stats = {
        "blocks": [],
        "t0": time.perf_counter(),
        "last": time.perf_counter(),
        "n": 0,
        "cpu": time.process_time(),
    }
    log_path = os.path.join(args.out, f"soak_{args.tuner}.jsonl")
    os.makedirs(args.out, exist_ok=True)
    if not args.resume:
        shutil.rmtree(os.path.join(args.out, args.tuner), ignore_errors=True)
    logf = open(log_path, "a")

    def evaluate(values):  # deterministic, trivial
        return {"score": sum(hash(str(v)) % 97 for v in values.values()) / 97.0}

    class Mixin:
        def run_trial(self, trial, *a, **k):
            return evaluate(trial.hyperparameters.values)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            stats["n"] += 1
            n = len(self.oracle.trials) if args.resume else stats["n"]
            if n % args.block == 0:
                now = time.perf_counter()
                rec = {
                    "trials": n,
                    "block_s": now - stats["last"],
                    "trials_per_s": args.block / (now - stats["last"]),
                    "elapsed_s": now - stats["t0"],
                    "rss_mb": rss_mb(),
                    "cpu_ms_per_trial": 1000 * (time.process_time() - stats["cpu"]) / args.block,
                }
                stats["cpu"] = time.process_time()
                if n % (5 * args.block) == 0 or n == args.trials:
                    rec["dir_mb"], rec["files"] = dir_size_mb(os.path.join(args.out, args.tuner))
                    rec["oracle_json_kb"] = (
                        os.path.getsize(os.path.join(args.out, args.tuner, "oracle.json")) / 1024
                    )
                stats["last"] = now
                stats["blocks"].append(rec)
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                print(json.dumps(rec), flush=True)

    common = dict(
        objective=kt.Objective("score", "max"),
        max_trials=args.trials,
        hyperparameters=hp,
        directory=args.out,
        project_name=args.tuner,
        overwrite=not args.resume,
        seed=1,
    )
    if args.tuner == "aging":

        class Soak(Mixin, tuners.AgingEvolution):
            pass

        tuner = Soak(
            population_size=100,
            sample_size=25,
            kinds=kinds,
            allow_duplicates=True,
            fsync=not args.no_fsync,
            **common,
        )
    else:

        class Soak(Mixin, kt.RandomSearch):
            pass

        tuner = Soak(**common)
    print(
        json.dumps(
            {
                "start": True,
                "rss_mb": rss_mb(),
                "trials_loaded": len(tuner.oracle.trials),
                "setup_s": time.perf_counter() - stats["t0"],
                "args": vars(args),
            }
        ),
        flush=True,
    )
    logf.write(json.dumps({"start": time.time(), "rss_mb": rss_mb(), "args": vars(args)}) + "\n")
    stats["t0"] = stats["last"] = time.perf_counter()
    stats["cpu"] = time.process_time()
    tuner.search(verbose=0)
    size, files = dir_size_mb(os.path.join(args.out, args.tuner))
    done = {
        "done": True,
        "trials": len(tuner.oracle.trials),
        "elapsed_s": time.perf_counter() - stats["t0"],
        "rss_mb": rss_mb(),
        "dir_mb": size,
        "files": files,
    }
    logf.write(json.dumps(done) + "\n")
    logf.close()
    print(json.dumps(done), flush=True)


if __name__ == "__main__":
    sys.exit(main())
