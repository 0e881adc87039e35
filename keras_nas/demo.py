"""``make demo``: a real architecture search on embedded data, offline, in minutes on a CPU.

Why these settings: the demo must finish in under 10 minutes on 2 CPU cores with no
download. It searches NASNet/AmoebaNet cells with aging evolution (the default
controller) on scikit-learn's digits (1797 real 8x8 images, upsampled to 16x16), with
a tiny proxy network (N=1, F=8, 3 blocks per cell, 2 epochs per trial, 6 trials), then retrains
the winner a little larger and longer (with random shifts, opted into: shifting a digit keeps its
meaning, flipping it would not), and reports its accuracy on a held-out test split
that neither the search nor the retraining saw.

    python -m keras_nas.demo [OUTPUT_DIR]      # default runs/demo (started afresh)
"""

from __future__ import annotations

import os
import sys
import time

# The demo's search (without its trial count, output and seed) and its retraining of the winner;
# the benchmarks that compare against the demo (benchmarks/early_stopping_demo.py,
# benchmarks/oneshot_darts_demo.py) use these same settings.
DEMO_SEARCH = dict(
    space="nasnet",
    controller="evolution",
    data="digits",
    image_size=16,
    epochs=2,
    num_cells=1,
    filters=8,
    num_blocks=3,
    population_size=3,
    sample_size=2,
    batch_size=64,
    learning_rate=0.003,
)
DEMO_RETRAIN = dict(
    epochs=8,
    num_cells=1,
    filters=16,
    drop_path=0.1,
    aux_head=True,
    augment="shift",
    batch_size=64,
    learning_rate=0.003,
)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    out = argv[0] if argv else os.path.join("runs", "demo")
    from keras_nas import cli

    cli._quiet()
    from keras_nas.jobs import advice, search, train

    t0 = time.time()
    log = cli._log
    log(
        f"keras-nas demo: aging-evolution search of NASNet cells on the embedded digits data -> {out}"
    )
    cfg = search.SearchConfig(**DEMO_SEARCH, max_trials=6, output_dir=out, seed=0, overwrite=True)
    s = search.run_search(cfg, log=log)
    log(search.search_summary_text(s))
    log(
        "\nretraining the best architecture (N=1, F=16, 8 epochs, drop path 0.1, auxiliary head, random shifts) ..."
    )
    tcfg = train.TrainConfig(run_dir=out, seed=0, **DEMO_RETRAIN)
    r = train.run_train(tcfg, log=log)
    total = time.time() - t0
    log(
        f"\n== demo finished in {total / 60:.1f} min ==\n"
        f"best architecture: {r['architecture']}\n"
        f"held-out test accuracy: {r['test_accuracy']:.4f} (retrained, {r['params']:,} params; "
        f"search network: {s['best']['test_accuracy']:.4f})\n"
        f"everything is in {out}/ (results.csv, best_genotype.json, tensorboard/, final/)\n"
        f"next: {advice.command()} export --run_dir={out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
