"""The search as a user lives it (issue 14): opt-in augmentation, defaults from the data, warnings
near chance, the evolution budget hint, REINFORCE on continuous Floats, a wall-clock budget, one
trial numbering, commands that run as printed, and the CLI's objective / cost / controller flags."""

import json
import os
import shlex
import subprocess
import sys
import types

import numpy as np
import pytest

from keras_nas import cli, reporting
from keras_nas.jobs import advice, search, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- 1. augmentation: opt-in, per name -------------------------------------------------------------
def test_augmentation_is_opt_in_and_parsed_strictly():
    from keras_nas.data import DataError, parse_augment

    assert train.TrainConfig().augment == "none" and parse_augment("none") == ()
    assert parse_augment("shift, flip") == ("shift", "flip") and parse_augment(["flip"]) == (
        "flip",
    )
    for bad in ("rotate", "shift,rotate", True):
        with pytest.raises(DataError, match="augment"):
            parse_augment(bad)


def test_bad_augment_flag_fails_naming_it(capsys):
    assert cli.main(["train", "--augment=rotate"]) == 2
    err = capsys.readouterr().err
    assert "--augment=rotate" in err and "shift, flip" in err


def _asymmetric_dataset(name):
    from keras_nas.data import Dataset

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(16, 8, 8, 1)).astype("uint8")
    y = np.arange(16) % 2
    return Dataset(name, x, y, x[:2], y[:2], x[:2], y[:2], num_classes=2)


def _batch(ds, augment):
    x, _ = next(iter(ds.pipeline("train", 16, augment=augment, seed=1)))
    return np.asarray(x)[..., 0]


def test_shift_never_flips_and_flip_only_flips_whatever_the_dataset_name():
    ds = _asymmetric_dataset("cifar10")  # once flipped for every name but digits/mnist
    orig = ds.x_train[..., 0].astype("float32") / 255.0
    assert np.array_equal(_batch(ds, "none"), orig)
    shifted = _batch(ds, "shift")
    for o, s in zip(
        orig, shifted
    ):  # each image is a translation (zero padded) of the original, never a mirror
        padded = np.pad(o, 1)
        assert any(
            np.allclose(padded[dy : dy + 8, dx : dx + 8], s) for dy in range(3) for dx in range(3)
        )
    flipped = _batch(ds, "flip")
    same = [np.allclose(o, f) for o, f in zip(orig, flipped)]
    mirrored = [np.allclose(o[:, ::-1], f) for o, f in zip(orig, flipped)]
    assert all(a or b for a, b in zip(same, mirrored)) and any(mirrored)


# -- 2. defaults from the data, chance warnings ----------------------------------------------------
def test_auto_epochs_reach_enough_steps():
    assert search.SearchConfig().epochs is None  # chosen from the data unless given
    assert advice.auto_epochs(300, 64) == 20  # 5 steps per epoch
    assert advice.auto_epochs(1078, 64) == 6
    assert advice.auto_epochs(30_000, 64) == 1
    assert advice.auto_epochs(10, 64) == advice.MAX_AUTO_EPOCHS


def test_chance_level_is_the_class_prior_with_binomial_noise():
    prior, se = advice.chance_level([0] * 30 + [1] * 10 + [2] * 10)
    assert prior == pytest.approx(0.6) and se == pytest.approx((0.6 * 0.4 / 50) ** 0.5)
    assert advice.near_chance(0.65, prior, se) and not advice.near_chance(0.9, prior, se)
    msg = advice.chance_warning(0.65, prior, se, 50, 1)
    assert "within noise of chance" in msg and "--epochs (this run: 1)" in msg


class _Trial:
    def __init__(self, tid, status, score):
        self.trial_id, self.status, self.score = tid, status, score
        self.hyperparameters = types.SimpleNamespace(values={"x": int(tid)})
        self.message = None


def _oracle(statuses, scores=None, remaining=None):
    scores = scores or [0.5] * len(statuses)
    trials = {
        f"{i:02d}": _Trial(f"{i:02d}", st, sc) for i, (st, sc) in enumerate(zip(statuses, scores))
    }
    budget = types.SimpleNamespace(remaining=lambda: remaining) if remaining is not None else None
    return types.SimpleNamespace(trials=trials, time_budget=budget)


