"""Aging evolution controller (pure Python; keras-tuner only for the conditional-space tests)."""

import json
import random

import pytest

from keras_nas import zoo
from keras_nas.controllers.evolution import AgingEvolutionController as AgingEvolution
from keras_nas.controllers.params import ParamSpace
from keras_nas.space import KIND_INPUT, KIND_OP, NASNetCellSpace, NB201Space


@pytest.fixture(scope="module")
def cell():
    sp = NASNetCellSpace(num_blocks=5)
    return sp, ParamSpace.from_search_space(sp)


def _diff(a, b):
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


def test_mutation_changes_exactly_one_decision_and_stays_valid(cell):
    sp, ps = cell
    c = AgingEvolution(10, 3, seed=0, identity_prob=0.0)
    rng = random.Random(1)
    kinds = {KIND_INPUT: 0, KIND_OP: 0}
    for _ in range(300):
        parent = sp.sample(rng)
        child = c.mutate(parent, ps)
        d = _diff(parent, child)
        assert len(d) == 1
        (name,) = d
        kinds[sp[name].kind] += 1
        sp.decode(child).validate(sp.ops)  # a valid genotype
        assert sp.decode(child) != sp.decode(parent)
    # hidden-state and op mutations with equal probability (binomial, n=300, p=0.5)
    assert 110 < kinds[KIND_INPUT] < 190, kinds


def test_identity_mutation_probability(cell):
    sp, ps = cell
    c = AgingEvolution(10, 3, seed=2)  # default 0.05 on a cell space
    parent = sp.sample(random.Random(0))
    n = 4000
    same = sum(c.mutate(parent, ps) == parent for _ in range(n))
    assert same == c.num_identity
    assert 0.035 < same / n < 0.065
    # generic spaces: no identity mutation by default
    g = ParamSpace.from_search_space(NB201Space())
    assert all(p.kind == KIND_OP for p in g)
    from keras_nas.space.macro import MacroSpace

    m = ParamSpace.from_search_space(MacroSpace(num_layers=3))
    c2 = AgingEvolution(10, 3, seed=2)
    parent = MacroSpace(num_layers=3).sample(random.Random(0))
    assert all(c2.mutate(parent, m) != parent for _ in range(300))


def test_population_ages_and_failed_never_parents(cell):
    sp, ps = cell
    P = 5
    c = AgingEvolution(P, 2, seed=3)
    seen_ages = []
    for i in range(40):
        v = c.propose(ps)
        if i < P:
            assert c.last_origin == "random"
        else:
            assert c.last_origin in ("mutation", "identity")
        failed = i % 3 == 0
        # failed trials get an enormous "reward" if they were (wrongly) admitted
        c.observe(v, None if failed else float(i), ps)
        if not failed:
            seen_ages.append(c.population[-1]["age"])
        assert len(c.population) <= P
        assert all(m["reward"] is not None for m in c.population)
    assert len(c.population) == P
    ages = [m["age"] for m in c.population]
    assert ages == sorted(ages) and ages == seen_ages[-P:]  # the oldest died first
    assert c.num_failed == 14
    assert c.best["reward"] == 38.0


