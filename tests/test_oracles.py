"""keras-tuner Oracle adapters, driven directly (create_trial / update_trial / end_trial)."""

import json
import math
import os
import threading

import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")

from keras_nas.controllers.base import Controller  # noqa: E402
from keras_nas.tuning import state as state_lib  # noqa: E402
from keras_nas.tuning.oracle import (  # noqa: E402
    AgingEvolutionOracle,
    ControllerOracle,
    RandomOracle,
    ReinforceOracle,
)

PLAIN = (int, float, str, bool)


def make_hp():
    hp = kt.HyperParameters()
    hp.Choice("act", ["relu", "tanh"])
    hp.Int("units", 4, 64, step=4)
    hp.Int("depth", 1, 3)
    hp.Int("width", 1, 1 << 20)  # too many values: treated as continuous
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Float("drop", 0.0, 0.5, step=0.1)
    hp.Boolean("bn")
    hp.Fixed("batch", 32)
    with hp.conditional_scope("act", ["relu"]):
        hp.Float("alpha", 0.0, 0.3)
        hp.Choice("init", ["he", "glorot"])
    return hp


def score_of(v):
    """A deterministic, architecture-dependent 'accuracy' in (0, 1)."""
    s = v["units"] / 64 + 0.1 * v["depth"] + (0.2 if v["act"] == "relu" else 0) + 0.05 * v["bn"]
    s += 0.01 * math.log10(v["lr"]) + v.get("alpha", 0.0) * 0.1
    return 0.5 + 0.4 * math.tanh(s - 1.0)


def new_oracle(cls, directory, **kw):
    kw.setdefault("objective", kt.Objective("score", "max"))
    kw.setdefault("hyperparameters", make_hp())
    o = cls(**kw)
    o.verbose = 0
    o.set_project_dir(str(directory), "proj")
    return o


def finish(o, t, score=None, status="COMPLETED"):
    if status == "COMPLETED":
        o.update_trial(
            t.trial_id, {"score": score_of(t.hyperparameters.values) if score is None else score}
        )
    t.status = status
    o.end_trial(t)


def run(o, n, *, leave_running=False):
    """Run n trials serially; returns the value dicts. ``leave_running``: the last one is not ended."""
    seq = []
    for i in range(n):
        t = o.create_trial("tuner0")
        assert t.status == "RUNNING"
        seq.append((t.trial_id, dict(t.hyperparameters.values)))
        if not (leave_running and i == n - 1):
            finish(o, t)
    return seq


def check_complete(space_hp, values):
    """Every active hp has a valid plain value, no inactive one is given."""
    hps = space_hp.copy()
    hps.values = dict(values)
    for hp in hps.space:
        if hps.is_active(hp):
            assert hp.name in values, hp.name
            assert type(values[hp.name]) in PLAIN, (hp.name, type(values[hp.name]))
        else:
            assert hp.name not in values, hp.name
    assert values["batch"] == 32
    assert isinstance(values["units"], int) and values["units"] % 4 == 0
    assert isinstance(values["width"], int)
    assert 1e-4 <= values["lr"] <= 1e-1


@pytest.mark.parametrize("cls", [AgingEvolutionOracle, RandomOracle])
def test_complete_active_plain_values_all_hp_types(tmp_path, cls):
    o = new_oracle(
        cls,
        tmp_path,
        max_trials=30,
        seed=1,
        **({"population_size": 4} if cls is AgingEvolutionOracle else {}),
    )
    seq = run(o, 12)
    for _, v in seq:
        check_complete(o.hyperparameters, v)
        json.dumps(v)
    assert len({json.dumps(v, sort_keys=True) for _, v in seq}) == len(seq)  # no duplicates
    # new entries registered by a trial's build after the first build get values from then on
    t = o.create_trial("tuner0")
    t.hyperparameters.Choice("late", [1, 2, 3])
    with t.hyperparameters.conditional_scope("act", ["tanh"]):
        t.hyperparameters.Int("late_tanh", 0, 5)
    finish(o, t)
    assert "late" in o.param_space()
    for _, v in run(o, 8):
        assert v["late"] in (1, 2, 3)
        assert ("late_tanh" in v) == (v["act"] == "tanh")
        check_complete(o.hyperparameters, v)


