"""Early stopping on the demo: the same search budget with and without it, then the demo's retraining.

``make demo`` searches 6 trials of 2 epochs (12 training epochs) and cannot take a time budget,
so the budget here is **training epochs**: a search may start a trial only while the epochs
used so far (completed trials: all their epochs; stopped trials: the epochs they ran) plus one
full trial fit in the budget (``--budget_epochs``, default 6 x the trial epochs, the demo's). With
early stopping the same epochs buy more trials. The winner is retrained and tested exactly as
the demo does (N=1, F=16, 8 epochs, drop path 0.1, auxiliary head); reported: held-out test
accuracy, trials, epochs used, search and total wall-clock.

    python benchmarks/early_stopping_demo.py --early_stopping=asha --seed=0 OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("output_dir")
    ap.add_argument("--early_stopping", default="none", choices=["none", "median", "asha"])
    ap.add_argument("--early_stopping_epochs", type=int, default=1)
    ap.add_argument("--early_stopping_eta", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per trial (the demo's 2)")
    ap.add_argument(
        "--budget_epochs", type=int, default=None, help="default 6 * --epochs (the demo's 6 trials)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    budget = args.budget_epochs or 6 * args.epochs

    from keras_nas import cli

    cli._quiet()
    from keras_nas.jobs import search, train
    from keras_nas.tuning import oracle as oracle_lib
    from keras_nas.tuning.early_stopping import epoch_metric
    from keras_nas.tuning.internals import TrialStatus

    def epochs_used(o):
        used = 0
        for t in o.trials.values():
            if t.status == TrialStatus.COMPLETED:
                used += args.epochs
            elif t.status == TrialStatus.STOPPED:
                used += max(obs.step for obs in t.metrics.get_history(epoch_metric(o.objective)))
        return used

    populate = oracle_lib.ControllerOracle.populate_space

    def budgeted(self, trial_id):  # the epoch budget: no new trial that might not fit
        if epochs_used(self) + args.epochs > budget:
            return {"status": TrialStatus.STOPPED, "values": None}
        return populate(self, trial_id)

    oracle_lib.ControllerOracle.populate_space = budgeted
    t0 = time.time()
    cfg = search.SearchConfig(
        space="nasnet",
        controller="evolution",
        data="digits",
        image_size=16,
        epochs=args.epochs,
        num_cells=1,
        filters=8,
        num_blocks=3,
        max_trials=1000,
        population_size=3,
        sample_size=2,
        batch_size=64,
        learning_rate=0.003,
        output_dir=args.output_dir,
        seed=args.seed,
        overwrite=True,
        tensorboard=False,
        early_stopping=args.early_stopping,
        early_stopping_epochs=args.early_stopping_epochs,
        early_stopping_eta=args.early_stopping_eta,
    )
    s = search.run_search(cfg, log=lambda *a: None)
    t_search = time.time() - t0
    tcfg = train.TrainConfig(
        run_dir=args.output_dir,
        epochs=8,
        num_cells=1,
        filters=16,
        drop_path=0.1,
        aux_head=True,
        batch_size=64,
        learning_rate=0.003,
        seed=args.seed,
    )
    r = train.run_train(tcfg, log=lambda *a: None)
    out = {
        "early_stopping": args.early_stopping,
        "seed": args.seed,
        "budget_epochs": budget,
        "trials": s["trials"],
        "search_seconds": round(t_search, 1),
        "total_seconds": round(time.time() - t0, 1),
        "search_val_accuracy": s["best"]["search_val_accuracy"],
        "search_net_test": s["best"]["test_accuracy"],
        "retrained_test_accuracy": r["test_accuracy"],
        "architecture": r["architecture"],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
