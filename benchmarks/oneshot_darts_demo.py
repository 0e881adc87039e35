"""The DARTS cell space on the demo data at equal wall-clock: a one-shot search against the demo's
aging evolution, each winner retrained exactly as ``make demo`` retrains its own.

Per seed, two arms, one after the other on the same machine:

1. one-shot (default DrNAS): ``keras-nas search --controller=drnas --space=nasnet`` on the demo's data
   and proxy network (digits at 16x16, N=1, C=8, 3 blocks per cell, the demo's 8 ops plus ``none``),
   ``--epochs`` supernet epochs; its search wall-clock ``W`` (tracing included) is measured;
2. evolution: the demo's search (aging evolution P=3 S=2, 2 epochs per trial, same proxy network)
   with ``--max_time=W``: the same search wall-clock, as many trials as fit.

Both winners are then retrained as the demo does (N=1, F=16, 8 epochs, drop path 0.1, auxiliary
head, random shifts, same seed) and tested on the held-out split neither search saw. One JSON line
per arm goes to stdout and to ``OUT_DIR/results.jsonl``.

    python benchmarks/oneshot_darts_demo.py OUT_DIR --seeds 0 1 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def retrain(run_dir: str, seed: int) -> dict:
    from keras_nas.demo import DEMO_RETRAIN
    from keras_nas.jobs import train

    t0 = time.time()
    r = train.run_train(
        train.TrainConfig(run_dir=run_dir, seed=seed, **DEMO_RETRAIN), log=lambda *a: None
    )
    return {
        "retrain_seconds": round(time.time() - t0, 1),
        "retrained_test_accuracy": r["test_accuracy"],
        "architecture": r["architecture"],
    }


def arm(args, name: str, seed: int, max_time=None) -> dict:
    from keras_nas.demo import DEMO_SEARCH
    from keras_nas.jobs import search

    run_dir = os.path.join(args.output_dir, f"{name}_{seed}")
    t0 = time.time()
    common = dict(DEMO_SEARCH, output_dir=run_dir, seed=seed, overwrite=True, tensorboard=False)
    if name == "evolution":
        cfg = search.SearchConfig(**common, max_trials=1000, max_time=max_time)
    else:  # the same data, proxy network and optimiser; a one-shot controller and its epochs
        cfg = search.SearchConfig(**{**common, "controller": name, "epochs": args.epochs})
    s = search.run_search(cfg, log=lambda *a: None)
    row = {
        "arm": name,
        "seed": seed,
        "search_seconds": round(time.time() - t0, 1),
        "max_time_s": max_time,
        "trials": s.get("trials"),
        "supernet_epochs": args.epochs if name != "evolution" else None,
    }
    row.update(retrain(run_dir, seed))
    row["total_seconds"] = round(time.time() - t0, 1)
    row["load_at_end"] = round(os.getloadavg()[0], 2)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("output_dir")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=10, help="supernet epochs of the one-shot arm")
    ap.add_argument("--oneshot", default="drnas", help="the one-shot controller")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_nas import cli

    cli._quiet()
    os.makedirs(args.output_dir, exist_ok=True)
    for seed in args.seeds:
        one = arm(args, args.oneshot, seed)
        evo = arm(args, "evolution", seed, max_time=one["search_seconds"])
        for row in (one, evo):
            print(json.dumps(row), flush=True)
            with open(os.path.join(args.output_dir, "results.jsonl"), "a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
