"""Early stopping of hopeless trials: the pure rules, the oracle wiring, a real (tiny) fit."""

import json
import os

import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")

import keras_nas  # noqa: E402
from keras_nas.controllers.base import Controller  # noqa: E402
from keras_nas.controllers.stopping import ASHA, MedianStopping, make_rule  # noqa: E402
from keras_nas.tuning.early_stopping import epoch_metric  # noqa: E402
from keras_nas.tuning.oracle import AgingEvolutionOracle, ControllerOracle  # noqa: E402

STOPPED = kt.engine.trial.TrialStatus.STOPPED
COMPLETED = kt.engine.trial.TrialStatus.COMPLETED


# -- the rules ------------------------------------------------------------------------------
def test_median_stops_below_median_after_grace_and_min_trials():
    rule = MedianStopping(grace_epochs=2, min_trials=3).bind("max")
    for i, v in enumerate([0.5, 0.6, 0.7]):
        for step in (1, 2, 3):
            assert rule.report(f"t{i}", step, v) is None  # too few others to judge
    assert rule.report("low", 1, 0.1) is None  # grace: epoch 1 < grace_epochs
    reason = rule.report("low", 2, 0.2)
    assert reason is not None and "median" in reason and "0.6" in reason
    assert rule.report("high", 1, 0.1) is None
    assert rule.report("high", 2, 0.65) is None  # above the median 0.6
    assert rule.report("tie", 2, 0.6) is None  # not strictly worse


def test_median_uses_best_so_far_and_direction_min():
    rule = MedianStopping(grace_epochs=1, min_trials=2).bind("min")  # a loss: smaller is better
    for i, v in enumerate([1.0, 2.0, 3.0]):
        rule.report(f"t{i}", 1, v)
    assert rule.report("good", 1, 0.5) is None
    assert rule.report("bad", 1, 5.0) is not None  # a larger loss than the median 2.0
    # best so far: a noisy second epoch does not undo a good first one
    rule.report("noisy", 1, 1.5)
    for i, v in enumerate([1.0, 2.0, 3.0]):
        rule.report(f"t{i}", 2, v)
    assert rule.report("noisy", 2, 9.0) is None


def test_asha_promotes_top_fraction_asynchronously():
    rule = ASHA(min_epochs=1, eta=3).bind("max")
    assert rule.rung_epochs(30) == [1, 3, 9, 27]
    # the first trial at a rung always continues: nobody waits for the rung to fill
    assert rule.report("a", 1, 0.5) is None
    assert rule.report("b", 1, 0.4) is not None  # 2 at the rung: only the best continues
    assert rule.report("c", 1, 0.9) is None
    # 4 at the rung: top max(1, 4 // 3) = 1 continue; 'd' is second
    assert rule.report("d", 1, 0.8) is not None
    # between rungs nothing is decided; at the next rung a new competition
    assert rule.report("a", 2, 0.1) is None
    assert rule.report("a", 3, 0.55) is None  # first at rung 3
    assert rule.report("c", 3, 0.5) is None  # its best so far (0.9) beats a's 0.55
    assert rule.report("a", 4, 0.0) is None  # a passed rung 3 already: judged once per rung
    # a trial first reporting beyond a rung is judged at the highest rung it reached
    reason = rule.report("f", 3, 0.6)
    assert reason is not None and "top 1/3 at rung 3" in reason


def test_asha_direction_min_and_top_fraction():
    rule = ASHA(min_epochs=2, eta=2).bind("min")
    assert rule.report("x", 1, 9.0) is None  # before the first rung
    stops = {
        t: rule.report(t, 2, v) is not None
        for t, v in [("a", 3.0), ("b", 1.0), ("c", 2.0), ("d", 0.5)]
    }
    # a first (continues), b better than a (continues), c: top 1 of 3 is b -> stops, d best -> continues
    assert stops == {"a": False, "b": False, "c": True, "d": False}


def test_bad_arguments_name_the_argument_and_range():
    with pytest.raises(ValueError, match="grace_epochs must be an int >= 1"):
        MedianStopping(grace_epochs=0)
    with pytest.raises(ValueError, match="min_trials must be an int >= 1"):
        MedianStopping(min_trials=1.5)
    with pytest.raises(ValueError, match="eta must be an int >= 2"):
        ASHA(eta=1)
    with pytest.raises(ValueError, match="min_epochs must be an int >= 1"):
        ASHA(min_epochs=0)
    with pytest.raises(ValueError, match="'none', 'median', 'asha'"):
        make_rule("hyperband")
    assert make_rule("none") is None and isinstance(make_rule("asha", eta=4), ASHA)
    with pytest.raises(TypeError, match="early_stopping must be"):
        ControllerOracle(
            objective=kt.Objective("score", "max"), controller=_Fixed(), early_stopping="median"
        )


