"""SearchReporter: TensorBoard event files (read back), results files and progress lines.

Uses stand-in trials and oracles (what keras-tuner hands the reporter), so every tag,
including the duck-typed controller statistics, is checked in seconds without training.
The CLI end-to-end test (test_cli.py) checks the tags of a real search too.
"""

import csv
import glob
import json
import os
import types

import pytest

from keras_nas import reporting, zoo
from keras_nas.space import NASNetCellSpace

SPACE = NASNetCellSpace(num_blocks=2)


def read_tags(logdir):
    """{tag: [(step, value or None)]} from the event files under logdir."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator  # noqa: F401  (tensorboard installed)

    tags = {}
    for path in glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True):
        for ev in tf.compat.v1.train.summary_iterator(path):
            for v in ev.summary.value:
                val = None
                if v.HasField("tensor") and v.metadata.plugin_data.plugin_name == "scalars":
                    val = float(tf.make_ndarray(v.tensor))
                tags.setdefault(v.tag, []).append((ev.step, val))
    return tags


class FakeTrial:
    def __init__(self, trial_id, values, status, score=None, message=None):
        self.trial_id = trial_id
        self.hyperparameters = types.SimpleNamespace(values=values)
        self.status = status
        self.score = score
        self.message = message


def _values(seed):
    import random

    return SPACE.sample(random.Random(seed))


class EvolutionLikeOracle:
    """An oracle that publishes no summary_scalars(): the reporter falls back to the last
    population_size completed trials (the population of aging evolution by definition)."""

    def __init__(self):
        self.trials = {}
        self.controller = types.SimpleNamespace(population=[])


class ReinforceLikeOracle:
    """Publishes summary_scalars() (the duck-typed contract for controller statistics)."""

    def __init__(self):
        self.trials = {}
        self.calls = 0

    def summary_scalars(self):
        self.calls += 1
        return {
            "reward": 0.5,
            "baseline": 0.25 * self.calls,
            "entropy": 2.0,
            "prob/normal/b0_op0/identity": 0.125,
            "bad": float("nan"),
        }


def _run(tmp_path, oracle, outcomes):
    lines = []
    rep = reporting.SearchReporter(
        str(tmp_path),
        lambda v: str(SPACE.decode({d.name: v[d.name] for d in SPACE.decisions})),
        max_trials=len(outcomes),
        population_size=2,
        log=lines.append,
        image=lambda v: __import__("keras_nas.visualize", fromlist=["x"]).architecture_png(
            zoo.NASNET_A
        ),
    )
    for i, (status, score, msg) in enumerate(outcomes):
        tid = f"{i:02d}"
        rep.trial_begin(tid)
        rep.set_params(1000 + i)
        t = FakeTrial(tid, _values(i), status, score, msg)
        oracle.trials[tid] = t
        if status == "COMPLETED" and hasattr(oracle, "controller"):
            oracle.controller.population.append(
                {"values": t.hyperparameters.values, "reward": score}
            )
            del oracle.controller.population[:-2]
        rep.trial_end(t, oracle)
    rep.close()
    return lines


OUTCOMES = [
    ("COMPLETED", 0.5, None),
    (
        "FAILED",
        None,
        "Traceback (most recent call last):\n  File x\nValueError: filters must be positive",
    ),
    ("COMPLETED", 0.75, None),
    ("COMPLETED", 0.25, None),
]


def test_event_files_hold_every_search_tag(tmp_path):
    lines = _run(tmp_path, EvolutionLikeOracle(), OUTCOMES)
    tags = read_tags(os.path.join(tmp_path, "tensorboard"))
    for tag in (
        "trial/score",
        "trial/params",
        "trial/train_seconds",
        "trial/failed",
        "trial/architecture",
        "search/best_so_far",
        "search/completed_trials",
        "population/best_fitness",
        "population/median_fitness",
        "cells/best",
    ):
        assert tag in tags, f"missing {tag}; have {sorted(tags)}"
    assert [s for s, _ in tags["trial/score"]] == [1, 3, 4]  # the failed trial 2 has no score
    assert [v for _, v in tags["trial/failed"]] == [0.0, 1.0, 0.0, 0.0]
    assert [v for _, v in tags["search/best_so_far"]] == [0.5, 0.5, 0.75, 0.75]
    # population (size 2, oldest dies) after trial 4: {0.75, 0.25}
    assert tags["population/best_fitness"][-1] == (4, 0.75)
    assert tags["population/median_fitness"][-1] == (4, 0.5)
    assert [s for s, _ in tags["cells/best"]] == [1, 3]  # logged when the best changes
    assert len(lines) == 4 and lines[2].startswith("[trial 3/4] val_accuracy=0.7500")
    assert "best 0.7500 (trial 3)" in lines[3] and "left" in lines[3] and "elapsed" in lines[3]
    assert "FAILED (ValueError: filters must be positive)" in lines[1]


def test_controller_scalars_from_summary_scalars(tmp_path):
    oracle = ReinforceLikeOracle()
    _run(tmp_path, oracle, OUTCOMES[:2])
    tags = read_tags(os.path.join(tmp_path, "tensorboard"))
    assert tags["controller/reward"] == [(1, 0.5), (2, 0.5)]
    assert tags["controller/baseline"] == [(1, 0.25), (2, 0.5)]
    assert "controller/entropy" in tags and "controller/prob/normal/b0_op0/identity" in tags
    assert "controller/bad" not in tags  # non-finite values are skipped
    # no controller population: the last population_size completed trials stand in
    assert tags["population/best_fitness"] == [(1, 0.5), (2, 0.5)]


def test_results_files_list_every_trial_with_cost_and_failure(tmp_path):
    _run(tmp_path, EvolutionLikeOracle(), OUTCOMES)
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["COMPLETED", "FAILED", "COMPLETED", "COMPLETED"]
    assert (
        rows[1]["failure_reason"] == "ValueError: filters must be positive"
        and rows[1]["score"] == ""
    )
    assert rows[2]["score"] == "0.75" and rows[2]["params"] == "1002"
    assert float(rows[0]["train_seconds"]) >= 0 and rows[0]["started"]
    assert rows[0]["architecture"].startswith("normal=")
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["objective"] == "val_accuracy" and len(doc["trials"]) == 4
    assert set(doc["trials"][0]["hyperparameters"]) == {d.name for d in SPACE.decisions}
    # costs survive a restart (resume): a new reporter reads them back
    rep = reporting.SearchReporter(str(tmp_path), str, max_trials=4, tensorboard=False)
    assert rep.extra["02"]["params"] == 1002


def test_format_seconds():
    assert reporting.format_seconds(65) == "1:05"
    assert reporting.format_seconds(3725) == "1:02:05"


def test_real_reinforce_search_logs_policy_statistics(tmp_path):
    """keras-nas's real REINFORCE oracle publishes reward, baseline, mean entropy and the
    probability of each decision through summary_scalars()."""
    from keras_nas.jobs import search

    cfg = search.SearchConfig(
        controller="reinforce",
        output_dir=str(tmp_path),
        subset=40,
        image_size=8,
        max_trials=2,
        num_blocks=1,
        filters=4,
        batch_size=32,
        run_eagerly=True,
        seed=1,
    )
    search.run_search(cfg, log=lambda m: None)
    tags = read_tags(os.path.join(tmp_path, "tensorboard"))
    for tag in (
        "controller/reward",
        "controller/baseline",
        "controller/entropy",
        "controller/prob/normal/b0_op0",
        "trial/score",
        "search/best_so_far",
    ):
        assert tag in tags, (tag, sorted(tags))
    assert all(0.0 < v <= 1.0 for _, v in tags["controller/prob/normal/b0_op0"])
    import math

    # 8 ops: a fresh policy is close to uniform, entropy near log(8); inputs have 2 options: log(2)
    assert all(0.3 < v <= math.log(8) + 1e-6 for _, v in tags["controller/entropy"])
    # per-trial training curves (issue #14.9), one run directory per trial
    trials = sorted(os.listdir(os.path.join(tmp_path, "tensorboard", "trials")))
    assert trials == ["0", "1"]
    curves = read_tags(os.path.join(tmp_path, "tensorboard", "trials", "0"))
    assert "epoch_loss" in curves and "epoch_accuracy" in curves


def _quick_search(tmp_path, tuner_cls, **kwargs):
    """A keras-nas tuner (real oracle and controller) whose trials score themselves without
    training; the reporter logs every trial as in `keras-nas search`. Trial 1 fails."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    SPACE.register(hp)
    rep = reporting.SearchReporter(str(tmp_path / "out"), str, max_trials=6, log=lambda m: None)

    class Quick(tuner_cls):
        def run_trial(self, trial, *a, **k):
            if trial.trial_id == "1":
                raise ValueError("this architecture fails")
            return {
                "score": float(
                    sum(o == "sep_conv_3x3" for o in trial.hyperparameters.values.values())
                )
            }

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            rep.trial_begin(trial.trial_id)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            rep.trial_end(self.oracle.trials[trial.trial_id], self.oracle)

    tuner = Quick(
        objective=kt.Objective("score", "max"),
        max_trials=6,
        hyperparameters=hp,
        seed=1,
        directory=str(tmp_path),
        project_name="p",
        **kwargs,
    )
    tuner.search(verbose=0)
    rep.close()
    return tuner, rep.records(tuner.oracle), read_tags(str(tmp_path / "out" / "tensorboard"))