def test_user_fixed_hyperparameters_respected(tmp_path):
    hp = make_hp()
    hp.Fixed("lr_fixed", 0.01)
    o = new_oracle(
        AgingEvolutionOracle, tmp_path, hyperparameters=hp, max_trials=20, population_size=3, seed=2
    )
    for _, v in run(o, 10):
        assert v["lr_fixed"] == 0.01 and v["batch"] == 32


def test_population_failed_trials_and_rewards(tmp_path):
    o = new_oracle(
        AgingEvolutionOracle, tmp_path, max_trials=40, population_size=4, sample_size=2, seed=3
    )
    assert (o.population_size, o.sample_size) == (4, 2)
    for i in range(16):
        t = o.create_trial("tuner0")
        if i % 4 == 1:
            finish(o, t, status="FAILED")
        elif i % 4 == 3:
            finish(o, t, score=float("nan"))  # kt marks NaN INVALID -> FAILED (no retries)
            assert o.trials[t.trial_id].status == "FAILED"
        else:
            finish(o, t)
    c = o.controller
    assert c.num_observed == 16 and c.num_failed == 8
    assert len(o.population) == 4
    assert all(np.isfinite(m["reward"]) for m in o.population)
    ok = {o.trials[i].trial_id for i in o.trials if o.trials[i].status == "COMPLETED"}
    assert {json.dumps(m["values"], sort_keys=True) for m in o.population} <= {
        json.dumps(o.trials[i].hyperparameters.values, sort_keys=True) for i in ok
    }


def test_min_direction_and_retry_reported_once(tmp_path):
    o = new_oracle(
        AgingEvolutionOracle,
        tmp_path,
        objective=kt.Objective("loss", "min"),
        max_trials=10,
        population_size=5,
        seed=4,
        max_retries_per_trial=1,
    )
    t = o.create_trial("tuner0")
    t.status = "INVALID"
    o.end_trial(t)  # sent for retry: not reported yet
    assert o.controller.num_observed == 0 and t.trial_id in o.pending_values()
    t2 = o.create_trial("tuner0")
    assert t2.trial_id == t.trial_id
    o.update_trial(t2.trial_id, {"loss": 0.25})
    t2.status = "COMPLETED"
    o.end_trial(t2)
    assert o.controller.num_observed == 1
    assert o.population[0]["reward"] == -0.25
    o.end_trial(t2)  # a duplicate end (e.g. a re-sent gRPC call) is not counted twice
    assert o.controller.num_observed == 1


def test_exhausted_space_stops_like_keras_tuner(tmp_path):
    """Issue #10.2: with 3 configurations and allow_duplicates=False, the search ends (STOPPED)
    after the 3 distinct ones, as kt.RandomSearch does, instead of re-training repeats."""
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    o = new_oracle(RandomOracle, tmp_path, hyperparameters=hp, max_trials=15, seed=5)
    vals = []
    while True:
        t = o.create_trial("tuner0")
        if t.status != "RUNNING":
            break
        vals.append(t.hyperparameters.values["a"])
        o.update_trial(t.trial_id, {"score": 1.0})
        t.status = "COMPLETED"
        o.end_trial(t)
    assert t.status == "STOPPED"
    assert sorted(vals) == [1, 2, 3]  # every configuration once, no repeat trained
    assert len(o.trials) == 3
    o2 = new_oracle(
        RandomOracle,
        tmp_path / "b",
        hyperparameters=hp,
        max_trials=30,
        seed=5,
        allow_duplicates=True,
    )
    seen = []
    for _ in range(12):
        t = o2.create_trial("tuner0")
        seen.append(t.hyperparameters.values["a"])
        finish(o2, t, score=1.0)
    assert len(seen) > len(set(seen))


