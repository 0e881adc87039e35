"""Weight-sharing NAS judged on real data: one-shot searches on the digits ground-truth table.

For each one-shot strategy (``keras_nas.oneshot.search``) and seed, the NB201 supernet is trained on
the table protocol's train split (``keras_nas.benchmarks.digits_data.PROTOCOL``: digits on a 16x16
canvas, C=8, N=1, Adam lr 0.01 cosine, batch 64) with the val split for the architecture, and the
derived cell is scored exactly as the table's cells were: trained from scratch with seeds 0 and 1
(``train_cell``; the table row is used when the cell is in it), mean test accuracy, and its
percentile among the table's cells. Reported beside it: the search's wall-clock and supernet epochs,
as a multiple of training one cell from scratch (the protocol's 6 epochs; seconds measured in this
invocation by the derived cells' own trainings).

Baselines given the same wall-clock (``--baselines``): aging evolution and the PredictorOracle's
controller, ask/tell, each proposal trained from scratch with the search seed (``train_cell``), its
``val_accuracy`` the signal, until the budget (the median wall-clock of the one-shot searches of the
invocation, or ``--baseline_seconds``; or ``--baseline_cells`` trainings) is spent; the answer is the best-val cell, scored like the
one-shot cells.

    python benchmarks/weight_sharing_digits.py --strategies darts,drnas,gdas,enas,spos,supernet-evolution \\
        --seeds 0 1 2 3 4 --epochs 10 --out benchmarks/data/weight_sharing_digits.jsonl

One JSON line per run (appended; rerunning skips finished (strategy, seed) pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
LANDMARK = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
DEFAULT_TABLE = os.path.join(REPO, "benchmarks", "data", "digits_nb201.csv")


def score_cell(cell, table, cache, timings):
    """(mean test accuracy over seeds 0/1, per-seed accuracies, in table) for ``cell``."""
    from keras_nas.benchmarks import digits_nb201 as dg

    key = str(cell)
    if key in table:
        r = table.row(key)
        return r["accuracy_mean"], [r["accuracy_seed0"], r["accuracy_seed1"]], True
    if key not in cache:
        accs = []
        for s in (0, 1):
            t0 = time.perf_counter()
            accs.append(dg.train_cell(cell, s)["accuracy"])
            timings.append(time.perf_counter() - t0)
        cache[key] = accs
    accs = cache[key]
    return sum(accs) / 2, accs, False


def tensorflow_with_threads(threads):
    """Import TensorFlow quietly, limited to ``threads`` CPU threads (the benchmarks' setting:
    one thread per job keeps timings comparable on a shared machine)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def protocol_search_kwargs(strategy, seed, epochs):
    """``keras_nas.oneshot.search`` arguments for the table protocol's network and training."""
    from keras_nas.benchmarks.digits_data import PROTOCOL as P

    return dict(
        space="nb201",
        strategy=strategy,
        epochs=epochs,
        batch_size=P.batch_size,
        seed=seed,
        channels=P.channels,
        num_cells=P.num_cells,
        optimizer="adam",
        learning_rate=P.learning_rate,
        lr_schedule="cosine",
        bn_momentum=P.bn_momentum,
        bn_epsilon=P.bn_epsilon,
        tensorboard=False,
    )


def run_oneshot(strategy, seed, args, data):
    from keras_nas.oneshot import search

    kw = protocol_search_kwargs(strategy, seed, args.epochs)
    kw.update(json.loads(args.search_kwargs or "{}"))
    r = search(data["x_train"], data["y_train"], data["x_val"], data["y_val"], **kw)
    return r.architecture, r.seconds, r.epochs, r.trace


