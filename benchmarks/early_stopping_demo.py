"""Early stopping on the demo: the same wall-clock budget with and without it, then the demo's retraining.

The demo's search (NASNet cells on the embedded digits, N=1, F=8, 3 blocks, aging evolution P=3 S=2)
is given a wall-clock budget (``--max_time``, the search option users have) instead of a trial count,
once per early-stopping rule, all rules of one seed started **at the same time** so they share the
machine's load. The winner of each search is retrained and tested exactly as ``make demo`` does (N=1,
F=16, 8 epochs, drop path 0.1, auxiliary head, random shifts). Reported per run: trials started,
trials stopped early, epochs trained, best search val accuracy, held-out test accuracy of the
retrained winner, wall-clock. One JSON line per run goes to stdout and to ``OUT_DIR/results.jsonl``.

    python benchmarks/early_stopping_demo.py OUT_DIR --max_time 600 --epochs 4 --early_stopping_epochs 2 \\
        --rules none,asha --seeds 0 1

Each run is a subprocess (``--one RULE SEED``), so the arms of a seed run in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def one(args, rule: str, seed: int) -> dict:
    from keras_nas import cli

    cli._quiet()
    from keras_nas.demo import DEMO_RETRAIN, DEMO_SEARCH
    from keras_nas.jobs import search, train

    run_dir = os.path.join(args.output_dir, f"{rule}_{seed}")
    t0 = time.time()
    cfg = search.SearchConfig(
        **{**DEMO_SEARCH, "epochs": args.epochs},
        max_trials=1000,
        output_dir=run_dir,
        seed=seed,
        overwrite=True,
        tensorboard=False,
        max_time=args.max_time,
        early_stopping=rule,
        early_stopping_epochs=args.early_stopping_epochs,
        early_stopping_eta=args.early_stopping_eta,
    )
    s = search.run_search(cfg, log=lambda *a: None)
    t_search = time.time() - t0
    epochs, stopped = 0, 0
    with open(os.path.join(run_dir, "results.json")) as f:
        rows = json.load(f)
    rows = rows["trials"]
    for (
        r
    ) in rows:  # results rows carry no epoch count: a stopped trial ran to its rung (one rung when
        # epochs <= early_stopping_epochs * eta, as in the recorded runs)
        if r.get("status") == "STOPPED":
            stopped += 1
            epochs += args.early_stopping_epochs
        elif r.get("status") == "COMPLETED":
            epochs += args.epochs
    tcfg = train.TrainConfig(run_dir=run_dir, seed=seed, **DEMO_RETRAIN)
    r = train.run_train(tcfg, log=lambda *a: None)
    return {
        "early_stopping": rule,
        "seed": seed,
        "max_time_s": args.max_time,
        "epochs_per_trial": args.epochs,
        "trials": s["trials"],
        "stopped_early": stopped,
        "epochs_trained": epochs,
        "search_seconds": round(t_search, 1),
        "total_seconds": round(time.time() - t0, 1),
        "search_val_accuracy": s["best"]["search_val_accuracy"],
        "search_net_test": s["best"]["test_accuracy"],
        "retrained_test_accuracy": r["test_accuracy"],
        "architecture": r["architecture"],
        "load_at_end": round(os.getloadavg()[0], 2),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("output_dir")
    ap.add_argument("--rules", default="none,asha", help="comma-separated: none, median, asha")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument(
        "--max_time", type=float, default=600.0, help="search wall-clock budget in seconds"
    )
    ap.add_argument("--epochs", type=int, default=2, help="epochs per trial (the demo's 2)")
    ap.add_argument("--early_stopping_epochs", type=int, default=1)
    ap.add_argument("--early_stopping_eta", type=int, default=3)
    ap.add_argument("--one", nargs=2, metavar=("RULE", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args, args.one[0], int(args.one[1]))), flush=True)
        return 0
    os.makedirs(args.output_dir, exist_ok=True)
    passthrough = [
        args.output_dir,
        "--max_time",
        str(args.max_time),
        "--epochs",
        str(args.epochs),
        "--early_stopping_epochs",
        str(args.early_stopping_epochs),
        "--early_stopping_eta",
        str(args.early_stopping_eta),
    ]
    for seed in args.seeds:
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, *passthrough, "--one", rule, str(seed)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for rule in args.rules.split(",")
        ]
        for p in procs:
            out, _ = p.communicate()
            line = (
                out.strip().splitlines()[-1] if out.strip() else json.dumps({"error": p.returncode})
            )
            print(line, flush=True)
            with open(os.path.join(args.output_dir, "results.jsonl"), "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