def test_mnasnet_reward_and_pareto_front(tmp_path):
    o = new_oracle(
        AgingEvolutionOracle,
        tmp_path,
        objective=kt.Objective("acc", "max"),
        max_trials=20,
        population_size=10,
        seed=6,
        cost_metric="params",
        cost_target=1000.0,
    )
    points = [
        (0.5, 500.0),
        (0.6, 2000.0),
        (0.55, 800.0),
        (0.4, 400.0),
        (0.5, 900.0),
        (0.7, 5000.0),
        (0.45, 600.0),
    ]
    for acc, cost in points:
        t = o.create_trial("tuner0")
        o.update_trial(t.trial_id, {"acc": acc, "params": cost})
        t.status = "COMPLETED"
        o.end_trial(t)
    rewards = [m["reward"] for m in o.population]
    assert rewards == pytest.approx([a * (c / 1000.0) ** -0.07 for a, c in points])
    front = [(q["score"], q["cost"]) for q in o.pareto_front()]
    assert front == [(0.4, 400.0), (0.5, 500.0), (0.55, 800.0), (0.6, 2000.0), (0.7, 5000.0)]
    # hard constraint (alpha, beta) = (0, -1): no penalty under the target, 1/ratio above
    o2 = new_oracle(
        AgingEvolutionOracle,
        tmp_path / "b",
        objective=kt.Objective("acc", "max"),
        max_trials=5,
        cost_fn=lambda trial: 2000.0,
        cost_target=1000.0,
        cost_weight=(0.0, -1.0),
    )
    finish_with = o2.create_trial("tuner0")
    o2.update_trial(finish_with.trial_id, {"acc": 0.8})
    finish_with.status = "COMPLETED"
    o2.end_trial(finish_with)
    assert o2.population[0]["reward"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="cost_target needs a cost"):
        AgingEvolutionOracle(objective="acc", cost_target=5.0)


def test_missing_cost_metric_is_a_clear_error_and_releases_lock(tmp_path):
    o = new_oracle(
        AgingEvolutionOracle,
        tmp_path,
        objective=kt.Objective("acc", "max"),
        max_trials=5,
        cost_metric="flops",
    )
    t = o.create_trial("tuner0")
    o.update_trial(t.trial_id, {"acc": 0.5})
    t.status = "COMPLETED"
    with pytest.raises(ValueError, match="did not report the cost metric 'flops'"):
        o.end_trial(t)
    _assert_not_locked(o)


class FlakyController(Controller):
    """Raises once in propose and once in observe."""

    def __init__(self, seed=None):
        super().__init__(seed)
        self.fail_propose = True
        self.fail_observe = True

    def propose(self, space):
        if self.fail_propose:
            self.fail_propose = False
            raise RuntimeError("controller bug (propose)")
        return self.random_values(space)

    def observe(self, values, reward, space):
        if self.fail_observe:
            self.fail_observe = False
            raise RuntimeError("controller bug (observe)")


def _assert_not_locked(o, timeout=10.0):
    """A call from another thread must get the lock (a held lock would hang it)."""
    box = {}

    def call():
        box["trial"] = o.create_trial("other_tuner")

    th = threading.Thread(target=call, daemon=True)
    th.start()
    th.join(timeout)
    assert not th.is_alive(), "oracle lock still held after an exception"
    return box["trial"]


def test_lock_released_after_controller_exceptions(tmp_path):
    o = new_oracle(ControllerOracle, tmp_path, controller=FlakyController(seed=1), max_trials=10)
    with pytest.raises(RuntimeError, match="propose"):
        o.create_trial("tuner0")
    t = _assert_not_locked(o)
    assert t.status == "RUNNING"
    o.update_trial(t.trial_id, {"score": 0.5})
    t.status = "COMPLETED"
    with pytest.raises(RuntimeError, match="observe"):
        o.end_trial(t)
    assert (
        o.trials[t.trial_id].status == "COMPLETED"
    )  # keras-tuner's bookkeeping was done and saved
    assert _assert_not_locked(o).status == "RUNNING"


