"""Zero-cost proxy table for all 15,625 NAS-Bench-201 cells: synflow, params and flops of each
cell's network on CIFAR-10 (32x32x3, 10 classes), CIFAR-100 (32x32x3, 100) and
ImageNet16-120 (16x16x3, 120), C = 16, N = 5 (``build_nb201_network``'s defaults), and
their Spearman rank correlation with the 200-epoch test accuracies.

Synflow comes from ``keras_nas.proxies.nb201.NB201Synflow`` (one masked supernet, batches of
cells per traced call; CIFAR-10 and CIFAR-100 share the body and differ in the head), params
and flops from ``keras_nas.proxies.nb201.cell_costs`` (5 real builds per dataset). Before
writing, the script checks both against real ``build_nb201_network`` models on a random
sample of cells: ``keras_nas.proxies.score(model, "synflow", reinit=False)`` with the
supernet's weights loaded (``NB201Synflow.load_into``), and ``score(model, "params"/"flops")``;
and CIFAR-10 params against NAS-Bench-201's ``params_m`` for every cell.

Resumable: synflow rows are appended to ``<out>.partial.csv`` every chunk; a rerun skips
them. The table is written atomically (temp file + os.replace), the partial file removed.

    nice -n 10 python benchmarks/nb201_proxy_table.py            # all cells, ~1 h on one busy core
    python benchmarks/nb201_proxy_table.py --limit 64 --out /tmp/t.csv   # a quick try
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import numpy as np

DATASETS = {  # name: (input shape, classes, accuracy column of nb201.csv)
    "cifar10": ((32, 32, 3), 10, "cifar10_test"),
    "cifar100": ((32, 32, 3), 100, "cifar100_test"),
    "imagenet16": ((16, 16, 3), 120, "imagenet16_test"),
}
PROXIES = ("synflow", "params", "flops")
# Abdelfattah et al. 2021, NAS-Bench-201 Spearman rho vs test accuracy (|rho|), as printed in the
# output of notebooks/nasbench201_correlations.ipynb of SamsungLabs/zero-cost-nas ("Table 1").
PUBLISHED = {"synflow": {"cifar10": 0.737, "cifar100": 0.763, "imagenet16": 0.751}}
DEFAULT_NB201 = os.path.join(os.path.dirname(REPO), "shared", "nas-bench-201", "nb201.csv")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_nb201(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, r in enumerate(rows):
        if int(r["arch_index"]) != i:
            raise ValueError(f"{path}: row {i} has arch_index {r['arch_index']}; expected rows in index order.")
    return rows


def read_partial(path):
    done = {}
    if os.path.exists(path):
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                done[int(r["arch_index"])] = [float(r[f"{d}_synflow"]) for d in DATASETS]
    return done


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nb201", default=DEFAULT_NB201, help="nb201.csv (arch strings, accuracies, params_m)")
    ap.add_argument("--out", default=os.path.join(HERE, "data", "nb201_proxies.csv"))
    ap.add_argument("--limit", type=int, default=None, help="only the first N cells (a quick try)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32, help="cells per traced supernet call")
    ap.add_argument("--chunk", type=int, default=512, help="cells between checkpoints")
    ap.add_argument("--verify", type=int, default=8, help="sample cells per dataset checked against real builds")
    ap.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads")
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from scipy.stats import spearmanr

    from keras_nas.blocks.network import build_nb201_network
    from keras_nas.proxies import score
    from keras_nas.proxies.nb201 import NB201Synflow, cell_costs

    t_start = time.time()
    rows = read_nb201(args.nb201)
    if args.limit:
        rows = rows[: args.limit]
    archs = [r["arch"] for r in rows]
    n = len(archs)
    summary = {"cells": n, "seed": args.seed, "load_start": os.getloadavg()}

    # -- params and flops: per-op terms from 5 real builds, then checked on real builds ----------
    costs = {}
    for d, (shape, k, _) in DATASETS.items():
        t = time.time()
        costs[d] = cell_costs(archs, input_shape=shape, num_classes=k)
        log(f"{d}: params/flops for {n} cells in {time.time() - t:.1f} s")
    pm = np.array([float(r["params_m"]) for r in rows]) * 1e6
    dev = np.abs(costs["cifar10"]["params"] - pm)
    summary["params_vs_params_m"] = {"max_abs_dev": float(dev.max()), "cells_exact": int((dev < 0.5).sum()), "cells": n}
    log(f"CIFAR-10 params vs NAS-Bench-201 params_m: max |dev| {dev.max():.1f} params, exact for "
        f"{int((dev < 0.5).sum())} / {n} cells")

    # -- synflow via the masked supernets, resumable ----------------------------------------------
    partial = args.out + ".partial.csv"
    done = read_partial(partial)
    sup_cifar = NB201Synflow((32, 32, 3), (10, 100), seed=args.seed, batch_size=args.batch_size)
    sup_in16 = NB201Synflow((16, 16, 3), (120,), seed=args.seed, batch_size=args.batch_size)
    todo = [i for i in range(n) if i not in done]
    log(f"synflow: {len(done)} cells from {partial}, {len(todo)} to go")
    new_file = not os.path.exists(partial)
    t_syn = time.time()
    with open(partial, "a", newline="") as f:
        w = csv.writer(f)
        if new_file:
            w.writerow(["arch_index"] + [f"{d}_synflow" for d in DATASETS])
        for c0 in range(0, len(todo), args.chunk):
            idx = todo[c0:c0 + args.chunk]
            cells = [archs[i] for i in idx]
            a = sup_cifar(cells)
            b = sup_in16(cells)
            for j, i in enumerate(idx):
                vals = [a[j, 0], a[j, 1], b[j, 0]]
                done[i] = vals
                w.writerow([i] + [repr(float(v)) for v in vals])
            f.flush()
            os.fsync(f.fileno())
            el = time.time() - t_syn
            rate = (c0 + len(idx)) / el
            log(f"synflow {c0 + len(idx)}/{len(todo)} ({rate:.1f} cells/s, ETA {(len(todo) - c0 - len(idx)) / rate / 60:.1f} min,"
                f" load {os.getloadavg()[0]:.2f})")
    summary["synflow_s"] = time.time() - t_syn
    summary["synflow_cells_this_run"] = len(todo)

    # -- checks against real networks on a random sample ------------------------------------------
    rng = np.random.default_rng(12345)
    sample = sorted(rng.choice(n, size=min(args.verify, n), replace=False).tolist())
    ver = {}
    for d, (shape, k, _) in DATASETS.items():
        sup = sup_in16 if d == "imagenet16" else sup_cifar
        col = list(DATASETS).index(d)
        worst_syn, cost_ok = 0.0, True
        for i in sample:
            model = build_nb201_network(archs[i], input_shape=shape, num_classes=k)
            sup.load_into(model, k)
            real = score(model, "synflow", reinit=False)
            masked = done[i][col]
            rel = abs(masked - real) / abs(real) if real else abs(masked)
            worst_syn = max(worst_syn, rel)
            for p in ("params", "flops"):
                cost_ok &= score(model, p) == costs[d][p][i]
        ver[d] = {"cells": sample, "synflow_max_rel_diff": worst_syn, "params_flops_exact": bool(cost_ok)}
        log(f"check {d} on {len(sample)} real builds: synflow max rel diff {worst_syn:.2e}, "
            f"params/flops exact: {cost_ok}")
    summary["verification"] = ver

    # -- the table, atomically --------------------------------------------------------------------
    header = ["arch_index", "arch"] + [f"{d}_{p}" for d in DATASETS for p in PROXIES]
    tmp = args.out + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            vals = []
            for col, d in enumerate(DATASETS):
                vals += [repr(float(done[i][col])), int(costs[d]["params"][i]), int(costs[d]["flops"][i])]
            w.writerow([i, archs[i]] + vals)
    os.replace(tmp, args.out)
    if os.path.exists(partial):
        os.remove(partial)
    log(f"wrote {args.out}")

    # -- Spearman rank correlation with the 200-epoch test accuracy -------------------------------
    rho = {}
    for d, (_, _, acc_col) in DATASETS.items():
        acc = np.array([float(r[acc_col]) for r in rows])
        col = list(DATASETS).index(d)
        vals = {"synflow": np.array([done[i][col] for i in range(n)]),
                "params": costs[d]["params"], "flops": costs[d]["flops"]}
        rho[d] = {p: float(spearmanr(v, acc).statistic) for p, v in vals.items()}
    summary["spearman"] = rho
    summary["total_s"] = time.time() - t_start
    summary["load_end"] = os.getloadavg()
    print(f"{'proxy':<10}" + "".join(f"{d:>22}" for d in DATASETS))
    for p in PROXIES:
        cells = []
        for d in DATASETS:
            pub = PUBLISHED.get(p, {}).get(d)
            cells.append(f"{rho[d][p]:.3f} (pub {pub:.3f})" if pub is not None else f"{rho[d][p]:.3f}")
        print(f"{p:<10}" + "".join(f"{c:>22}" for c in cells))
    print(json.dumps(summary, indent=1))
    with open(args.out.replace(".csv", "") + ".summary.json", "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
