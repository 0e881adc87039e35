"""Rank disorder of shared weights, measured: does a trained supernet rank cells as training them does?

A uniform single-path supernet (``keras_nas.oneshot.search(strategy="spos")``) is trained on the digits
table's protocol (``keras_nas.benchmarks.digits_data.PROTOCOL``: 16x16 canvas, C=8, N=1, Adam 0.01 cosine,
batch 64) for each number of epochs given; then ``--cells`` cells drawn from the table are scored with
the shared weights (accuracy on the whole validation split, batch statistics) and compared with their
accuracy when trained alone (the table's mean over two seeds): Spearman and Kendall rank correlation,
plus the mean shared-weight accuracy, and where the cells that the shared weights rank first land in
the table: the table percentile of the top-ranked cell and the mean of the top 5 (what a strategy that
picks children by shared-weight accuracy -- spos, supernet-evolution, ENAS -- can at best pick from these
cells). ``by_input_edge_op`` breaks the same numbers down by the op on the cell's input edge (0 -> 1),
the edge the over-rated shallow cells differ on: per group the table's mean percentile, the mean
shared-weight accuracy, the Spearman correlation inside the group and the table percentile of the
group's top-ranked cell. One JSON line per (seed, epochs) to stdout.

    python benchmarks/shared_weight_ranking.py --epochs 10 40 100 200 --seeds 1 --cells 100
    python benchmarks/shared_weight_ranking.py --epochs 40 100 200 --seeds 1 2 3 --cells 0   # all cells
    python benchmarks/shared_weight_ranking.py --strategy enas --epochs 40 --seeds 1 2 3 --cells 0 \
        --search_kwargs '{"warmup_epochs": 20, "eval_batches": 4}'   # ENAS's own supernet
    python benchmarks/shared_weight_ranking.py --epochs 40 --seeds 1 2 3 --cells 0 --split_epochs 8

``--split_epochs E`` adds few-shot NAS's remedy for rank disorder (Zhao et al. 2021), split on the input
edge: the trained supernet is copied once per op of edge 0 -> 1, each copy fine-tuned for ``E`` epochs
on the children with that op there (Adam, cosine from half the protocol's learning rate, clip 5), and
each cell scored by the copy of its own input-edge op. The supernet's cost grows by ``5 E`` epochs.

Benchmark-only: the final selection of the ``spos`` strategy is swapped for one that scores the table's
cells (``Spos.select``), everything else is the library's search.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TABLE = os.path.join(REPO, "benchmarks", "data", "digits_nb201.csv")


def fine_tune_step(model, opt):
    """One traced training step of ``model`` on a given child path (``opt`` built here)."""
    import tensorflow as tf

    opt.build(model.trainable_variables)

    @tf.function
    def step(xb, yb, path):
        with tf.GradientTape() as tape:
            logits = model(xb, path=path, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits)
            )
        pairs = [
            (g, v)
            for g, v in zip(
                tape.gradient(loss, model.trainable_variables), model.trainable_variables
            )
            if g is not None
        ]
        grads, _ = tf.clip_by_global_norm([g for g, _ in pairs], 5.0)
        opt.apply_gradients(zip(grads, [v for _, v in pairs]))

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--epochs", type=int, nargs="+", default=[10, 40, 100, 200])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument(
        "--cells", type=int, default=100, help="table cells scored (a seeded draw; 0: all)"
    )
    ap.add_argument("--batch_size", type=int, default=None, help="supernet batch (protocol's: 64)")
    ap.add_argument(
        "--strategy",
        default="spos",
        choices=["spos", "enas"],
        help="whose supernet training (enas: the controller's children after any warm-up)",
    )
    ap.add_argument("--search_kwargs", default="", help="JSON of extra search() arguments")
    ap.add_argument(
        "--split_epochs",
        type=int,
        default=0,
        help="few-shot split on the input edge: fine-tune one copy per op for this many epochs",
    )
    ap.add_argument("--table", default=DEFAULT_TABLE)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    from scipy.stats import kendalltau, spearmanr
    from weight_sharing_digits import protocol_search_kwargs, tensorflow_with_threads

    tensorflow_with_threads(args.threads)

    from keras_nas.benchmarks import digits_nb201 as dg
    from keras_nas.oneshot import architect, search
    from keras_nas.space.nb201 import NB201Cell

    table = dg.load_table(args.table)
    rows = table.rows
    pick = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))[: args.cells or None]]
    data = dg.load_data(dg.PROTOCOL)
    scored = {}

    def score_table_cells(self, loop):
        scored["t"] = time.time()
        every = len(loop.val_batches())  # the whole val split, whatever eval_batches says
        if args.split_epochs:
            shared = split_scores(loop, every)
        else:
            shared = [loop.evaluate_arch(NB201Cell.parse(r["arch"]), batches=every) for r in pick]
        scored["shared"] = shared
        return NB201Cell.parse(pick[int(np.argmax(shared))]["arch"]), []

    def split_scores(loop, every):
        """Few-shot split on the input edge (see the module docstring)."""
        import keras
        import tensorflow as tf

        model, x, y = loop.model, data["x_train"], data["y_train"].astype(np.int32)
        bs = loop.batch_size
        steps = len(x) // bs
        base = [v.numpy() for v in model.weights]
        shared = [0.0] * len(pick)
        for k, op in enumerate(loop.space.ops):
            for v, b in zip(model.weights, base):
                v.assign(b)
            schedule = keras.optimizers.schedules.CosineDecay(
                dg.PROTOCOL.learning_rate / 2, args.split_epochs * steps
            )
            step = fine_tune_step(model, keras.optimizers.Adam(schedule))
            rng = np.random.default_rng([loop.seed, 77, k])
            for _ in range(args.split_epochs):
                order = rng.permutation(len(x))
                for i in range(steps):
                    idx = order[i * bs : (i + 1) * bs]
                    path = loop.space.random_path(rng)
                    path[0] = k  # edge 0 -> 1
                    step(tf.constant(x[idx]), tf.constant(y[idx]), tf.constant(path, tf.int32))
            for j, r in enumerate(pick):
                cell = NB201Cell.parse(r["arch"])
                if cell.ops[0] == op:
                    shared[j] = loop.evaluate_arch(cell, batches=every)
        return shared

    architect.ARCHITECTS[args.strategy].select = score_table_cells
    truth = [r["accuracy_mean"] for r in pick]
    percentile = np.array([table.percentile(a) for a in truth])
    input_op = [NB201Cell.parse(r["arch"]).ops[0] for r in pick]  # edge 0 -> 1

    def by_input_edge_op(shared):
        out = {}
        for op in sorted(set(input_op)):
            idx = [i for i, o in enumerate(input_op) if o == op]
            s = np.asarray(shared)[idx]
            out[op] = dict(
                cells=len(idx),
                table_percentile=round(float(percentile[idx].mean()), 1),
                mean_shared_accuracy=round(float(s.mean()), 3),
                spearman=round(float(spearmanr(s, np.asarray(truth)[idx]).correlation), 2),
                top1_percentile=round(float(percentile[idx[int(np.argmax(s))]]), 1),
            )
        return out

    for seed in args.seeds:
        for epochs in args.epochs:
            t0 = time.time()
            kw = protocol_search_kwargs(args.strategy, seed, epochs)
            if args.batch_size:
                kw["batch_size"] = args.batch_size
            kw.update(json.loads(args.search_kwargs or "{}"))
            r = search(data["x_train"], data["y_train"], data["x_val"], data["y_val"], **kw)
            shared = scored["shared"]
            train_seconds = scored["t"] - t0
            top = np.argsort(-np.asarray(shared), kind="stable")
            print(
                json.dumps(
                    dict(
                        strategy=args.strategy,
                        search_kwargs=args.search_kwargs,
                        split_epochs=args.split_epochs,
                        seed=seed,
                        epochs=epochs,
                        batch_size=kw["batch_size"],
                        steps=epochs * (len(data["x_train"]) // kw["batch_size"]),
                        cells=len(pick),
                        spearman=round(float(spearmanr(shared, truth).correlation), 3),
                        kendall=round(float(kendalltau(shared, truth).correlation), 3),
                        mean_shared_accuracy=round(float(np.mean(shared)), 3),
                        top1_percentile=round(float(percentile[top[0]]), 1),
                        top5_percentile=round(float(percentile[top[:5]].mean()), 1),
                        by_input_edge_op=by_input_edge_op(shared),
                        final_train_accuracy=round(r.trace[-1]["train_accuracy"], 3),
                        seconds=round(time.time() - t0, 1),
                        train_seconds=round(train_seconds, 1),
                        load=round(os.getloadavg()[0], 2),
                    )
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