def test_failed_members_never_become_parents():
    sp = NB201Space()
    ps = ParamSpace.from_search_space(sp)
    c = AgingEvolution(4, 4, seed=0, identity_prob=0.0)
    for _ in range(4):  # the initial random phase
        c.propose(ps)
    base = {n: "none" for n in ps.names}
    good = [dict(base, edge_0_1=o) for o in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3")]
    bad = {n: "avg_pool_3x3" for n in ps.names}  # 5+ decisions away from every good member
    for g in good:
        c.observe(g, 1.0, ps)
    c.observe(bad, None, ps)
    c.observe(bad, float("nan"), ps)
    assert len(c.population) == 3
    for _ in range(200):
        child = c.propose(ps)
        assert c.last_origin == "mutation"
        assert min(len(_diff(child, g)) for g in good) <= 1  # one mutation from a good parent
        assert len(_diff(child, bad)) >= 5  # never from the failed one


def test_async_proposals_outstanding(cell):
    sp, ps = cell
    c = AgingEvolution(3, 2, seed=4)
    outstanding = [c.propose(ps) for _ in range(6)]  # 3 initial + 3 while nothing finished
    assert c.num_initial == 3 and not c.population
    assert all(len(v) == len(ps) for v in outstanding)
    c.observe(outstanding[0], 0.5, ps)
    child = c.propose(ps)  # the population (1 member) is used as soon as something finished
    assert c.last_origin in ("mutation", "identity")
    assert len(_diff(child, outstanding[0])) <= 1


def test_state_roundtrip_json_and_same_future(cell):
    sp, ps = cell
    a = AgingEvolution(6, 3, seed=5)
    for i in range(15):
        a.observe(a.propose(ps), float(i % 7), ps)
    state = json.loads(json.dumps(a.get_state()))
    b = AgingEvolution(6, 3, seed=999)
    b.set_state(state)
    assert b.get_state() == a.get_state()
    for i in range(20):
        va, vb = a.propose(ps), b.propose(ps)
        assert va == vb
        a.observe(va, float(i), ps)
        b.observe(vb, float(i), ps)
    assert a.get_state() == b.get_state()


def test_warm_start_genotypes_and_dicts(cell):
    sp, ps = cell
    c = AgingEvolution(
        4, 2, seed=0, warm_start=[zoo.AMOEBANET_A, sp.encode(zoo.NASNET_A)], encoder=sp
    )
    v0 = c.propose(ps)
    assert sp.decode(v0).normal.blocks == zoo.AMOEBANET_A.normal.blocks
    assert c.last_origin == "warm"
    with pytest.raises(ValueError, match="encoder"):
        AgingEvolution(4, 2, warm_start=[zoo.AMOEBANET_A]).propose(ps)
    with pytest.raises(ValueError, match="not valid"):
        AgingEvolution(4, 2, warm_start=[{"normal/b0_in0": 7}]).propose(ps)


def test_conditional_space_mutation_resolves_conditions():
    kt = pytest.importorskip("keras_tuner")
    hp = kt.HyperParameters()
    hp.Choice("model", ["mlp", "cnn"])
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 8, 64, step=8)
        hp.Int("layers", 1, 3)
    with hp.conditional_scope("model", ["cnn"]):
        hp.Choice("kernel", [3, 5])
        hp.Boolean("pool")
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Float("drop", 0.0, 0.5, step=0.1)
    hp.Fixed("batch", 32)
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    ps = param_space_from_hyperparameters(hp)
    c = AgingEvolution(5, 2, seed=7)
    rng = random.Random(0)
    switched = 0
    for _ in range(300):
        parent = ps.complete(
            {}, lambda p, s: p.from_prob(rng.random()) if p.continuous else rng.choice(p.options)
        )
        child = c.mutate(parent, ps)
        active = {p.name for p in ps.active_params(child)}
        assert set(child) == active  # every active value, no inactive one
        for p in ps.params:
            if p.name in child:
                assert ParamSpace.is_valid(p, child[p.name])
        assert child["batch"] == 32
        if child["model"] != parent["model"]:
            switched += 1
            assert _diff(parent, child) - {"model", "units", "layers", "kernel", "pool"} == set()
        else:
            assert len(_diff(parent, child)) == 1  # exactly one decision, changed
    assert switched > 0


def test_continuous_gaussian_step():
    kt = pytest.importorskip("keras_tuner")
    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    ps = param_space_from_hyperparameters(hp)
    c = AgingEvolution(5, 2, seed=1, sigma=0.05)
    steps = [abs(c.mutate({"x": 0.5}, ps)["x"] - 0.5) for _ in range(500)]
    assert all(s > 0 for s in steps)
    assert (
        sum(steps) / len(steps) < 0.06
    )  # a local step (mean |N(0, .05)| = 0.04), not a uniform redraw (0.25)


def test_param_mutated_always_changes_the_value_or_says_why():
    """``Param.mutated`` (evolution's and the predictor's mutation): another option, or a step
    that is redrawn until a stepped continuous value really changes; a param whose every
    value is the same gets an error that names it."""
    kt = pytest.importorskip("keras_tuner")
    from keras_nas.controllers.params import Param
    from keras_nas.tuning.spaces import param_space_from_hyperparameters

    hp = kt.HyperParameters()
    hp.Choice("act", ["relu", "gelu", "tanh"])
    hp.Float("drop", 0.0, 0.5, step=0.1)  # a small step often lands on the same value
    ps = param_space_from_hyperparameters(hp)
    rng = random.Random(0)
    for p, current in zip(ps.params, ("gelu", 0.2)):
        for _ in range(300):
            v = p.mutated(current, rng, sigma=0.02)
            assert v != current and ParamSpace.is_valid(p, v)

    class Constant:  # every probability maps to one value
        def prob_to_value(self, q):
            return 1.0

        def value_to_prob(self, v):
            return 0.5

    with pytest.raises(ValueError, match="'flat'.*widen its range"):
        Param("flat", None, hp=Constant()).mutated(1.0, rng, sigma=0.1)
