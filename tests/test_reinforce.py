"""ReinforceController: learning, exact state round-trip, conditional/growing spaces, failures."""

import io
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
kt = pytest.importorskip("keras_tuner")

from keras_nas.controllers.params import Param, ParamSpace  # noqa: E402
from keras_nas.controllers.reinforce import ReinforceController  # noqa: E402
from keras_nas.space.base import KIND_OP, Decision, SearchSpace  # noqa: E402
from keras_nas.space.nb201 import NB201Space  # noqa: E402


class _Toy(SearchSpace):
    def __init__(self):
        super().__init__([Decision("a", ("x", "y", "z", "w"), KIND_OP), Decision("b", (1, 2, 3))])


def _reward(v):
    return 1.0 if v["a"] == "z" else 0.0


def _roundtrip(ctrl, cls_kwargs):
    """State through JSON, arrays through an .npz file, into a fresh controller."""
    state = json.loads(json.dumps(ctrl.get_state()))
    buf = io.BytesIO()
    np.savez(buf, **ctrl.get_arrays())
    buf.seek(0)
    arrays = dict(np.load(buf))
    fresh = ReinforceController(**cls_kwargs)
    fresh.set_state(state)
    fresh.set_arrays(arrays)
    return fresh


@pytest.mark.parametrize("policy,lr", [("lstm", 0.02), ("factorized", 0.1)])
def test_policy_concentrates_on_rewarded_option(policy, lr):
    space = ParamSpace.from_search_space(_Toy())
    # unbounded logits (the default tanh_constant=1.1 caps an op decision at p = 0.45)
    c = ReinforceController(
        seed=3, batch_size=5, learning_rate=lr, policy=policy, units=32, tanh_constant=None
    )
    p0 = c.probabilities(space, {"a": "z", "b": 1})["a"][2]
    for _ in range(150):
        v = c.propose(space)
        c.observe(v, _reward(v), space)
    p = c.probabilities(space, {"a": "z", "b": 1})["a"][2]
    assert c.num_updates == 30
    assert p0 < 0.4 and p > 0.8, (p0, p)


def test_tanh_constant_bounds_the_policy():
    space = ParamSpace.from_search_space(_Toy())
    c = ReinforceController(seed=3, batch_size=5, learning_rate=0.05, tanh_constant=1.1, units=16)
    for _ in range(100):
        v = c.propose(space)
        c.observe(v, _reward(v), space)
    p = c.probabilities(space, {"a": "z", "b": 1})
    # op decision: logits within +-1.1/2.5, so max prob <= e^.88 / (e^.88 + 3 e^-.88)
    bound = np.exp(0.44) / (np.exp(0.44) + 3 * np.exp(-0.44))
    assert p["a"].max() <= bound + 1e-6
    assert p["a"][2] == p["a"].max()


def test_state_roundtrip_exact():
    space = ParamSpace.from_search_space(NB201Space())
    kw = dict(seed=11, batch_size=4, units=24, learning_rate=0.01)
    a = ReinforceController(**kw)
    rew = lambda v, i: float(v["edge_0_1"] == "nor_conv_3x3") + 0.01 * i  # noqa: E731
    for i in range(10):  # 2 updates + 2 pending trials
        v = a.propose(space)
        a.observe(v, rew(v, i), space)
    assert len(a.pending) == 2 and a.num_updates == 2
    b = _roundtrip(a, dict(units=24, batch_size=4, learning_rate=0.01))
    for i in range(10, 22):
        va, vb = a.propose(space), b.propose(space)
        assert va == vb
        a.observe(va, rew(va, i), space)
        b.observe(vb, rew(vb, i), space)
    assert a.num_updates == b.num_updates == 5
    for k, w in a.get_arrays().items():
        np.testing.assert_array_equal(w, b.get_arrays()[k], err_msg=k)
    assert json.dumps(a.get_state()) == json.dumps(b.get_state())


def test_roundtrip_before_first_proposal_and_seeding():
    space = ParamSpace.from_search_space(_Toy())
    a = ReinforceController(seed=5)
    b = _roundtrip(a, {})
    assert [a.propose(space) for _ in range(5)] == [b.propose(space) for _ in range(5)]
    d1, d2 = ReinforceController(seed=9), ReinforceController(seed=9)
    assert [d1.propose(space) for _ in range(6)] == [d2.propose(space) for _ in range(6)]


def _conditional_hps():
    hp = kt.HyperParameters()
    depth = hp.Choice("depth", [1, 2])
    with hp.conditional_scope("depth", [2]):
        hp.Choice("second_op", ["conv", "pool"])
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Int("units", 8, 64, step=8)
    hp.Boolean("bn")
    del depth
    return hp


def test_conditional_params_and_keras_tuner_space():
    hp = _conditional_hps()
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    space = param_space_from_hyperparameters(hp)
    c = ReinforceController(seed=0, batch_size=3, units=16, bins=5)
    seen_depth = set()
    for i in range(30):
        v = c.propose(space)
        seen_depth.add(v["depth"])
        assert ("second_op" in v) == (v["depth"] == 2)
        assert set(v) == (
            {"depth", "lr", "units", "bn"} | ({"second_op"} if v["depth"] == 2 else set())
        )
        assert (
            1e-4 <= v["lr"] <= 1e-1 and v["units"] in range(8, 65, 8) and isinstance(v["bn"], bool)
        )
        assert all(type(x) in (int, float, str, bool) for x in v.values())
        c.observe(v, float(v["units"]) / 64, space)
    assert seen_depth == {1, 2}
    assert len(c.options_of(space["lr"])) == 5
    # the reported values may be arbitrary valid ones (continuous -> nearest bin)
    c.observe({"depth": 1, "lr": 0.0123, "units": 16, "bn": True}, 0.5, space)
    # a keras-tuner round trip of a proposal keeps every value
    hp2 = _conditional_hps()
    hp2.values.update(v)
    assert {k: hp2.values[k] for k in v} == v