def _progress_line(tmp_path, oracle, session_seconds=0.0, **kw):
    lines = []
    rep = reporting.SearchReporter(
        str(tmp_path),
        lambda v: f"arch{v['x']}",
        max_trials=10,
        tensorboard=False,
        log=lines.append,
        **kw,
    )
    rep._session_start -= session_seconds  # as if this session had run that long
    last = list(oracle.trials.values())[-1]
    rep.trial_begin(last.trial_id)
    rep.trial_end(last, oracle)
    return lines[-1]


def test_progress_line_flags_a_best_score_within_noise_of_chance(tmp_path):
    o = _oracle(["COMPLETED", "COMPLETED"], [0.12, 0.14])
    line = _progress_line(tmp_path, o, chance=(0.11, 0.16), chance_hint="raise --epochs (now 1)")
    assert "within noise of chance (0.110): raise --epochs (now 1)" in line
    assert "within noise" not in _progress_line(tmp_path / "b", o, chance=(0.11, 0.13))


# -- 3. evolution's budget --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "max_trials, p, s",
    [
        (10, 5, 2),
        (20, 10, 5),
        (30, 15, 7),
        (50, 15, 7),
        (100, 20, 10),
        (200, 40, 10),
        (1000, 100, 25),
    ],
)
def test_small_budget_defaults_are_the_measured_ones(max_trials, p, s):
    """benchmarks/README.md (small_budget_evolution): P=2 lost to random search at every budget."""
    import keras_tuner as kt

    from keras_nas.tuning.oracle import AgingEvolutionOracle
    from keras_nas.tuning.state import NoFiles

    o = AgingEvolutionOracle(
        objective=kt.Objective("score", "max"), max_trials=max_trials, store=NoFiles()
    )
    assert (o.population_size, o.sample_size) == (p, s)
    assert (o.controller.population_size, o.controller.sample_size) == (p, s)


def test_evolution_hint_below_the_measured_minimum():
    assert "random search" in advice.evolution_hint(advice.EVOLUTION_MIN_TRIALS - 1, 3)
    assert advice.evolution_hint(advice.EVOLUTION_MIN_TRIALS, 3) is None


# -- 4. REINFORCE samples continuous Floats ---------------------------------------------------------
def test_reinforce_samples_continuous_floats_inside_its_intervals():
    import keras_tuner as kt

    from keras_nas.controllers.reinforce import ReinforceController
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    hp = kt.HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Choice("units", [8, 16])
    space = param_space_from_hyperparameters(hp)
    c = ReinforceController(seed=0, batch_size=2, policy="factorized")
    values = [c.propose(space) for _ in range(40)]
    lrs = [v["lr"] for v in values]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    assert len(set(lrs)) == len(lrs)  # not snapped to a 10-point grid
    p = space.params[0]
    for v in values[:6]:  # the policy trains on the interval each value was drawn from
        (k, a), _ = c._trajectory(space, v)
        assert a == int(p.to_prob(v["lr"]) * c.bins)
        c.observe(v, 0.5 + 0.1 * (a > 4), space)
    assert c.num_observed == 6


# -- 5. wall-clock budget ----------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_oracle_starts_no_trial_after_the_deadline():
    import keras_tuner as kt

    from keras_nas.tuning.oracle import RandomOracle
    from keras_nas.tuning.state import NoFiles

    hp = kt.HyperParameters()
    hp.Int("x", 0, 1000)
    o = RandomOracle(
        objective=kt.Objective("score", "max"),
        max_trials=50,
        hyperparameters=hp,
        seed=0,
        max_time=100,
        store=NoFiles(),
    )
    clock = o.time_budget.clock = FakeClock()
    import tempfile

    from keras_nas.tuning import internals

    internals.set_project_dir(o, tempfile.mkdtemp(), "p")
    running = kt.engine.trial.TrialStatus.RUNNING
    t = o.create_trial("w")
    assert t.status == running
    clock.t += 99.0
    o.update_trial(t.trial_id, {"score": 1.0})
    t.status = "COMPLETED"
    o.end_trial(t)
    t2 = o.create_trial("w")
    assert t2.status == running  # 99 s < 100 s
    clock.t += 2.0
    assert o.create_trial("w").status == running  # the running trial is handed back to its worker
    o.update_trial(t2.trial_id, {"score": 1.0})
    t2.status = "COMPLETED"
    o.end_trial(t2)
    assert o.create_trial("w").status == kt.engine.trial.TrialStatus.STOPPED
    assert len(o.trials) == 2 and o.time_budget.remaining() == 0.0


