"""Tuning loop for ``PredictorController`` on NAS-Bench-201 (issue #12), without keras-tuner.

Drives the controller's ``propose``/``observe`` directly over the tables with the protocol of
``benchmarks/nas_bench_201.py`` (which goes through ``PredictorOracle``; the two give the same
searches): the CIFAR-10 12,000 s budget run (12-epoch validation accuracy as the signal, the
evaluation that would exceed the budget ends the run, answer = best signal in the history) and the
sample-efficiency run (200-epoch ``cifar10_valid`` as the signal, no budget; evaluations until the
best-``cifar10_valid`` cell is evaluated, up to ``--cap``). Use it on the *tuning* seeds only
(budget 1..40, efficiency 1..30); the reported seeds (1001..) are for the real script.

    python benchmarks/nb201_predictor_tuning.py --name defaults --kw '{}'
    python benchmarks/nb201_predictor_tuning.py --name no-ard --kw '{"ard": false}'

(The whole-space variants of the README's follow-up table need the code at commit ``9419049``.)

Prints one JSON line per variant (and appends it to ``--out`` when given): mean test accuracy,
mean regret, ``top2`` (share of runs ending on one of the two best 12-epoch cells), the failed
runs' (seed, cell), the median evaluations to the best-valid cell and the per-seed values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from keras_nas.benchmarks.nas_bench_201 import BUDGETS, NASBench201  # noqa: E402
from keras_nas.controllers.predictor import PredictorController  # noqa: E402
from keras_nas.tuning.spaces import param_space_from_hyperparameters  # noqa: E402


def budget_run(bench, space, kw, seed, ds="cifar10"):
    """(chosen cell, its 200-epoch test accuracy, 12-epoch valid regret, evaluations)."""
    sig, costs = bench.acc12[(ds, "valid")], bench.costs[ds]
    ctrl = PredictorController(seed=seed, **kw)
    used, hist = 0.0, []
    while True:
        v = ctrl.propose(space)
        i = bench.index_of(v)
        if used + costs[i] > BUDGETS[ds]:
            break
        used += costs[i]
        ctrl.observe(v, float(sig[i]), space)
        hist.append(i)
    h = np.array(hist)
    best = int(h[np.argmax(sig[h])])
    test = float(bench.acc200[(ds, "test")][best])
    return best, test, float(sig.max() - sig[best]), len(hist)


def evals_to_best(bench, space, kw, seed, cap):
    sig = bench.acc200[("cifar10", "valid")]
    target = int(np.argmax(sig))
    ctrl = PredictorController(seed=seed, **kw)
    for n in range(1, cap + 1):
        v = ctrl.propose(space)
        i = bench.index_of(v)
        ctrl.observe(v, float(sig[i]), space)
        if i == target:
            return n
    return None


def _seeds(text):
    lo, hi = (int(x) for x in text.split("-"))
    return list(range(lo, hi + 1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kw", default="{}", help="JSON dict of PredictorController arguments")
    ap.add_argument("--name", default="variant")
    ap.add_argument("--budget-seeds", default="1-40")
    ap.add_argument("--eff-seeds", default="1-30")
    ap.add_argument("--cap", type=int, default=400)
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--skip-eff", action="store_true")
    ap.add_argument("--skip-budget", action="store_true")
    ap.add_argument("--table-dir", default=os.path.join(REPO, "..", "shared", "nas-bench-201"))
    ap.add_argument("--out", default=None, help="append the JSON line to this file")
    args = ap.parse_args(argv)
    bench = NASBench201(args.table_dir)
    space = param_space_from_hyperparameters(bench.hyperparameters())
    kw = json.loads(args.kw)
    out = {"name": args.name, "kw": kw}
    t0 = time.time()
    if not args.skip_budget:
        seeds = _seeds(args.budget_seeds)
        rs = [budget_run(bench, space, kw, s, args.dataset) for s in seeds]
        top2 = set(np.argsort(-bench.acc12[(args.dataset, "valid")])[:2].tolist())
        out.update(
            test=round(float(np.mean([r[1] for r in rs])), 3),
            test_std=round(float(np.std([r[1] for r in rs])), 3),
            regret=round(float(np.mean([r[2] for r in rs])), 3),
            top2=round(float(np.mean([r[0] in top2 for r in rs])), 3),
            archs=round(float(np.mean([r[3] for r in rs])), 1),
            fails=[(s, r[0]) for s, r in zip(seeds, rs) if r[0] not in top2],
        )
    t1 = time.time()
    if not args.skip_eff:
        es = [evals_to_best(bench, space, kw, s, args.cap) for s in _seeds(args.eff_seeds)]
        out["eff_median"] = float(np.median([args.cap + 1 if e is None else e for e in es]))
        out["eff"] = [f">{args.cap}" if e is None else e for e in es]
    out.update(t_budget_s=round(t1 - t0), t_eff_s=round(time.time() - t1))
    line = json.dumps(out)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