def test_growing_space_creates_heads_lazily():
    small = ParamSpace([Param("a", (1, 2, 3)), Param("b", ("p", "q"))])
    big = ParamSpace(
        [Param("a", (1, 2, 3)), Param("b", ("p", "q")), Param("c", (0.5, 1.5, 2.5, 3.5, 4.5))]
    )
    c = ReinforceController(seed=1, batch_size=2, units=16)
    for _ in range(4):
        v = c.propose(small)
        assert set(v) == {"a", "b"}
        c.observe(v, float(v["a"]), small)
    assert [x[0] for x in c.vocab] == ["a", "b"]
    w_before = c.weights["p0/W"].copy()
    for _ in range(4):
        v = c.propose(big)
        assert set(v) == {"a", "b", "c"}
        c.observe(v, float(v["a"]) + v["c"], big)
    assert [x[0] for x in c.vocab] == ["a", "b", "c"] and c.num_updates == 4
    assert not np.array_equal(w_before, c.weights["p0/W"])
    c2 = _roundtrip(c, dict(batch_size=2, units=16))
    assert c2.propose(big) == c.propose(big)
    with pytest.raises(ValueError, match="options"):
        c.propose(ParamSpace([Param("a", (1, 2))]))


def test_failed_trials():
    space = ParamSpace.from_search_space(_Toy())
    skip = ReinforceController(seed=2, batch_size=2, units=8)
    v = skip.propose(space)
    skip.observe(v, None, space)
    skip.observe(v, float("nan"), space)
    assert skip.pending == [] and skip.num_failed == 2 and skip.baseline is None
    skip.observe(v, 1.0, space)
    assert len(skip.pending) == 1 and skip.baseline == 1.0

    pen = ReinforceController(seed=2, batch_size=2, units=8, failed_reward=0.0, baseline_decay=0.95)
    pen.observe(v, 1.0, space)
    pen.observe(v, None, space)
    assert pen.num_updates == 1 and pen.num_failed == 1
    assert pen.baseline == pytest.approx((0.05 * 1.0 * 0.95 + 0.05 * 0.0) / (0.05 * 0.95 + 0.05))


def test_reward_transform_and_bad_args():
    c = ReinforceController(reward_transform="cube", batch_size=100)
    space = ParamSpace.from_search_space(_Toy())
    c.observe({"a": "x", "b": 1}, 2.0, space)
    assert c.baseline == 8.0
    with pytest.raises(ValueError, match="reward_transform"):
        ReinforceController(reward_transform="square")
    with pytest.raises(ValueError, match="policy"):
        ReinforceController(policy="gru")


@pytest.mark.parametrize("policy", ["lstm", "factorized"])
def test_numpy_sampler_matches_the_tensorflow_reference(policy):
    """The default numpy sampler step computes what the traced TF step computes: the same
    probabilities (to float32 round-off) and, for a fixed seed, the same proposals and updates."""
    space = ParamSpace.from_search_space(NB201Space())
    kw = dict(
        seed=5,
        batch_size=2,
        units=24,
        learning_rate=0.05,
        tanh_constant=1.1,
        num_layers=2,
        policy=policy,
    )
    fast, ref = ReinforceController(**kw), ReinforceController(**kw)
    ref.use_tf_sampler = True
    assert not fast.use_tf_sampler  # the fast path is the default
    e0, e5 = space.params[0].name, space.params[5].name
    rew = lambda v: float(v[e0] == "nor_conv_3x3") + 0.5 * float(v[e5] == "skip_connect")  # noqa: E731
    for _ in range(30):
        vf, vr = fast.propose(space), ref.propose(space)
        assert vf == vr
        fast.observe(vf, rew(vf), space)
        ref.observe(vr, rew(vr), space)
    assert fast.num_updates == 15
    probe = fast.propose(space)
    pf, pr = fast.probabilities(space, probe), ref.probabilities(space, probe)
    assert set(pf) == set(pr)
    for k in pf:
        np.testing.assert_allclose(pf[k], pr[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert (
        max(p.max() for p in pf.values()) > 0.25
    )  # trained away from uniform (1/5), so the check has teeth


def test_packed_arrays_roundtrip_and_old_format():
    """get_arrays packs weights and Adam slots into three vectors; the per-weight form of earlier
    versions still loads."""
    space = ParamSpace.from_search_space(NB201Space())
    a = ReinforceController(seed=4, batch_size=2, units=8)
    for i in range(6):
        v = a.propose(space)
        a.observe(v, float(i % 3), space)
    arrays = a.get_arrays()
    assert sorted(arrays) == ["m", "v", "w"] and all(x.ndim == 1 for x in arrays.values())
    old = {
        f"{p}/{k}": d[k]
        for p, d in (("w", a.weights), ("m", a.slots_m), ("v", a.slots_v))
        for k in d
    }
    for form in (arrays, old):
        b = ReinforceController(seed=0, batch_size=2, units=8)
        b.set_state(json.loads(json.dumps(a.get_state())))
        b.set_arrays(form)
        assert all(np.array_equal(b.weights[k], a.weights[k]) for k in a.weights)
        assert b.propose(space) == ReinforceController.propose(
            _roundtrip(a, dict(batch_size=2, units=8)), space
        )
    bad = ReinforceController(seed=0, batch_size=2, units=16)  # other units: a clear error
    bad.set_state(a.get_state())
    with pytest.raises(ValueError, match="units=16"):
        bad.set_arrays(arrays)
