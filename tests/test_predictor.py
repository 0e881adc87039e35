"""PredictorController (BANANAS-style predictor-guided search) and PredictorOracle."""

import json
import math
import os
import statistics
import zlib

import numpy as np
import pytest

from keras_nas.controllers.params import Param, ParamSpace
from keras_nas.controllers.predictor import Encoding, PredictorController, spearman
from keras_nas.space import NB201Space


def toy_space(n=4, k=4):
    return ParamSpace([Param(f"p{i}", tuple(f"o{j}" for j in range(k))) for i in range(n)])


def toy_reward(values):
    """One clearly better option per decision (o3), a smaller bonus for o2; optimum: all o3."""
    return float(sum({"o3": 1.0, "o2": 0.4}.get(v, 0.0) for v in values.values()))


def nb201_space():
    return ParamSpace.from_search_space(NB201Space())


def _plain(v):
    return type(v) in (int, float, str, bool)


@pytest.mark.parametrize("predictor", ["gp", "mlp"])
def test_proposals_complete_plain_and_distinct(predictor):
    space = nb201_space()
    c = PredictorController(seed=3, predictor=predictor, num_initial=4, epochs=20)
    seen = set()
    for i in range(14):
        v = c.propose(space)
        assert set(v) == set(space.names) and all(_plain(x) for x in v.values())
        assert all(x in space[k].options for k, x in v.items())
        key = tuple(sorted(v.items()))
        assert key not in seen  # never re-proposes a finished or pending architecture
        seen.add(key)
        c.observe(v, float(len(set(v.values()))) + 0.01 * i, space)
    assert c.last_origin == "acquisition"


def test_batch_proposals_distinct_before_any_observe():
    space = nb201_space()
    c = PredictorController(seed=0, num_initial=3)
    for _ in range(5):
        v = c.propose(space)
        c.observe(v, float(sum(o == "nor_conv_3x3" for o in v.values())), space)
    batch = [c.propose(space) for _ in range(8)]  # 8 parallel workers ask, none has reported
    assert len({tuple(sorted(v.items())) for v in batch}) == 8
    assert len(c.pending) == 8
    for v in batch:
        c.observe(v, 1.0, space)
    assert not c.pending


def test_discard_is_respected():
    space = toy_space(2, 2)  # 4 architectures
    c = PredictorController(seed=1, num_initial=2)
    v = c.propose(space)
    c.discard(v, space)
    assert not c.pending
    others = [c.propose(space) for _ in range(3)]
    assert v not in others
    assert len({tuple(sorted(o.items())) for o in others}) == 3


@pytest.mark.parametrize("predictor", ["gp", "mlp"])
def test_state_roundtrip_same_future_proposals(predictor):
    space = nb201_space()
    kw = dict(predictor=predictor, num_initial=4, epochs=30, refit_all_until=3)
    a = PredictorController(seed=7, **kw)
    rewards = {}

    def reward(v):
        key = tuple(sorted(v.items()))
        return rewards.setdefault(key, float(zlib.crc32(repr(key).encode()) % 97))

    for i in range(9):
        v = a.propose(space)
        a.observe(v, None if i == 5 else reward(v), space)
    pending = a.propose(space)  # one outstanding proposal travels in the state
    state = json.loads(json.dumps(a.get_state()))
    b = PredictorController(seed=123, **kw)
    b.set_state(state)
    assert b.get_state() == a.get_state()
    for ctrl in (a, b):
        ctrl.observe(pending, reward(pending), space)
    for _ in range(6):
        va, vb = a.propose(space), b.propose(space)
        assert va == vb
        r = reward(va)
        a.observe(va, r, space)
        b.observe(vb, r, space)
    assert a.get_state() == b.get_state()


def test_failed_rewards_never_break_it():
    space = nb201_space()
    c = PredictorController(seed=2, num_initial=3)
    for i in range(12):
        v = c.propose(space)
        c.observe(v, None if i % 2 else float("nan") if i % 3 == 0 else float(i), space)
    for _ in range(3):  # only a couple of successes: still proposes valid values
        v = c.propose(space)
        assert set(v) == set(space.names)
        c.observe(v, None, space)
    s = c.summary_scalars(space)
    assert s["failed"] >= 8 and all(math.isfinite(x) or math.isnan(x) for x in s.values())
    assert all(h["reward"] is None or math.isfinite(h["reward"]) for h in c.history)


def test_all_failures_from_the_start():
    space = toy_space(3, 3)
    c = PredictorController(seed=0, num_initial=2)
    for _ in range(6):
        c.observe(c.propose(space), None, space)
    assert set(c.propose(space)) == set(space.names)


def _evals_to_optimum(ctrl, space, cap=256):
    for n in range(1, cap + 1):
        v = ctrl.propose(space)
        r = toy_reward(v)
        ctrl.observe(v, r, space)
        if r == 4.0:
            return n
    return cap + 1


