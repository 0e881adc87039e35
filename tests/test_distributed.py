"""Distributed keras-tuner (chief oracle + 2 workers over gRPC on localhost) with keras-nas oracles.

Each process is a real ``keras_tuner`` Tuner (a keras-nas tuner class whose ``run_trial``
returns a metric dict at once, no model), so the test checks the oracle's behaviour behind
the gRPC server: every trial completed, each run by exactly one worker, each reported once
to the controller. Strict timeouts: the processes are killed if anything hangs.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from _dist_env import cluster_env, free_port, stop_all
from _timing import wait_while_progressing

pytest.importorskip("keras_tuner")
pytest.importorskip("grpc")

MAX_TRIALS = 10
STALL_S = 240

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time, types
    import keras_tuner as kt
    import keras_tuner.src.distribute.oracle_chief as oracle_chief
    from keras_nas.tuning import tuners
    from keras_nas.space import NASNetCellSpace

    # keras-tuner's chief polls every 20 s once stopping; shorten it (test speed only).
    oracle_chief.time = types.SimpleNamespace(sleep=lambda s: time.sleep(min(s, 0.2)))

    out, kind, max_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tid = os.environ["KERASTUNER_TUNER_ID"]
    cells = NASNetCellSpace(num_blocks=2)

    class Search(getattr(tuners, kind)):
        def run_trial(self, trial, *args, **kwargs):
            v = trial.hyperparameters.values
            with open(os.path.join(out, f"ran_{tid}_{trial.trial_id}.json"), "w") as f:
                json.dump(v, f)
            time.sleep(0.05)
            score = sum(o == "sep_conv_3x3" for o in v.values()) + v["lr"]
            return {"score": score, "params": 1000.0 + 10 * v["normal/b0_in0"]}

    hp = kt.HyperParameters()
    cells.register(hp)
    hp.Float("lr", 1e-4, 1e-2, sampling="log")
    extra = {"population_size": 3, "sample_size": 2} if kind == "AgingEvolution" else {}
    tuner = Search(
        objective=kt.Objective("score", "max"), max_trials=max_trials, hyperparameters=hp, seed=7,
        directory=os.path.join(out, "search"), project_name="p", cost_metric="params",
        kinds={d.name: d.kind for d in cells.decisions}, **extra,
    )
    tuner.search(verbose=0)
    if "chief" in tid:
        o = tuner.oracle
        summary = {
            "statuses": {t.trial_id: t.status for t in o.trials.values()},
            "end_order": o.end_order,
            "observed": o.controller.get_state().get("num_observed"),
            "pending": len(o.pending_values()),
            "pareto": o.pareto_front(),
        }
        with open(os.path.join(out, "chief.json"), "w") as f:
            json.dump(summary, f)
    """
)


# KERAS_NAS_DIST_KIND=ReinforceSearch (or RandomArchitectureSearch) runs the same check for another oracle.
@pytest.mark.parametrize("kind", [os.environ.get("KERAS_NAS_DIST_KIND", "AgingEvolution")])
def test_chief_and_two_workers(tmp_path, kind):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    base = cluster_env(free_port())
    procs = {}
    logs = {}
    try:
        for tid in ("chief", "tuner0", "tuner1"):
            logs[tid] = open(tmp_path / f"{tid}.log", "w")
            procs[tid] = subprocess.Popen(
                [sys.executable, str(script), str(tmp_path), kind, str(MAX_TRIALS)],
                env=dict(base, KERASTUNER_TUNER_ID=tid),
                stdout=logs[tid],
                stderr=subprocess.STDOUT,
            )
        # wait while the search makes progress (trial files, logs); a long stall means a hang
        wait_while_progressing(procs.values(), [tmp_path], STALL_S)
    finally:
        stop_all(procs, logs)

    def tail(tid):
        return (tmp_path / f"{tid}.log").read_text()[-3000:]

    for tid, p in procs.items():
        assert p.returncode == 0, f"{tid} exited with {p.returncode}:\n{tail(tid)}"
    summary = json.loads((tmp_path / "chief.json").read_text())
    assert len(summary["statuses"]) == MAX_TRIALS
    assert set(summary["statuses"].values()) == {"COMPLETED"}
    assert sorted(summary["end_order"]) == sorted(summary["statuses"])  # each ended exactly once
    assert summary["observed"] == MAX_TRIALS and summary["pending"] == 0
    assert summary["pareto"]
    ran = sorted(f.name for f in tmp_path.glob("ran_*.json"))
    ids = [n.split("_", 2)[2][: -len(".json")] for n in ran]
    assert sorted(ids) == sorted(summary["statuses"])  # every trial run by exactly one worker
    assert {n.split("_")[1] for n in ran} <= {"tuner0", "tuner1"}