def test_budget_rejects_nonsense():
    from keras_nas.tuning.budget import TimeBudget

    for bad in (0, -1, float("inf"), "1h", True):
        with pytest.raises(ValueError, match="max_time"):
            TimeBudget(bad)
    assert advice.parse_duration("1h30m") == 5400 and advice.parse_duration("90s") == 90
    assert advice.parse_duration("0") is None and advice.parse_duration(None) is None
    with pytest.raises(ValueError, match="--max_time"):
        advice.parse_duration("soon")


def test_tuner_stops_at_the_budget_and_a_resumed_run_gets_a_fresh_one(tmp_path):
    import keras

    import keras_nas

    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def build(hp):
        m = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(hp.Int("units", 1, 500)),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    def run():
        tuner = keras_nas.RandomArchitectureSearch(
            build,
            objective="val_accuracy",
            max_trials=20,
            seed=1,
            max_time=100,
            directory=str(tmp_path),
            project_name="p",
        )
        clock = tuner.oracle.time_budget.clock = FakeClock()
        tick = keras.callbacks.LambdaCallback(
            on_train_end=lambda logs: setattr(clock, "t", clock.t + 40.0)
        )
        tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0, callbacks=[tick])
        return tuner

    # trials start at 0, 40, 80 s; at 120 s the budget (100 s) is spent: 3 trials, all finished
    t = run()
    assert len(t.oracle.trials) == 3 and reporting.trial_counts(t.oracle)["completed"] == 3
    t = run()  # resumed: this invocation's own 100 s
    assert len(t.oracle.trials) == 6 and reporting.trial_counts(t.oracle)["completed"] == 6


def test_eta_uses_the_time_budget_when_it_ends_first(tmp_path, monkeypatch):
    monkeypatch.setattr(
        reporting.time, "time", lambda: 1e9
    )  # a frozen clock: the estimate is exact
    # one trial took 100 s, 9 to go: ~15 min by trials, but the budget ends in 30 s
    line = _progress_line(tmp_path, _oracle(["COMPLETED"], remaining=30.0), session_seconds=100)
    assert "~0:30 left (time budget)" in line
    line = _progress_line(
        tmp_path / "b", _oracle(["COMPLETED"], remaining=1e9), session_seconds=100
    )
    assert "~15:00 left" in line and "(time budget)" not in line


# -- 11. one trial numbering; honest resume counts -------------------------------------------------
def test_trial_counts_separate_finished_from_interrupted():
    o = _oracle(["COMPLETED", "FAILED", "RUNNING"])
    assert reporting.trial_counts(o) == {"total": 3, "finished": 2, "completed": 1, "unfinished": 1}


def test_progress_and_results_use_the_one_based_trial_number(tmp_path):
    o = _oracle(["COMPLETED", "COMPLETED"], [0.9, 0.5])
    line = _progress_line(tmp_path, o)
    assert line.startswith("[trial 2/10]") and "best 0.9000 (trial 1)" in line
    rows = json.loads((tmp_path / reporting.RESULTS_JSON).read_text())["trials"]
    assert [(r["trial"], r["trial_id"]) for r in rows] == [(1, "00"), (2, "01")]


def test_best_follows_the_objective_direction(tmp_path):
    rep = reporting.SearchReporter(
        str(tmp_path), str, max_trials=2, tensorboard=False, direction="min"
    )
    assert rep.best([{"score": 0.3, "trial": 1}, {"score": 0.1, "trial": 2}])["trial"] == 2


