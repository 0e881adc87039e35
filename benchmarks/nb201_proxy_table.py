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
# Abdelfattah et al. 2021, NAS-Bench-201 Spearman |rho| vs 200-epoch test accuracy, as printed in the
# output of notebooks/nasbench201_correlations.ipynb of SamsungLabs/zero-cost-nas ("Table 1"). Their
# CIFAR-10 accuracy is that of the 'cifar10-valid' run (trained on 25k images; nb201.csv's
# cifar10valid_test), CIFAR-100 / ImageNet16-120 the x-test accuracy (NAS-Bench-201 v1_0 file).
PUBLISHED = {"synflow": {"cifar10": 0.737, "cifar100": 0.763, "imagenet16": 0.751}}
# Second-hand only: FLOPs / params rows of EZNAS's (Akhauri et al. 2022) NAS-Bench-201 table, as copied in a
# third-party paper summary; not found in Abdelfattah et al.'s own material.
PUBLISHED_2ND_HAND = {
    "params": {"cifar10": 0.75, "cifar100": 0.72, "imagenet16": 0.69},
    "flops": {"cifar10": 0.75, "cifar100": 0.72, "imagenet16": 0.69},
}
DEFAULT_NB201 = os.path.join(os.path.dirname(REPO), "shared", "nas-bench-201", "nb201.csv")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_nb201(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, r in enumerate(rows):
        if int(r["arch_index"]) != i:
            raise ValueError(
                f"{path}: row {i} has arch_index {r['arch_index']}; expected rows in index order."
            )
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
    ap.add_argument(
        "--nb201", default=DEFAULT_NB201, help="nb201.csv (arch strings, accuracies, params_m)"
    )
    ap.add_argument("--out", default=os.path.join(HERE, "data", "nb201_proxies.csv"))
    ap.add_argument("--limit", type=int, default=None, help="only the first N cells (a quick try)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32, help="cells per traced supernet call")
    ap.add_argument("--chunk", type=int, default=512, help="cells between checkpoints")
    ap.add_argument(
        "--verify", type=int, default=8, help="sample cells per dataset checked against real builds"
    )
    ap.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads")
    ap.add_argument(
        "--check-only",
        action="store_true",
        help="read --out, re-run the checks on real builds and the Spearman table (no recomputation)",
    )
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from keras_nas.proxies.nb201 import NB201Synflow, cell_costs

    t_start = time.time()
    rows = read_nb201(args.nb201)
    if args.limit:
        rows = rows[: args.limit]
    archs = [r["arch"] for r in rows]
    n = len(archs)
    summary = {"cells": n, "seed": args.seed, "load_start": os.getloadavg()}
    sup_cifar = NB201Synflow((32, 32, 3), (10, 100), seed=args.seed, batch_size=args.batch_size)
    sup_in16 = NB201Synflow((16, 16, 3), (120,), seed=args.seed, batch_size=args.batch_size)

    if args.check_only:
        table = read_table(args.out, n)
        done = {i: [table[i][f"{d}_synflow"] for d in DATASETS] for i in range(n)}
        costs = {
            d: {p: np.array([table[i][f"{d}_{p}"] for i in range(n)]) for p in ("params", "flops")}
            for d in DATASETS
        }
        summary["mode"] = f"check-only of {args.out}"
    else:
        # -- params and flops: per-op terms from 5 real builds ----------------------------------
        costs = {}
        for d, (shape, k, _) in DATASETS.items():
            t = time.time()
            costs[d] = cell_costs(archs, input_shape=shape, num_classes=k)
            log(f"{d}: params/flops for {n} cells in {time.time() - t:.1f} s")
        done = compute_synflow(args, archs, sup_cifar, sup_in16, summary)

    pm = np.array([float(r["params_m"]) for r in rows]) * 1e6
    dev = np.abs(costs["cifar10"]["params"] - pm)
    summary["params_vs_params_m"] = {
        "max_abs_dev": float(dev.max()),
        "cells_exact": int((dev < 0.5).sum()),
        "cells": n,
    }
    log(
        f"CIFAR-10 params vs NAS-Bench-201 params_m: max |dev| {dev.max():.1f} params, exact for "
        f"{int((dev < 0.5).sum())} / {n} cells"
    )
    summary["verification"] = verify(args, archs, done, costs, sup_cifar, sup_in16)

    if not args.check_only:
        write_table(args.out, archs, done, costs)
        partial = args.out + ".partial.csv"
        if os.path.exists(partial):
            os.remove(partial)
        log(f"wrote {args.out}")

    summary["spearman"] = spearman_table(rows, done, costs)
    summary["total_s"] = time.time() - t_start
    summary["load_end"] = os.getloadavg()
    print(json.dumps(summary, indent=1))
    suffix = ".check" if args.check_only else ""
    with open(args.out.replace(".csv", "") + f".summary{suffix}.json", "w") as f:
        json.dump(summary, f, indent=1)


def compute_synflow(args, archs, sup_cifar, sup_in16, summary):
    """Synflow of every cell on the three datasets, appended to <out>.partial.csv per chunk."""
    n = len(archs)
    partial = args.out + ".partial.csv"
    done = read_partial(partial)
    todo = [i for i in range(n) if i not in done]
    log(f"synflow: {len(done)} cells from {partial}, {len(todo)} to go")
    new_file = not os.path.exists(partial)
    t_syn = time.time()
    with open(partial, "a", newline="") as f:
        w = csv.writer(f)
        if new_file:
            w.writerow(["arch_index"] + [f"{d}_synflow" for d in DATASETS])
        for c0 in range(0, len(todo), args.chunk):
            idx = todo[c0 : c0 + args.chunk]
            cells = [archs[i] for i in idx]
            a = sup_cifar(cells)
            b = sup_in16(cells)
            for j, i in enumerate(idx):
                vals = [a[j, 0], a[j, 1], b[j, 0]]
                done[i] = vals
                w.writerow([i] + [repr(float(v)) for v in vals])
            f.flush()
            os.fsync(f.fileno())
            rate = (c0 + len(idx)) / (time.time() - t_syn)
            log(
                f"synflow {c0 + len(idx)}/{len(todo)} ({rate:.1f} cells/s, "
                f"ETA {(len(todo) - c0 - len(idx)) / rate / 60:.1f} min, load {os.getloadavg()[0]:.2f})"
            )
    summary["synflow_s"] = time.time() - t_syn
    summary["synflow_cells_this_run"] = len(todo)
    return done


def verify(args, archs, done, costs, sup_cifar, sup_in16):
    """Masked supernet and per-op costs vs real build_nb201_network models on a random sample."""
    from keras_nas.blocks.network import build_nb201_network
    from keras_nas.proxies import score

    rng = np.random.default_rng(12345)
    sample = sorted(
        rng.choice(len(archs), size=min(args.verify, len(archs)), replace=False).tolist()
    )
    ver = {}
    for col, (d, (shape, k, _)) in enumerate(DATASETS.items()):
        sup = sup_in16 if d == "imagenet16" else sup_cifar
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
        ver[d] = {
            "cells": sample,
            "synflow_max_rel_diff": worst_syn,
            "params_flops_exact": bool(cost_ok),
        }
        log(
            f"check {d} on {len(sample)} real builds: synflow max rel diff {worst_syn:.2e}, "
            f"params/flops exact: {cost_ok}"
        )
    return ver


def write_table(out, archs, done, costs):
    header = ["arch_index", "arch"] + [f"{d}_{p}" for d in DATASETS for p in PROXIES]
    tmp = out + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, arch in enumerate(archs):
            vals = []
            for col, d in enumerate(DATASETS):
                vals += [
                    repr(float(done[i][col])),
                    int(costs[d]["params"][i]),
                    int(costs[d]["flops"][i]),
                ]
            w.writerow([i, arch] + vals)
    os.replace(tmp, out)


def read_table(path, n):
    with open(path, newline="") as f:
        table = [
            {k: (v if k == "arch" else float(v)) for k, v in r.items()} for r in csv.DictReader(f)
        ]
    if len(table) < n:
        raise ValueError(f"{path} has {len(table)} rows; expected {n}.")
    return table[:n]


def spearman_table(rows, done, costs):
    """Spearman rho of each proxy vs the 200-epoch test accuracy (and, for CIFAR-10, also vs the
    accuracy of the 'cifar10-valid' run, which is what Abdelfattah et al. correlate with)."""
    from scipy.stats import spearmanr

    targets = [(d, acc) for d, (_, _, acc) in DATASETS.items()] + [("cifar10", "cifar10valid_test")]
    rho = {}
    print(f"{'accuracy column':<30}" + "".join(f"{p:>24}" for p in PROXIES))
    for d, acc_col in targets:
        acc = np.array([float(r[acc_col]) for r in rows])
        col = list(DATASETS).index(d)
        vals = {
            "synflow": np.array([done[i][col] for i in range(len(rows))]),
            "params": costs[d]["params"],
            "flops": costs[d]["flops"],
        }
        rho[acc_col] = {p: float(spearmanr(v, acc).statistic) for p, v in vals.items()}
        cells = []
        for p in PROXIES:
            pub = PUBLISHED.get(p, {}).get(d) if acc_col != "cifar10_test" else None
            pub2 = PUBLISHED_2ND_HAND.get(p, {}).get(d)
            note = (
                f" (pub {pub:.3f})"
                if pub is not None
                else f" (2nd-hand {pub2:.2f})"
                if pub2 is not None
                else ""
            )
            cells.append(f"{rho[acc_col][p]:.3f}{note}")
        print(f"{acc_col:<30}" + "".join(f"{c:>24}" for c in cells))
    return rho


if __name__ == "__main__":
    main()