def test_aging_evolution_summary_scalars_in_event_files(tmp_path):
    """(Also: the population statistics are logged once, as controller/population/*.)"""
    from keras_nas import AgingEvolution

    tuner, records, tags = _quick_search(tmp_path, AgingEvolution, population_size=3, sample_size=2)
    assert tuner.oracle.summary_scalars().keys() == {
        "population/best",
        "population/median",
        "population/size",
        "failed",
    }
    assert [s for s, _ in tags["controller/failed"]] == list(range(1, 7))
    assert [v for _, v in tags["controller/failed"]] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert [v for _, v in tags["controller/population/size"]] == [
        1.0,
        1.0,
        2.0,
        3.0,
        3.0,
        3.0,
    ]  # P=3, oldest dies
    done = [r["score"] for r in records if r["score"] is not None]
    assert tags["controller/population/best"][-1] == (6, max(done[-3:]))
    assert tags["controller/population/median"][-1] == (6, sorted(done[-3:])[1])
    assert tags["controller/reward"][-1] == (
        6,
        records[-1]["score"],
    )  # no controller reward: the trial's score
    assert (
        "population/best_fitness" not in tags and "population/median_fitness" not in tags
    )  # no duplicates


def test_reinforce_summary_scalars_in_event_files(tmp_path):
    import math

    from keras_nas import ReinforceSearch

    tuner, records, tags = _quick_search(tmp_path, ReinforceSearch, units=8, batch_size=2)
    scores = [r["score"] for r in records]  # trial 2 (id "1") failed: skipped by REINFORCE
    assert scores[1] is None
    # reward: the batch being collected, then the mean of the last update's batch (trials 1+3, then 4+5)
    assert [v for _, v in tags["controller/reward"]] == pytest.approx(
        [
            scores[0],
            scores[0],
            (scores[0] + scores[2]) / 2,
            (scores[0] + scores[2]) / 2,
            (scores[3] + scores[4]) / 2,
            (scores[3] + scores[4]) / 2,
        ]
    )
    assert tags["controller/baseline"][-1][1] == pytest.approx(tuner.oracle.controller.baseline)
    for d in SPACE.decisions:  # every decision: probability of its most likely option
        vals = [v for _, v in tags[f"controller/prob/{d.name}"]]
        assert len(vals) == 6 and all(1.0 / len(d.options) - 1e-6 <= v <= 1.0 for v in vals), d.name
    assert all(math.log(2) * 0.5 < v <= math.log(8) + 1e-6 for _, v in tags["controller/entropy"])


def test_reinforce_summary_scalars_change_no_state():
    import json
    import random

    from keras_nas.controllers.params import ParamSpace
    from keras_nas.controllers.reinforce import ReinforceController

    space = ParamSpace.from_search_space(SPACE)
    a, b = (
        ReinforceController(seed=4, units=8, batch_size=2),
        ReinforceController(seed=4, units=8, batch_size=2),
    )
    assert a.summary_scalars(space) == {}  # nothing observed, nothing built
    rng = random.Random(0)
    for _ in range(3):
        va, vb = a.propose(space), b.propose(space)
        assert va == vb
        reward = rng.random()
        a.summary_scalars(space)
        a.observe(va, reward, space)
        a.summary_scalars(space)
        b.observe(vb, reward, space)
    assert json.dumps(a.get_state()) == json.dumps(b.get_state())
    assert a.propose(space) == b.propose(space)