# -- 12. commands that run as printed ----------------------------------------------------------------
def test_printed_command_runs(tmp_path, monkeypatch):
    cmd = advice.command()
    p = subprocess.run(
        shlex.split(cmd) + ["show", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0 and "usage: keras-nas show" in p.stdout, (cmd, p.stderr[-500:])
    # not on PATH, no script beside the interpreter: the module form with this interpreter
    monkeypatch.setattr(advice.shutil, "which", lambda name: None)
    monkeypatch.setattr(advice.sys, "executable", str(tmp_path / "bin" / "python"))
    assert advice.command() == f"{tmp_path / 'bin' / 'python'} -m keras_nas.cli"
    # a virtual environment's script beside the interpreter (after `make demo`): that path
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "keras-nas"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert advice.command() == str(script)
    monkeypatch.chdir(tmp_path)
    assert advice.command() == os.path.join(
        "bin", "keras-nas"
    )  # relative, still a path (has a slash)


# -- 13. objective, cost and controller flags ----------------------------------------------------------
@pytest.mark.parametrize(
    "argv, fragment",
    [
        (
            ["search", "--objective=val_f1"],
            "flag --objective=val_f1: must be one of val_accuracy, val_loss",
        ),
        (["search", "--objective=val_loss:down"], "flag --objective=val_loss:down"),
        (["search", "--cost=energy"], "flag --cost=energy"),
        (["search", "--cost_weight=0.5"], "flag --cost_weight=0.5: must be a number in [-10, 0]"),
        (["search", "--cost_target=-3"], "flag --cost_target=-3"),
        (
            ["search", "--reinforce_learning_rate=2"],
            "flag --reinforce_learning_rate=2.0: must be a number in (0, 1]",
        ),
        (["search", "--reinforce_batch_size=0"], "flag --reinforce_batch_size=0"),
        (["search", "--max_time=soon"], "flag --max_time=soon: must be a duration"),
    ],
)
def test_new_search_flags_are_bounded_at_parse_time(argv, fragment, capsys):
    assert cli.main(argv) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["search", "--cost_target=1000"], "--cost_target needs --cost=params, flops or latency"),
        (
            ["search", "--reinforce_batch_size=4"],
            "--reinforce_batch_size applies to --controller=reinforce only",
        ),
    ],
)
def test_inconsistent_search_flags_fail_before_tensorflow(argv, fragment, capsys, tmp_path):
    code = (
        "import sys; from keras_nas import cli; rc = cli.main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules; sys.exit(rc)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, *argv, f"--output_dir={tmp_path / 'o'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1 and fragment in p.stderr, p.stderr[-800:]


def test_objective_parsing():
    assert search.parse_objective("val_loss") == ("val_loss", "min")
    assert search.parse_objective("val_accuracy") == ("val_accuracy", "max")
    assert search.parse_objective("loss:max") == ("loss", "max")


def test_flags_reach_the_tuner(tmp_path):
    cfg = search.SearchConfig(
        space="macro",
        controller="reinforce",
        macro_layers=2,
        filters=4,
        max_trials=3,
        objective="val_loss",
        cost="flops",
        cost_target=5e4,
        reinforce_learning_rate=0.02,
        reinforce_batch_size=3,
        max_time="2m",
        output_dir=str(tmp_path),
        tensorboard=False,
    )
    search.check_search_config(cfg)
    hm = search.make_hypermodel(cfg, (8, 8, 1), 3)
    rep = reporting.SearchReporter(str(tmp_path), str, max_trials=3, tensorboard=False)
    tuner = search.make_tuner(cfg, hm, rep, None)
    o = tuner.oracle
    assert (o.objective.name, o.objective.direction) == ("val_loss", "min")
    assert o.cost_metric == "flops" and o.cost_target == 5e4 and o.time_budget.max_time == 120.0
    assert o.controller.learning_rate == 0.02 and o.controller.batch_size == 3
    model = hm.build(o.get_space())
    assert search.measure_cost(model, "flops") > 1000 and search.measure_cost(model, "latency") > 0


def test_tiny_search_warns_near_chance_and_records_costs(tmp_path):
    """One real (tiny) search: 1 epoch on 60 images scores near chance, so the summary warns; the
    flops cost is reported per trial; the summary names the best trial by its number."""
    out = tmp_path / "run"
    cfg = search.SearchConfig(
        space="macro",
        controller="random",
        data="digits",
        subset=60,
        image_size=8,
        epochs=1,
        macro_layers=2,
        filters=4,
        max_trials=2,
        batch_size=32,
        learning_rate=1e-5,
        cost="flops",
        output_dir=str(out),
        tensorboard=False,
        run_eagerly=True,
        seed=1,
    )
    lines = []
    s = search.run_search(cfg, log=lines.append)
    assert any("within noise of chance" in w for w in s["warnings"])
    text = search.search_summary_text(s)
    assert f"best: trial {s['best']['trial']}," in text and "within noise of chance" in text
    rows = json.loads((out / "results.json").read_text())["trials"]
    assert s["best"]["trial"] in [r["trial"] for r in rows]
    assert s["pareto_front"] and all(m["cost"] > 0 for m in s["pareto_front"])
    trial_json = out / "tuner" / f"trial_{s['best']['trial_id']}" / "trial.json"
    assert (
        json.loads(trial_json.read_text())["metrics"]["metrics"]["flops"]["observations"][0][
            "value"
        ][0]
        > 0
    )
