"""The contract every controller keeps (modelled on optuna's sampler tests), run over all of them.

A new controller is added to CONTROLLERS below and must pass unchanged:
* proposals hold a value for every active decision, of a plain Python type, among the options;
* get_state/set_state (and get_arrays/set_arrays) give a fresh controller the same future;
* a failed trial (reward None) and a discarded proposal never break it;
* summary_scalars() returns finite floats and changes nothing.
"""

import json
import math
import random

import pytest

from keras_nas.controllers.base import Controller, RandomController
from keras_nas.controllers.evolution import AgingEvolutionController
from keras_nas.controllers.params import ParamSpace
from keras_nas.space import MacroSpace, NASNetCellSpace

PLAIN = (int, float, str, bool)


def _reinforce(seed, **kwargs):
    pytest.importorskip("tensorflow")
    from keras_nas.controllers.reinforce import ReinforceController

    return ReinforceController(seed=seed, units=8, batch_size=2, **kwargs)


def _proxy(values):
    """A deterministic stand-in for a zero-cost proxy."""
    return (sum(ord(c) for c in json.dumps(values, sort_keys=True)) * 31) % 101 / 101.0


def _proxy_assisted(inner):
    def make(seed):
        from keras_nas.controllers.proxy_assisted import ProxyAssisted

        return ProxyAssisted(inner(seed), _proxy, samples=8, candidates=2, explore=0.2, seed=seed)

    return make


def _predictor(seed):
    from keras_nas.controllers.predictor import PredictorController

    return PredictorController(seed=seed, num_initial=3, num_candidates=20)


CONTROLLERS = {
    "random": lambda seed: RandomController(seed=seed),
    "predictor": _predictor,
    "evolution": lambda seed: AgingEvolutionController(4, 2, seed=seed),
    "reinforce": _reinforce,
    "proxy_evolution": _proxy_assisted(lambda seed: AgingEvolutionController(4, 2, seed=seed)),
    "proxy_reinforce": _proxy_assisted(lambda seed: _reinforce(seed, pretrain_steps=3)),
}
SPACES = {
    "cells": ParamSpace.from_search_space(NASNetCellSpace(num_blocks=2)),
    "macro": ParamSpace.from_search_space(
        MacroSpace(num_layers=3, filters=(8, 16), skip_connections=True)
    ),
}


def _reward(values):
    """A deterministic reward from the values; every 5th architecture 'fails'."""
    h = sum(ord(c) for c in json.dumps(values, sort_keys=True))
    return None if h % 5 == 0 else (h % 97) / 97.0


def _drive(ctrl, space, n, discard_every=0):
    out = []
    for i in range(n):
        v = ctrl.propose(space)
        v = space.complete(v, ctrl.sample_value)
        out.append(v)
        if discard_every and i % discard_every == discard_every - 1:
            ctrl.discard(v, space)
            continue
        ctrl.observe(v, _reward(v), space)
    return out


@pytest.fixture(params=sorted(CONTROLLERS))
def make(request):
    return CONTROLLERS[request.param]


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_proposals_complete_and_plain(make, space_name):
    space = SPACES[space_name]
    ctrl = make(0)
    assert isinstance(ctrl, Controller)
    for v in _drive(ctrl, space, 12):
        active = {p.name for p in space.active_params(v)}
        assert set(v) == active
        for p in space.params:
            if p.name in v:
                assert type(v[p.name]) in PLAIN and v[p.name] in p.options


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_state_round_trip_gives_the_same_future(make, space_name):
    space = SPACES[space_name]
    a = make(3)
    _drive(a, space, 7, discard_every=4)
    state = json.loads(json.dumps(a.get_state()))  # JSON-serialisable
    arrays = a.get_arrays()
    b = make(99)  # another seed: everything must come from the state
    b.set_state(state)
    if arrays is not None:
        b.set_arrays({k: v.copy() for k, v in arrays.items()})
    assert _drive(a, space, 8) == _drive(b, space, 8)


def test_batches_and_released_proposals_never_break_it(make):
    """propose_batch gives n complete proposals; releasing some and observing the rest keeps the
    controller proposing complete values, and its state still round-trips."""
    space = SPACES["cells"]
    ctrl = make(2)
    _drive(ctrl, space, 12)
    for _ in range(3):
        batch = ctrl.propose_batch(space, 3)
        assert len(batch) == 3
        for i, (v, _origin) in enumerate(batch):
            v = space.complete(v, ctrl.sample_value)
            assert set(v) == {p.name for p in space.active_params(v)}
            if i:
                ctrl.release(v, space)
            else:
                ctrl.observe(v, _reward(v), space)
    assert len(_drive(ctrl, space, 4)) == 4
    b = make(9)
    b.set_state(json.loads(json.dumps(ctrl.get_state())))
    if ctrl.get_arrays() is not None:
        b.set_arrays({k: v.copy() for k, v in ctrl.get_arrays().items()})
    assert _drive(ctrl, space, 3) == _drive(b, space, 3)


def test_failed_rewards_never_break_it(make):
    space = SPACES["cells"]
    ctrl = make(1)
    for _ in range(6):
        v = space.complete(ctrl.propose(space), ctrl.sample_value)
        ctrl.observe(v, None, space)
    v = space.complete(ctrl.propose(space), ctrl.sample_value)
    assert set(v) == {p.name for p in space.active_params(v)}
    ctrl.observe(v, 0.5, space)
    ctrl.observe(v, float("nan"), space)  # a non-finite reward is a failure too, never a crash


def test_summary_scalars_are_finite_and_change_nothing(make):
    space = SPACES["cells"]
    a, b = make(5), make(5)
    _drive(a, space, 6)
    _drive(b, space, 6)
    scalars = a.summary_scalars(space)
    assert isinstance(scalars, dict)
    assert all(isinstance(k, str) and math.isfinite(float(v)) for k, v in scalars.items())
    assert _drive(a, space, 5) == _drive(b, space, 5)


def test_random_values_use_the_controllers_own_rng():
    space = SPACES["macro"]
    random.seed(0)
    x = RandomController(seed=7).random_values(space)
    random.seed(1)
    assert RandomController(seed=7).random_values(space) == x
