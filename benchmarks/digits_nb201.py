"""Ground-truth table: NAS-Bench-201 cells trained on the embedded digits data (CPU).

Trains a fixed uniform sample of NB201 cells (plus landmark cells) under
``keras_nas.benchmarks.digits_nb201.PROTOCOL`` for seeds 0 and 1 and writes
``benchmarks/data/digits_nb201.csv`` (columns: ``keras_nas.benchmarks.digits_nb201.TABLE_COLUMNS``)
and a JSON summary next to it (protocol, sample, seed-vs-seed Spearman, quantiles, timings).
Results and the command line are recorded in benchmarks/README.md
("Real-data ground truth: NB201 cells on digits").

Resumable: finished cells are appended (flushed) to ``<out>.partial.csv`` after every chunk;
re-running the same command skips them. The final CSV is written atomically (temp file +
os.replace) once every cell has both seeds; ``--partial`` writes it from whatever is finished.

    python benchmarks/digits_nb201.py                              # the table (300 cells x 2 seeds)
    python benchmarks/digits_nb201.py --cells 40 --set epochs=3 --out /tmp/pilot.csv   # a pilot

Run it on one core: it sets TensorFlow's intra/inter-op threads to ``--threads`` (1).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_OUT = os.path.join(REPO, "benchmarks", "data", "digits_nb201.csv")
DEFAULT_NB201 = os.path.join(REPO, "..", "shared", "nas-bench-201", "nb201.csv")
NUM_ARCHS = 5**6  # 15,625


def landmarks():
    from keras_nas.space.nb201 import NB201Cell

    cells = [
        NB201Cell([op] * 6)
        for op in ("nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none")
    ]
    # ResNet-like (conv3x3 chain plus a skip from the input), and NB201's best CIFAR-10 cell
    cells.append(
        NB201Cell.parse(
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
        )
    )
    cells.append(
        NB201Cell.parse(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
            "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        )
    )
    return cells


def sample_cells(n: int, seed: int = 0):
    """Landmarks first, then cells drawn uniformly without replacement from the 15,625 (deduplicated)."""
    import numpy as np

    from keras_nas.space.nb201 import NB201_OPS, NB201Cell

    out, seen = [], set()
    for c in landmarks():
        if c not in seen:
            out.append(c)
            seen.add(c)
    for idx in np.random.default_rng(seed).permutation(NUM_ARCHS):
        if len(out) >= n:
            break
        ops = [NB201_OPS[(int(idx) // 5**e) % 5] for e in range(6)]
        c = NB201Cell(ops)
        if c not in seen:
            out.append(c)
            seen.add(c)
    return out[:n]


def nb201_index(path: str) -> dict:
    if not path or not os.path.isfile(path):
        return {}
    with open(path, newline="") as f:
        return {r["arch"]: int(r["arch_index"]) for r in csv.DictReader(f)}


_PARAMS: dict = {}


def bench_size(protocol) -> int:
    from keras_nas.benchmarks.digits_data import input_size

    return input_size(protocol)


def count_params(cell, protocol) -> int:
    """``model.count_params()`` of the real network (cached by the cell's conv counts, which fix it)."""
    key = (cell.ops.count("nor_conv_1x1"), cell.ops.count("nor_conv_3x3"))
    if key not in _PARAMS:
        from keras_nas.blocks.network import build_nb201_network

        m = build_nb201_network(
            cell,
            input_shape=(bench_size(protocol), bench_size(protocol), 1),
            num_classes=10,
            channels=protocol.channels,
            num_cells=protocol.num_cells,
        )
        _PARAMS[key] = int(m.count_params())
    return _PARAMS[key]


def read_partial(path):
    done = {}
    if os.path.isfile(path):
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                done[(r["arch"], int(r["seed"]))] = r
    return done


PARTIAL_FIELDS = (
    "arch",
    "seed",
    "accuracy",
    "val_accuracy",
    "shift_accuracy",
    "train_loss",
    "epochs",
    "seconds",
)


def append_partial(path, results):
    new = not os.path.isfile(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=PARTIAL_FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        for r in results:
            w.writerow(r)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def summarize(rows, seeds):
    import numpy as np
    from scipy.stats import spearmanr

    a = np.array([[r[f"accuracy_seed{s}"] for s in seeds] for r in rows], float)
    mean = a.mean(1)
    out = dict(cells=len(rows))
    if len(seeds) >= 2 and len(rows) > 2:
        out["spearman_seed0_seed1"] = float(spearmanr(a[:, 0], a[:, 1]).statistic)
        out["kendall_seed0_seed1"] = float(
            __import__("scipy.stats").stats.kendalltau(a[:, 0], a[:, 1]).statistic
        )
        out["mean_abs_seed_diff"] = float(np.abs(a[:, 0] - a[:, 1]).mean())
        val = np.array([[r[f"val_accuracy_seed{s}"] for s in seeds] for r in rows], float)
        out["spearman_val_vs_test_mean"] = float(spearmanr(val.mean(1), mean).statistic)
        out["spearman_val_seed0_seed1"] = float(spearmanr(val[:, 0], val[:, 1]).statistic)
        sh = np.array([[r[f"shift_accuracy_seed{s}"] for s in seeds] for r in rows], float)
        if np.isfinite(sh).all():
            out["spearman_shift_seed0_seed1"] = float(spearmanr(sh[:, 0], sh[:, 1]).statistic)
            out["mean_abs_shift_seed_diff"] = float(np.abs(sh[:, 0] - sh[:, 1]).mean())
            out["spearman_shift_vs_test_mean"] = float(spearmanr(sh.mean(1), mean).statistic)
            q = [0, 5, 10, 25, 50, 75, 90, 95, 100]
            out["shift_accuracy_mean_quantiles"] = {
                f"q{p}": float(v) for p, v in zip(q, np.percentile(sh.mean(1), q))
            }
            out["distinct_shift_accuracy_mean"] = int(len(np.unique(sh.mean(1))))
    if len(seeds) >= 2 and len(rows) > 2:
        tl = np.array([[r[f"train_loss_seed{s}"] for s in seeds] for r in rows], float)
        out["spearman_train_loss_seed0_seed1"] = float(spearmanr(tl[:, 0], tl[:, 1]).statistic)
        out["spearman_train_loss_vs_accuracy_mean"] = float(spearmanr(tl.mean(1), mean).statistic)
        ok = mean >= 0.2
        out["spearman_seed0_seed1_without_below_20pct"] = float(
            spearmanr(a[ok, 0], a[ok, 1]).statistic
        )
        top = mean >= np.median(mean)
        out["spearman_seed0_seed1_top_half"] = float(spearmanr(a[top, 0], a[top, 1]).statistic)
        bottom = ~top
        out["spearman_seed0_seed1_bottom_half"] = float(
            spearmanr(a[bottom, 0], a[bottom, 1]).statistic
        )
    if rows and "params" in rows[0] and len(rows) > 2:
        out["spearman_params_vs_accuracy_mean"] = float(
            spearmanr([r["params"] for r in rows], mean).statistic
        )
    q = [0, 5, 10, 25, 50, 75, 90, 95, 100]
    out["accuracy_mean_quantiles"] = {f"q{p}": float(v) for p, v in zip(q, np.percentile(mean, q))}
    for j, s in enumerate(seeds):
        out[f"distinct_accuracy_seed{s}"] = int(len(np.unique(a[:, j])))
    out["distinct_accuracy_mean"] = int(len(np.unique(mean)))
    out["below_20pct"] = int((mean < 0.2).sum())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--cells", type=int, default=300, help="cells in the sample (landmarks included)"
    )
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument(
        "--slots",
        type=int,
        default=1,
        help="cells trained side by side in one graph (1: results reproduce train_cell bit for bit)",
    )
    ap.add_argument("--chunk", type=int, default=20, help="cells per checkpoint (both seeds)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument(
        "--nb201-csv",
        default=DEFAULT_NB201,
        help="NAS-Bench-201 nb201.csv for arch_index (optional)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a Protocol field (pilots only; the table uses the fixed protocol)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--partial", action="store_true", help="write the table from the finished cells and exit"
    )
    args = ap.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from keras_nas.benchmarks import digits_nb201 as bench

    protocol = bench.PROTOCOL
    if args.set:
        kw = {}
        types = {f.name: f.type for f in dataclasses.fields(bench.Protocol)}
        for item in args.set:
            k, _, v = item.partition("=")
            if k not in types:
                ap.error(f"--set {item}: unknown protocol field {k!r}; fields: {sorted(types)}")
            kw[k] = float(v) if "float" in str(types[k]) else int(v)
        protocol = dataclasses.replace(protocol, **kw)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    partial = args.out + ".partial.csv"
    cells = sample_cells(args.cells, args.sample_seed)
    done = read_partial(partial)
    todo = [c for c in cells if any((str(c), s) not in done for s in args.seeds)]
    print(
        f"{len(cells)} cells x seeds {args.seeds}; {len(cells) - len(todo)} already done; protocol {protocol}",
        flush=True,
    )
    t_start = time.time()
    if not args.partial:
        for a in range(0, len(todo), args.chunk):
            chunk = todo[a : a + args.chunk]
            for s in args.seeds:
                need = [c for c in chunk if (str(c), s) not in done]
                if not need:
                    continue
                res = bench.train_cells(need, s, protocol=protocol, slots=args.slots)
                append_partial(partial, res)
                for r in res:
                    done[(r["arch"], s)] = r
            el = time.time() - t_start
            n = min(a + args.chunk, len(todo))
            print(
                f"[{time.strftime('%H:%M:%S')}] {n}/{len(todo)} cells, {el:.0f} s, "
                f"{el / n / len(args.seeds):.2f} s per training; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )

    index = nb201_index(args.nb201_csv)
    rows = []
    for c in cells:
        key = str(c)
        if not all((key, s) in done for s in args.seeds):
            continue
        row = dict(arch_index=index.get(key, ""), arch=key)
        for col in ("accuracy", "val_accuracy", "shift_accuracy", "train_loss", "seconds"):
            for s in args.seeds:
                row[f"{col}_seed{s}"] = float(done[(key, s)][col])
            if col != "seconds":
                row[f"{col}_mean"] = sum(row[f"{col}_seed{s}"] for s in args.seeds) / len(
                    args.seeds
                )
        row["params"] = count_params(c, protocol)
        rows.append(row)
    complete = len(rows) == len(cells)
    cols = (
        ["arch_index", "arch"]
        + [f"accuracy_seed{s}" for s in args.seeds]
        + ["accuracy_mean"]
        + [f"val_accuracy_seed{s}" for s in args.seeds]
        + ["val_accuracy_mean"]
        + [f"shift_accuracy_seed{s}" for s in args.seeds]
        + ["shift_accuracy_mean"]
        + [f"train_loss_seed{s}" for s in args.seeds]
        + ["train_loss_mean", "params"]
        + [f"seconds_seed{s}" for s in args.seeds]
    )
    lines = [",".join(cols)]
    for r in rows:
        lines.append(
            ",".join(
                f"{r[k]:.6f}"
                if isinstance(r[k], float) and not k.startswith("seconds")
                else (f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]))
                for k in cols
            )
        )
    if not rows:
        print("no finished cells yet")
        return 1
    atomic_write(args.out, "\n".join(lines) + "\n")
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uptime = ""
    summary = dict(
        complete=complete,
        cells_in_sample=len(cells),
        protocol=protocol.to_dict(),
        seeds=args.seeds,
        sample_seed=args.sample_seed,
        slots=args.slots,
        command=" ".join(sys.argv),
        training_seconds_total=float(sum(r[f"seconds_seed{s}"] for r in rows for s in args.seeds)),
        uptime_at_end=uptime,
        machine=platform.processor() or platform.machine(),
        cpus=os.cpu_count(),
        tensorflow=tf.__version__,
        **summarize(rows, args.seeds),
    )
    atomic_write(os.path.splitext(args.out)[0] + ".json", json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