def run_baseline(name, seed, budget_s, args):
    from keras_nas.benchmarks import digits_nb201 as dg
    from keras_nas.controllers.evolution import AgingEvolutionController
    from keras_nas.controllers.params import ParamSpace
    from keras_nas.controllers.predictor import PredictorController
    from keras_nas.space.nb201 import NB201Space

    space = NB201Space()
    ps = ParamSpace.from_search_space(space)
    ctrl = (
        AgingEvolutionController(args.population, args.sample, seed=seed)
        if name == "evolution"
        else PredictorController(seed=seed)
    )
    t0, best, n = time.perf_counter(), None, 0
    while True:
        values = ctrl.propose(ps)
        cell = space.decode(values)
        r = dg.train_cell(cell, seed)
        n += 1
        ctrl.observe(values, r["val_accuracy"], ps)
        if best is None or r["val_accuracy"] > best[1]:
            best = (cell, r["val_accuracy"])
        if (args.baseline_cells and n >= args.baseline_cells) or (
            not args.baseline_cells and time.perf_counter() - t0 >= budget_s
        ):
            break
    return best[0], time.perf_counter() - t0, n


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--strategies", default="darts,drnas,gdas,enas,spos,supernet-evolution")
    ap.add_argument("--baselines", default="evolution,predictor")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=10, help="supernet epochs")
    ap.add_argument(
        "--search_kwargs", default="", help="JSON of extra keras_nas.oneshot.search arguments"
    )
    ap.add_argument(
        "--tag", default="", help="label stored with each row (e.g. a settings variant)"
    )
    ap.add_argument("--baseline_seconds", type=float, default=None)
    ap.add_argument(
        "--baseline_cells",
        type=int,
        default=0,
        help="give each baseline this many cell trainings instead of a wall-clock budget (the one-shot "
        "searches' cost in cell trainings measured under their own load: the same cost on a noisy machine)",
    )
    ap.add_argument("--population", type=int, default=5)
    ap.add_argument("--sample", type=int, default=2)
    ap.add_argument("--table", default=DEFAULT_TABLE)
    ap.add_argument(
        "--out", default=os.path.join(REPO, "benchmarks", "data", "weight_sharing_digits.jsonl")
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    tensorflow_with_threads(args.threads)
    from keras_nas.benchmarks import digits_nb201 as dg

    table = dg.load_table(args.table)
    data = dg.load_data(dg.PROTOCOL)
    done = set()
    if os.path.isfile(args.out):
        with open(args.out) as f:
            for line in f:
                r = json.loads(line)
                done.add((r["method"], r["seed"], r.get("tag", "")))
    cache, timings, oneshot_seconds = {}, [], []
    # trace the trainer before anything is timed (the first call traces for ~25 CPU s), then time
    # two trainings from scratch: the unit of the search-cost comparison
    dg.train_cell(LANDMARK, 0)
    for s in (0, 1):
        t0 = time.perf_counter()
        dg.train_cell(LANDMARK, s)
        timings.append(time.perf_counter() - t0)

    def unit():  # seconds of one cell training from scratch, median so far
        return round(statistics.median(timings), 2) if timings else None

    def scored(method, seed, cell, secs):
        """The fields every row has: the found cell, its trained accuracy and percentile."""
        mean, accs, in_table = score_cell(cell, table, cache, timings)
        return dict(
            method=method,
            seed=seed,
            cell=str(cell),
            accuracy_mean=mean,
            accuracy_seeds=accs,
            in_table=in_table,
            percentile=table.percentile(mean),
            search_seconds=round(secs, 1),
        )

    def emit(row):
        row["tag"] = args.tag
        row["load"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")

    for strategy in [s for s in args.strategies.split(",") if s]:
        for seed in args.seeds:
            if (strategy, seed, args.tag) in done:
                continue
            cell, secs, epochs, trace = run_oneshot(strategy, seed, args, data)
            oneshot_seconds.append(secs)
            emit(
                dict(
                    **scored(strategy, seed, cell, secs),
                    supernet_epochs=epochs,
                    epochs=args.epochs,
                    final_probabilities=(trace[-1].get("probabilities") if trace else None),
                    epoch_seconds=[round(t.get("seconds", 0.0), 1) for t in trace],
                    shared_val_accuracy=[t.get("val_accuracy") for t in trace],
                    derived_per_epoch=[t.get("derived") for t in trace],
                    cell_training_seconds=unit(),
                )
            )
    budget = (
        args.baseline_cells
        or args.baseline_seconds
        or (statistics.median(oneshot_seconds) if oneshot_seconds else None)
    )
    for name in [b for b in args.baselines.split(",") if b]:
        if budget is None:
            print(
                "no budget for the baselines: give --baseline_seconds or run one-shot strategies",
                flush=True,
            )
            break
        for seed in args.seeds:
            if (name, seed, args.tag) in done:
                continue
            cell, secs, n = run_baseline(name, seed, budget, args)
            emit(
                dict(
                    **scored(name, seed, cell, secs),
                    budget_seconds=round(budget, 1),
                    cells_trained=n,
                    cell_training_seconds=unit(),
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