def _drive_resume(tmp_path, cls, n=14, k=6, **kw):
    """Sequences of values: uninterrupted vs. interrupted after k trials (k-th still running) and resumed."""
    a = new_oracle(cls, tmp_path / "a", max_trials=n, seed=11, **kw)
    full = run(a, n)
    b = new_oracle(cls, tmp_path / "b", max_trials=n, seed=11, **kw)
    first = run(b, k, leave_running=True)
    del b  # "crash": only the files remain
    c = new_oracle(
        cls, tmp_path / "b", max_trials=n, seed=999, **kw
    )  # seed is overridden by the saved state
    c.reload()
    resumed = []
    while True:
        t = c.create_trial("tuner0")
        if t.status != "RUNNING":
            break
        resumed.append((t.trial_id, dict(t.hyperparameters.values)))
        finish(c, t)
    # the interrupted trial is retried with the same values, then the search continues identically
    assert resumed[0] == first[-1]
    assert first + resumed[1:] == full
    return a, c


def test_resume_equivalence_evolution(tmp_path):
    a, c = _drive_resume(tmp_path, AgingEvolutionOracle, population_size=4, sample_size=2)
    assert a.controller.get_state() == c.controller.get_state()
    files = os.listdir(tmp_path / "b" / "proj")
    assert "oracle.json" in files and not [f for f in files if f.endswith(".tmp")]


class ArrayController(Controller):
    """A controller with numeric state outside JSON: proposals depend on its weights."""

    def __init__(self, seed=None):
        super().__init__(seed)
        self.w = np.zeros(4)

    def propose(self, space):
        # the weights change the proposal, so a lost/mismatched npz changes the sequence
        self.rng.random()
        vals = self.random_values(space)
        vals["depth"] = 1 + int(abs(self.w.sum() * 7)) % 3
        return vals

    def observe(self, values, reward, space):
        if reward is not None:
            self.w = self.w + reward * np.arange(4)

    def get_arrays(self):
        return {"w": self.w}

    def set_arrays(self, arrays):
        self.w = np.array(arrays["w"])


class ArrayOracle(ControllerOracle):
    def make_controller(self):
        return ArrayController(seed=self.seed)


def test_arrays_npz_resume_and_mismatch(tmp_path):
    a, c = _drive_resume(tmp_path, ArrayOracle)
    np.testing.assert_allclose(a.controller.w, c.controller.w)
    proj = tmp_path / "b" / "proj"
    assert (proj / state_lib.ARRAYS_FNAME).exists()
    state = json.loads((proj / "oracle.json").read_text())
    with np.load(proj / state_lib.ARRAYS_FNAME) as z:
        assert int(z[state_lib.STEP_KEY]) == state["keras_nas"]["step"]

    # an interrupted save (npz replaced, json not yet): the previous npz is used
    json_before = (proj / "oracle.json").read_bytes()
    w_before = c.controller.w.copy()
    c.controller.w = c.controller.w + 100.0
    c.save()
    (proj / "oracle.json").write_bytes(json_before)
    d = new_oracle(ArrayOracle, tmp_path / "b", max_trials=14)
    d.reload()
    np.testing.assert_allclose(d.controller.w, w_before)

    # a pair that does not match at all: a clear error naming the files and the fix
    os.remove(proj / state_lib.ARRAYS_PREV_FNAME)
    e = new_oracle(ArrayOracle, tmp_path / "b", max_trials=14)
    with pytest.raises(RuntimeError, match=r"oracle_arrays\.npz.*overwrite=True"):
        e.reload()


def test_controller_class_mismatch_on_reload(tmp_path):
    o = new_oracle(AgingEvolutionOracle, tmp_path, max_trials=5)
    run(o, 2)
    r = new_oracle(RandomOracle, tmp_path, max_trials=5)
    with pytest.raises(RuntimeError, match="AgingEvolution controller"):
        r.reload()


def test_kinds_from_hypermodel(tmp_path):
    """Decision kinds are an oracle argument (no process-wide registry): the documented way
    for a plain keras_tuner.Tuner is kinds=hypermodel.decision_kinds."""
    from keras_nas.tuning.hypermodels import NASNetHyperModel

    hm = NASNetHyperModel((8, 8, 3), 3, num_blocks=2)
    hp = kt.HyperParameters()
    hm.register(hp)
    plain = new_oracle(AgingEvolutionOracle, tmp_path / "plain", hyperparameters=hp, max_trials=5)
    assert {p.kind for p in plain.param_space()} == {"generic"}  # nothing leaks in from elsewhere
    o = new_oracle(
        AgingEvolutionOracle, tmp_path, hyperparameters=hp, max_trials=5, kinds=hm.decision_kinds
    )
    kinds = {p.name: p.kind for p in o.param_space()}
    assert kinds["normal/b0_in0"] == "input" and kinds["reduce/b1_op1"] == "op"