@pytest.mark.parametrize("make", [lambda: MedianStopping(1, 2), lambda: ASHA(1, 2)])
def test_state_round_trip_gives_the_same_decisions(make):
    rng = np.random.default_rng(0)
    reports = [(f"t{i % 7}", 1 + i // 7, float(rng.random())) for i in range(35)]
    a = make().bind("max")
    for r in reports[:20]:
        a.report(*r)
    b = make()
    b.set_state(json.loads(json.dumps(a.get_state())))
    assert b.direction == "max"
    assert [a.report(*r) for r in reports[20:]] == [b.report(*r) for r in reports[20:]]
    with pytest.raises(ValueError, match="state is of rule"):
        (ASHA() if isinstance(a, MedianStopping) else MedianStopping()).set_state(a.get_state())


# -- the oracle -----------------------------------------------------------------------------
class _Fixed(Controller):
    """Proposes x = 0, 1, 2, ...; records what it is told."""

    def __init__(self):
        super().__init__(seed=0)
        self.n = 0
        self.told = []

    def propose(self, space):
        self.n += 1
        return {"x": self.n - 1}

    def observe(self, values, reward, space):
        self.told.append((values["x"], reward))


def _hp():
    hp = kt.HyperParameters()
    hp.Int("x", 0, 1000)
    return hp


def _run(o, curves):
    """Drive the oracle as a keras-nas tuner does: per-epoch reports, then the final one."""
    stopped_at = {}
    for curve in curves:
        t = o.create_trial("w0")
        for step, v in enumerate(curve[:-1], start=1):
            answer = o.update_trial(t.trial_id, {epoch_metric(o.objective): v}, step=step)
            if answer.status == STOPPED:
                stopped_at[t.trial_id] = step
                break
        # keras-tuner's own final report: the best epoch's metrics, then COMPLETED
        ran = curve[: stopped_at.get(t.trial_id, len(curve))]
        o.update_trial(t.trial_id, {"score": max(ran)}, step=int(np.argmax(ran)))
        t.status = COMPLETED
        o.end_trial(t)
    return stopped_at


def test_oracle_stopped_trial_is_never_completed_nor_a_parent(tmp_path):
    o = AgingEvolutionOracle(
        objective=kt.Objective("score", "max"),
        hyperparameters=_hp(),
        max_trials=20,
        seed=1,
        population_size=3,
        sample_size=2,
        early_stopping=ASHA(min_epochs=1, eta=2),
    )
    o.verbose = 0
    o.set_project_dir(str(tmp_path), "p")
    curves = [[0.5, 0.6, 0.7], [0.2, 0.3, 0.9], [0.8, 0.85, 0.9], [0.1, 0.2, 0.99]]
    stopped = _run(o, curves)
    assert sorted(stopped) == ["01", "03"] and set(stopped.values()) == {1}
    statuses = {tid: t.status for tid, t in o.trials.items()}
    assert statuses == {"00": COMPLETED, "01": STOPPED, "02": COMPLETED, "03": STOPPED}
    # partial score recorded as such, with the reason; best trial is a completed one
    t1 = o.trials["01"]
    assert t1.score == pytest.approx(0.2) and "stopped at epoch 1" in t1.message
    assert o.get_best_trials(1)[0].trial_id == "02"
    # never a parent: the population holds only completed trials' rewards
    assert sorted(m["reward"] for m in o.population) == pytest.approx([0.7, 0.9])
    # trial.json says STOPPED and keeps the per-epoch curve
    tj = json.load(open(os.path.join(str(tmp_path), "p", "trial_01", "trial.json")))
    assert tj["status"] == "STOPPED"
    assert epoch_metric(o.objective) in tj["metrics"]["metrics"]
    # results files and the progress line say STOPPED, with the reason; never the best
    from keras_nas import reporting

    lines = []
    rep = reporting.SearchReporter(
        str(tmp_path / "out"), str, max_trials=4, tensorboard=False, log=lines.append
    )
    rep.trial_begin("01")
    rep.trial_end(o.trials["01"], o)
    rows = json.load(open(tmp_path / "out" / "results.json"))["trials"]
    assert [r["status"] for r in rows] == ["COMPLETED", "STOPPED", "COMPLETED", "STOPPED"]
    assert "stopped at epoch 1" in rows[1]["failure_reason"] and rows[1]["score"] is None
    assert (
        "=STOPPED (keras-nas: stopped at epoch 1: 0.2 not in top 1/2 at rung 1 (ASHA))" in lines[-1]
    )
    assert "best 0.9000 (trial 3)" in lines[-1]


def test_any_controller_is_told_none_for_a_stopped_trial(tmp_path):
    ctrl = _Fixed()
    o = ControllerOracle(
        objective=kt.Objective("loss", "min"),
        hyperparameters=_hp(),
        max_trials=20,
        controller=ctrl,
        early_stopping=MedianStopping(grace_epochs=1, min_trials=1),
    )
    o.verbose = 0
    o.set_project_dir(str(tmp_path), "p")
    # direction 'min': the second trial's larger loss is the hopeless one
    for t_curve in ([1.0, 0.9, 0.8], [3.0, 2.9, 2.8]):
        t = o.create_trial("w0")
        answers = [
            o.update_trial(t.trial_id, {epoch_metric(o.objective): v}, step=s).status
            for s, v in enumerate(t_curve[:1], start=1)
        ]
        o.update_trial(t.trial_id, {"loss": min(t_curve[: 1 if STOPPED in answers else 3])})
        t.status = COMPLETED
        o.end_trial(t)
    assert ctrl.told == [(0, -0.8), (1, None)]
    assert o.trials["01"].status == STOPPED


def test_resume_rebuilds_the_rule_from_trial_files(tmp_path):
    def make():
        o = AgingEvolutionOracle(
            objective=kt.Objective("score", "max"),
            hyperparameters=_hp(),
            max_trials=20,
            seed=1,
            population_size=3,
            sample_size=2,
            early_stopping=ASHA(min_epochs=1, eta=2),
        )
        o.verbose = 0
        o.set_project_dir(str(tmp_path), "p")
        return o

    curves = [
        [0.5, 0.6, 0.7],
        [0.2, 0.3, 0.9],
        [0.8, 0.85, 0.9],
        [0.1, 0.2, 0.99],
        [0.6, 0.6, 0.6],
        [0.7, 0.1, 0.1],
    ]
    straight = _run(make(), curves)
    o = make()
    first = _run(o, curves[:3])
    o.save()
    o2 = make()
    o2.reload()
    assert o2.early_stopping.reported("01") == {1: 0.2}
    second = _run(o2, curves[3:])
    assert {**first, **second} == straight


# -- a real tuner -----------------------------------------------------------------------------
class _Scripted(kt.HyperModel):
    """A tiny model whose 'val_score' per epoch is scripted by x (no learning needed)."""

    CURVES = {0: [0.5, 0.6, 0.7, 0.8, 0.9, 0.95], 1: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]}

    def build(self, hp):
        import keras

        hp.Int("x", 0, 1)
        inp = keras.Input((2,))
        m = keras.Model(inp, keras.layers.Dense(1)(inp))
        m.compile("sgd", "mse")
        return m

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        import keras

        curve = self.CURVES[hp.get("x")]

        class Score(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs["val_score"] = curve[epoch]

        x = np.zeros((4, 2), "float32")
        return model.fit(
            x, x[:, :1], epochs=len(curve), verbose=0, callbacks=[Score()] + list(callbacks or [])
        )


class _Alternate(Controller):
    def propose(self, space):
        self.i = getattr(self, "i", -1) + 1
        return {"x": self.i % 2}


def test_tuner_fit_actually_stops_early(tmp_path):
    from keras_nas.tuning.tuners import ControllerTuner

    oracle = ControllerOracle(
        objective=kt.Objective("val_score", "max"),
        max_trials=4,
        controller=_Alternate(),
        allow_duplicates=True,
        early_stopping=ASHA(min_epochs=2, eta=2),
    )
    tuner = ControllerTuner(oracle, _Scripted(), directory=str(tmp_path), project_name="p")
    tuner.search(verbose=0)
    trials = [oracle.trials[t] for t in sorted(oracle.trials)]
    assert [t.status for t in trials] == [COMPLETED, STOPPED, COMPLETED, STOPPED]
    for t in trials:
        epochs = [obs.step for obs in t.metrics.get_history(epoch_metric(oracle.objective))]
        # a completed trial reports every epoch but the last; a stopped one stops at the 2-epoch rung
        assert epochs == ([1, 2, 3, 4, 5] if t.status == COMPLETED else [1, 2])
    assert oracle.get_best_trials(1)[0].score == pytest.approx(0.95)
    assert keras_nas.ASHA is ASHA and keras_nas.MedianStopping is MedianStopping


# -- the CLI ----------------------------------------------------------------------------------
def test_cli_flags_build_the_rule_and_reject_bad_values(tmp_path, capsys):
    from keras_nas import cli
    from keras_nas.jobs import search
    from keras_nas.rundir import JobError

    cfg = search.SearchConfig(early_stopping="asha", early_stopping_epochs=2, early_stopping_eta=4)
    rule = search.make_early_stopping(cfg)
    assert isinstance(rule, ASHA) and (rule.min_epochs, rule.eta) == (2, 4)
    assert isinstance(
        search.make_early_stopping(search.SearchConfig(early_stopping="median")), MedianStopping
    )
    assert search.make_early_stopping(search.SearchConfig()) is None
    with pytest.raises(JobError, match="--early_stopping must be one of"):
        search.check_search_config(
            search.SearchConfig(early_stopping="hyperband", output_dir=str(tmp_path / "o"))
        )
    assert cli.main(["search", "--early_stopping=hyperband"]) == 2
    assert cli.main(["search", "--early_stopping_eta=1"]) == 2
    assert "early_stopping_eta=1" in capsys.readouterr().err


@pytest.mark.parametrize("cls", ["AgingEvolution", "ReinforceSearch", "RandomArchitectureSearch"])
def test_every_tuner_takes_the_option(tmp_path, cls):
    rule = MedianStopping(grace_epochs=2)
    tuner = getattr(keras_nas, cls)(
        _Scripted(),
        objective=kt.Objective("val_loss", "min"),
        max_trials=2,
        early_stopping=rule,
        directory=str(tmp_path),
        project_name=cls,
    )
    assert tuner.oracle.early_stopping is rule and rule.direction == "min"
