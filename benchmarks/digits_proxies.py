"""Every zero-cost proxy's rank correlation on real data: the digits NB201 table.

The NAS-Bench-201 table (CIFAR) can only check data-free proxies here (no CIFAR offline); the
digits table (``benchmarks/data/digits_nb201.csv``, NB201 cells trained on the embedded digits
under ``keras_nas.benchmarks.digits_nb201.PROTOCOL``) checks them all. For each cell of the table
the protocol's network is built and scored by ``keras_nas.proxies.score_many`` on one fixed batch
of 64 training images (seed 0); Spearman against the two-seed mean test accuracy, and against the
seed-vs-seed agreement of the table itself (the ceiling any proxy can reach).

    python benchmarks/digits_proxies.py [--limit N]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

NAMES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "params", "flops")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=os.path.join(HERE, "data", "digits_nb201.csv"))
    ap.add_argument("--limit", type=int, default=0, help="score only the first N cells (0: all)")
    ap.add_argument("--out", default=os.path.join(HERE, "data", "digits_proxies.json"))
    args = ap.parse_args(argv)

    from scipy.stats import spearmanr

    from keras_nas import atomic, proxies
    from keras_nas.benchmarks import digits_nb201 as dg
    from keras_nas.blocks.network import build_nb201_network

    table = dg.load_table(args.table)
    rows = list(table)[: args.limit or None]
    data = dg.load_data()
    batch = (data["x_train"][:64], data["y_train"][:64])
    p = dg.PROTOCOL
    t0 = time.time()
    builders = [
        functools.partial(
            build_nb201_network,
            dg.parse_cell(r["arch"]),
            input_shape=(dg.input_size(p),) * 2 + (1,),
            num_classes=10,
            channels=p.channels,
            num_cells=p.num_cells,
        )
        for r in rows
    ]
    scores = proxies.score_many(builders, NAMES, batch=batch, seed=0)
    seconds = time.time() - t0
    acc = np.array([float(r["accuracy_mean"]) for r in rows])
    out = {
        "cells": len(rows),
        "seconds": round(seconds, 1),
        "load_average": os.getloadavg(),
        "seed_vs_seed": float(
            spearmanr(
                [float(r["accuracy_seed0"]) for r in rows],
                [float(r["accuracy_seed1"]) for r in rows],
            )[0]
        ),
        "spearman": {},
    }
    out["undefined"] = {}
    for name in NAMES:
        s = np.array([d[name] for d in scores], dtype=float)
        bad = ~np.isfinite(s)  # no input-output path etc.: ranked below every defined score
        out["undefined"][name] = int(bad.sum())
        s[bad] = (np.min(s[~bad]) - 1.0) if (~bad).any() else 0.0
        out["spearman"][name] = float(spearmanr(s, acc)[0])
    atomic.write_text(args.out, json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