def test_finds_optimum_faster_than_random():
    from keras_nas.controllers.base import RandomController

    space = toy_space(4, 4)  # 256 architectures, one optimum
    seeds = range(5)
    pred = [_evals_to_optimum(PredictorController(seed=s, num_initial=5), space) for s in seeds]
    rand = [_evals_to_optimum(RandomController(seed=s), space, cap=2000) for s in seeds]
    # random: ~256 expected; the predictor needs a few dozen. Generous margin: half the random median.
    assert statistics.median(pred) < 0.5 * statistics.median(rand), (pred, rand)
    assert statistics.median(pred) <= 60, pred


def test_summary_scalars_spearman_and_no_rng_use():
    space = toy_space(4, 4)
    c = PredictorController(seed=4, num_initial=5)
    for _ in range(25):
        v = c.propose(space)
        c.observe(v, toy_reward(v), space)
    before = c.get_state()
    s = c.summary_scalars(space)
    assert c.get_state() == before  # statistics never draw from the RNG
    assert s["predictor/spearman_train"] > 0.8
    assert "predictor/spearman_new" in s and s["predictor/fits"] >= 1


def test_encoding_onehot_and_nb201_paths():
    space = nb201_space()
    plain_enc = Encoding(space)
    assert plain_enc.dim == 30
    enc = Encoding(space, path=True)
    assert (
        enc.dim == 30 + 4 + 16 + 16 + 64
    )  # routes 0-3, 0-1-3, 0-2-3, 0-1-2-3 over 4 non-'none' ops
    all_conv = {n: "nor_conv_3x3" for n in space.names}
    assert enc(all_conv)[30:].sum() == 4
    cut = dict(all_conv, edge_0_3="none", edge_1_3="none", edge_2_3="none")
    assert enc(cut)[30:].sum() == 0  # nothing reaches the output


def test_contracted_encoding_counts_what_the_paths_compute():
    """Identity ops drop out of a path's op sequence and the route does not matter: a conv
    followed by a skip on 0-1-3 is the same feature as a conv on 0-3; cut paths set nothing."""
    space = nb201_space()
    enc = Encoding(space, contract=True)
    assert enc.dim == 30 + 1 + 3 + 9 + 27  # sequences of 0..3 ops over conv1x1, conv3x3, pool
    none = {n: "none" for n in space.names}
    via_1 = dict(none, edge_0_1="nor_conv_3x3", edge_1_3="skip_connect")
    direct = dict(none, edge_0_3="nor_conv_3x3")
    assert np.array_equal(enc(via_1)[30:], enc(direct)[30:]) and enc(direct)[30:].sum() == 1
    routes = Encoding(space, path=True)
    assert not np.array_equal(routes(via_1)[30:], routes(direct)[30:])  # BANANAS: other routes
    all_skip = {n: "skip_connect" for n in space.names}
    one_skip = dict(none, edge_1_2="skip_connect", edge_0_1="skip_connect", edge_2_3="skip_connect")
    assert enc(all_skip)[30:].sum() == 1  # four identity paths: one feature
    assert np.array_equal(enc(all_skip)[30:], enc(one_skip)[30:])
    cut = dict(all_skip, edge_0_3="none", edge_1_3="none", edge_2_3="none")
    assert enc(cut)[30:].sum() == 0  # nothing reaches the output
    # skipping equivalent cells keeps NB201's notion (active routes), not the coarser features
    assert enc.equivalence_key(via_1) != enc.equivalence_key(direct)


def test_equivalence_key_marks_functionally_identical_cells():
    space = nb201_space()
    enc = Encoding(space, path=True)
    cut = {n: "nor_conv_3x3" for n in space.names}
    cut["edge_0_1"] = "none"  # node 1 gets nothing: the ops on 1->2 and 1->3 do not matter
    other = dict(cut, edge_1_2="avg_pool_3x3", edge_1_3="skip_connect")
    assert enc.equivalence_key(cut) == enc.equivalence_key(other)
    assert enc.equivalence_key(cut) != enc.equivalence_key(dict(cut, edge_0_3="skip_connect"))
    assert Encoding(space).equivalence_key(cut) is None  # no path encoding: no known equivalence


def test_equivalent_cells_are_never_proposed_twice():
    space = nb201_space()
    enc = Encoding(space, path=True)
    rng = np.random.default_rng(0)

    def reward(v):
        return float(sum(o == "nor_conv_3x3" for o in v.values())) + 0.01 * rng.random()

    for skip in (True, False):
        c = PredictorController(seed=4, num_initial=5, skip_equivalent=skip)
        keys = []
        for _ in range(60):
            v = c.propose(space)
            keys.append(enc.equivalence_key(v))
            c.observe(v, reward(v), space)
        if skip:  # every proposal is a new function (the space has 6,466 of them)
            assert len(set(keys)) == len(keys)
    assert len(set(keys)) < len(keys)  # without skipping, equivalent variants do get proposed
    # restored mid-way, the same future (the equivalence set is rebuilt from the state)
    a = PredictorController(seed=9, num_initial=4, refit_all_until=3)
    for i in range(12):
        v = a.propose(space)
        a.observe(v, reward(v), space)
    b = PredictorController(seed=9, num_initial=4, refit_all_until=3)
    b.set_state(json.loads(json.dumps(a.get_state())))
    for _ in range(6):
        va, vb = a.propose(space), b.propose(space)
        assert va == vb
        r = float(len(set(va.values())))
        a.observe(va, r, space)
        b.observe(vb, r, space)