def test_reinforce_oracle_resume(tmp_path):
    pytest.importorskip("keras_nas.controllers.reinforce")
    a, c = _drive_resume(tmp_path, ReinforceOracle, n=8, k=5, batch_size=2, units=8)
    assert a.controller.num_updates == c.controller.num_updates > 0
    for k, v in a.controller.get_arrays().items():
        np.testing.assert_allclose(v, c.controller.get_arrays()[k], rtol=1e-6, atol=1e-7)


def test_reinforce_npz_written_only_when_the_weights_change(tmp_path):
    """keras-tuner saves the oracle two or three times per trial; REINFORCE's npz (weights and
    Adam slots, ~1 MB by default) is rewritten only when its snapshot changes (every
    snapshot_every updates; the updates since are journalled in oracle.json). Resume stays exact,
    also in the middle of a journal."""
    pytest.importorskip("keras_nas.controllers.reinforce")
    kw = dict(batch_size=1, units=8, snapshot_every=4)
    o = new_oracle(ReinforceOracle, tmp_path / "w", max_trials=10, seed=3, **kw)
    written = []
    write = o.store.write
    o.store.write = lambda path, data: (written.append(os.path.basename(path)), write(path, data))
    run(o, 10)
    assert o.controller.num_updates == 10
    # weights built at the first proposal, then one write per 4 updates
    assert written.count(state_lib.ARRAYS_FNAME) == 1 + 2, written
    assert written.count("oracle.json") >= 2 * 10
    proj = tmp_path / "w" / "proj"
    ks = json.loads((proj / "oracle.json").read_text())["keras_nas"]
    assert len(ks["controller"]["journal"]) == 2
    with np.load(proj / state_lib.ARRAYS_FNAME) as z:
        assert int(z[state_lib.STEP_KEY]) == ks["arrays_step"] < ks["step"]
    # interrupted with one journalled update since the snapshot, resumed: the same future
    a, c = _drive_resume(tmp_path, ReinforceOracle, n=11, k=6, **kw)
    assert a.controller.num_updates == c.controller.num_updates == 11
    for k, v in a.controller.weights.items():
        np.testing.assert_array_equal(v, c.controller.weights[k])
        np.testing.assert_array_equal(a.controller.slots_v[k], c.controller.slots_v[k])


@pytest.mark.parametrize("cls", [AgingEvolutionOracle, RandomOracle, ReinforceOracle])
def test_stepped_floats_are_written_without_float_noise(tmp_path, cls):
    """keras-tuner makes stepped Floats as min + i * step: 0.30000000000000004 reached trial.json."""
    hp = kt.HyperParameters()
    hp.Float("drop", 0.0, 0.9, step=0.1)
    hp.Float("wd", 0.1, 0.45, step=0.05)
    hp.Float("lr", 1e-4, 1e-1, step=10, sampling="log")
    extra = {"population_size": 4} if cls is AgingEvolutionOracle else {}
    o = new_oracle(cls, tmp_path, hyperparameters=hp, max_trials=40, seed=0, **extra)
    for i in range(24):
        finish(o, o.create_trial("tuner0"), score=(i * 7 % 11) / 11)
    seen = []
    for name in sorted(os.listdir(tmp_path / "proj")):
        if name.startswith("trial_"):
            with open(tmp_path / "proj" / name / "trial.json") as f:
                seen.append(json.load(f)["hyperparameters"]["values"])
    assert len(seen) == 24
    drops = {v["drop"] for v in seen}
    assert len(drops) >= 5  # enough values drawn for the noisy ones (0.3, 0.6, 0.7) to show up
    for v in seen:
        assert repr(v["drop"]) in {f"{k / 10}" for k in range(10)}, v
        assert repr(v["wd"]) in {f"{round(0.1 + k * 0.05, 2)}" for k in range(8)}, v
        assert repr(v["lr"]) in {"0.0001", "0.001", "0.01", "0.1"}, v