def test_continuous_and_numeric_params_encode():
    kt = pytest.importorskip("keras_tuner")
    hp = kt.HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Int("units", 8, 512)  # 505 options: one scaled feature
    hp.Choice("act", ["relu", "gelu"])
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    space = param_space_from_hyperparameters(hp)
    enc = Encoding(space)
    assert enc.dim == 4
    c = PredictorController(seed=0, num_initial=3)
    for _ in range(8):
        v = c.propose(space)
        assert _plain(v["lr"]) and 1e-4 <= v["lr"] <= 1e-1 and isinstance(v["units"], int)
        c.observe(v, -abs(math.log10(v["lr"]) + 2.5) + (v["act"] == "gelu"), space)


def test_spearman_helper():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2, 3], [1, 1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 2], [1, 2]))


def test_bad_arguments():
    for kw in (
        {"predictor": "forest"},
        {"acquisition": "pi"},
        {"num_initial": 0},
        {"encoding": "adj"},
    ):
        with pytest.raises(ValueError):
            PredictorController(**kw)


def test_predictor_oracle_real_keras_tuner_lifecycle(tmp_path):
    kt = pytest.importorskip("keras_tuner")
    keras = pytest.importorskip("keras")
    from keras_nas.tuning.oracle import PredictorOracle
    from keras_nas.tuning.tuners import PredictorSearch

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")

    def build(hp):
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(hp.Choice("units", [2, 4, 8]), "relu")]
        )
        if hp.Boolean("extra"):
            model.add(keras.layers.Dense(4, "relu"))
        model.add(keras.layers.Dense(1, "sigmoid"))
        model.compile(keras.optimizers.Adam(hp.Choice("lr", [1e-3, 1e-2])), "binary_crossentropy")
        return model

    tuner = PredictorSearch(
        build,
        objective="val_loss",
        max_trials=5,
        seed=1,
        num_initial=2,
        directory=str(tmp_path),
        project_name="p",
    )
    assert isinstance(tuner.oracle, PredictorOracle)
    tuner.search(x, y, epochs=1, batch_size=32, validation_split=0.25, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 5 and all(t.status == "COMPLETED" for t in trials)
    ctrl = tuner.oracle.controller
    assert len(ctrl.history) == 5 and all(h["reward"] is not None for h in ctrl.history)
    # 'min' objective: the controller maximises the negated loss
    assert ctrl.best["reward"] == pytest.approx(-min(t.score for t in trials))
    assert len({tuple(sorted(t.hyperparameters.values.items())) for t in trials}) == 5
    assert isinstance(tuner.oracle.summary_scalars(), dict)
    # resume (overwrite=False) restores the controller state exactly
    t2 = PredictorSearch(
        build,
        objective="val_loss",
        max_trials=6,
        seed=1,
        num_initial=2,
        directory=str(tmp_path),
        project_name="p",
        overwrite=False,
    )
    assert t2.oracle.controller.get_state() == ctrl.get_state()
    o = PredictorOracle(kt.Objective("score", "max"), 3, 5, num_initial=1)  # kt positional order
    assert o.max_trials == 3 and o.seed == 5 and o.controller.num_initial == 1


def test_path_encoding_on_plain_keras_tuner_nb201_space():
    """The NB201 benchmark's oracle sees a keras-tuner space without decision kinds: 'auto' still finds the paths."""
    kt = pytest.importorskip("keras_tuner")
    hp = kt.HyperParameters()
    NB201Space().register(hp)
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    space = param_space_from_hyperparameters(hp)
    assert PredictorController(seed=0)._encoding(space).dim == 70  # one-hot + contracted paths
    assert PredictorController(seed=0, encoding="path")._encoding(space).dim == 130
    assert Encoding(toy_space(), path=True).path is None  # not a cell space: one-hot only


_TABLES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "nas-bench-201"
)


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(_TABLES, "nb201_hp12.csv")),
    reason="NAS-Bench-201 tables not found in ../shared",
)
def test_nb201_simulated_search_with_files_and_reproducible(tmp_path):
    import functools

    from keras_nas.benchmarks import NASBench201
    from keras_nas.tuning.oracle import PredictorOracle

    bench = NASBench201(_TABLES)
    f = functools.partial(PredictorOracle, allow_duplicates=True)
    r = bench.simulate(
        f, "cifar10", time_budget=2500.0, seed=5, directory=str(tmp_path)
    )  # ~20 trials, files on
    assert r.num_trials >= 10 and r.test_accuracy == bench.query(r.best_index, "cifar10")
    r2 = bench.simulate(f, "cifar10", time_budget=2500.0, seed=5, write_files=False)
    assert (r2.best_index, r2.num_trials) == (r.best_index, r.num_trials)
