"""Proxy-assisted search (keras_nas.controllers.proxy_assisted.ProxyAssisted and the oracles' proxy= options).

Warm-up proposes the proxy's best first (evolution: as its initial population; REINFORCE: after
pre-training its policy on the ranking), ranked moves take the best-scored candidate, the proxy is
called once per distinct architecture, the state round-trips exactly, and a proxy *name* works
through a real keras-nas tuner (the tuner builds and scores each candidate).
"""

import json
import math
import os

import numpy as np
import pytest

from keras_nas.controllers.base import DEFAULT_WARM_TOP, RandomController
from keras_nas.controllers.evolution import AgingEvolutionController
from keras_nas.controllers.params import Param, ParamSpace
from keras_nas.controllers.proxy_assisted import ProxyAssisted
from keras_nas.space import NASNetCellSpace, NB201Space

NB201 = ParamSpace.from_search_space(NB201Space())
CELLS = ParamSpace.from_search_space(
    NASNetCellSpace(num_blocks=3)
)  # ~1e17 architectures: no repeats


class CountingProxy:
    """A deterministic proxy that records every call."""

    def __init__(self, fn=None):
        self.fn = fn or (
            lambda v: (sum(ord(c) for c in json.dumps(v, sort_keys=True)) * 7919) % 1009 / 1009.0
        )
        self.calls = []

    def __call__(self, values):
        s = self.fn(values)
        self.calls.append((json.dumps(values, sort_keys=True), s))
        return s


def conv3(values):
    """NB201: number of 3x3 convolutions (a stand-in for synflow, which favours them)."""
    return float(sum(v == "nor_conv_3x3" for v in values.values()))


def _drive(ctrl, space, n, reward=lambda v: 0.5):
    out = []
    for _ in range(n):
        v = space.complete(ctrl.propose(space), ctrl.sample_value)
        out.append(v)
        ctrl.observe(v, reward(v), space)
    return out


def test_warm_up_proposes_the_proxys_top_k_first():
    proxy = CountingProxy()
    ctrl = ProxyAssisted(RandomController(seed=0), proxy, samples=60, candidates=1, seed=0)
    first = [ctrl.propose(CELLS) for _ in range(DEFAULT_WARM_TOP)]
    assert len(proxy.calls) == 60  # the warm-up scored its 60 (distinct) draws, nothing else yet
    ranked = sorted(proxy.calls, key=lambda c: -c[1])
    assert [json.dumps(v, sort_keys=True) for v in first] == [
        c[0] for c in ranked[:DEFAULT_WARM_TOP]
    ]
    assert ctrl.last_origin == "proxy-warm"
    ctrl.propose(
        CELLS
    )  # then the inner controller, unranked (candidates=1), scored once for its trial
    assert ctrl.last_origin is None and len(proxy.calls) == 61


def test_evolution_starts_from_the_proxys_best_population():
    proxy = CountingProxy(conv3)
    inner = AgingEvolutionController(5, 2, seed=1, identity_prob=0.0)
    ctrl = ProxyAssisted(inner, proxy, samples=200, candidates=1, seed=1)
    init = _drive(ctrl, NB201, 5)
    best5 = sorted((c[1] for c in proxy.calls), reverse=True)[:5]
    assert [conv3(v) for v in init] == best5
    assert [m["values"] for m in ctrl.population] == init  # the population, through the wrapper
    _drive(ctrl, NB201, 1)
    assert (
        inner.last_origin == "mutation"
    )  # no random initial phase left: the warm-up took its place
    assert inner.num_initial == 5


def test_reinforce_pretraining_moves_the_policy_toward_the_proxy():
    pytest.importorskip("tensorflow")
    from keras_nas.controllers.reinforce import ReinforceController

    plain = ReinforceController(seed=2, units=8, learning_rate=0.01)
    plain.propose(NB201)
    conv = {p.name: "nor_conv_3x3" for p in NB201}
    before = plain.probabilities(NB201, conv)
    ctrl = ProxyAssisted(
        ReinforceController(seed=2, units=8, learning_rate=0.01, pretrain_steps=30),
        conv3,
        samples=100,
        seed=2,
    )
    ctrl.propose(NB201)
    after = ctrl.inner.probabilities(
        NB201, conv
    )  # P(conv 3x3 | the edges before it chose conv 3x3)
    k = NB201.params[0].options.index("nor_conv_3x3")
    for name in after:
        assert after[name][k] > before[name][k] + 0.05, name
    assert (
        ctrl.inner.baseline is None and not ctrl.inner.pending
    )  # real-reward bookkeeping untouched


def test_ranked_moves_pick_the_best_scored_unseen_candidate():
    proxy = CountingProxy()
    ctrl = ProxyAssisted(RandomController(seed=3), proxy, samples=0, candidates=5, seed=3)
    for _ in range(8):
        n0 = len(proxy.calls)
        v = ctrl.propose(CELLS)
        cands = proxy.calls[n0:]
        assert len(cands) == 5  # C candidates scored (all distinct in this space)
        assert json.dumps(v, sort_keys=True) == max(cands, key=lambda c: c[1])[0]
        ctrl.observe(v, 0.1, CELLS)
    # a candidate already proposed is passed over while an unseen one exists; once all were, the best again
    tiny = ParamSpace([Param("x", ("a", "b", "c"))])
    ctrl = ProxyAssisted(
        RandomController(seed=4),
        lambda v: {"a": 2.0, "b": 1.0, "c": 0.0}[v["x"]],
        candidates=30,
        seed=4,
    )
    assert [ctrl.propose(tiny)["x"] for _ in range(4)] == ["a", "b", "c", "a"]


def test_predictor_ranks_one_candidate_set_and_gets_its_unchosen_proposals_back():
    """PredictorController.propose_batch: the n best of one acquisition pass, distinct and pending;
    the wrapper releases the unchosen ones (they may come back), where discard would blacklist them."""
    from keras_nas.controllers.predictor import PredictorController

    inner = PredictorController(seed=5, num_initial=4)
    _drive(inner, NB201, 6, reward=conv3)
    batch = inner.propose_batch(NB201, 5)
    keys = [inner._key(v) for v, _ in batch]
    assert len(set(keys)) == 5 and all(o == "acquisition" for _, o in batch)
    assert set(keys) <= set(inner.pending) and not inner.discarded
    inner.release(batch[1][0], NB201)
    assert keys[1] not in inner.pending and keys[1] not in inner._seen_keys()
    inner.discard(batch[2][0], NB201)
    assert keys[2] in inner.discarded and keys[2] in inner._seen_keys()

    proxy = CountingProxy(conv3)
    ctrl = ProxyAssisted(PredictorController(seed=6, num_initial=4), proxy, candidates=5, seed=6)
    _drive(ctrl, NB201, 12, reward=lambda v: conv3(v) / 6)
    assert ctrl.num_ranked > 0
    assert not ctrl.inner.discarded and not ctrl.inner.pending  # unchosen: released, not banned
    assert len(ctrl.inner.history) == 12


def test_proxy_calls_are_counted_exactly():
    proxy = CountingProxy()
    ctrl = ProxyAssisted(RandomController(seed=5), proxy, samples=40, candidates=4, seed=5)
    trials = 25
    _drive(ctrl, CELLS, trials)
    # documented: one call per distinct architecture; warm-up N, then C per ranked move
    keys = [c[0] for c in proxy.calls]
    assert len(keys) == len(set(keys)) == ctrl.num_proxy_calls
    assert ctrl.num_proxy_calls == 40 + (trials - DEFAULT_WARM_TOP) * 4
    assert ctrl.proxy_seconds > 0
    s = ctrl.summary_scalars(CELLS)
    assert s["proxy/calls"] == ctrl.num_proxy_calls and math.isfinite(s["proxy/last"])


def test_state_round_trip_is_exact_mid_warm_up_and_mid_search():
    def make(seed):
        return ProxyAssisted(
            AgingEvolutionController(6, 2, seed=seed),
            CountingProxy(),
            samples=30,
            candidates=3,
            seed=seed,
            explore=0.2,
        )

    for n in (3, 14):  # inside the warm-up queue, and in the ranked moves
        a = make(7)
        _drive(a, CELLS, n, reward=lambda v: len(json.dumps(v)) % 13 / 13)
        state = json.loads(json.dumps(a.get_state()))
        b = make(99)
        b.set_state(state)
        assert _drive(a, CELLS, 10) == _drive(b, CELLS, 10)
    with pytest.raises(ValueError, match="proxy-assisted"):
        make(1).set_state(AgingEvolutionController(6, 2, seed=1).get_state())


def test_scalars_and_failures():
    ctrl = ProxyAssisted(RandomController(seed=6), lambda v: 1e60, samples=5, seed=6)
    _drive(ctrl, NB201, 2)
    s = ctrl.summary_scalars(NB201)
    assert "proxy/last" not in s and s["proxy/last_log10"] == pytest.approx(
        60.0
    )  # beyond float32: log only

    def flaky(values):
        if values["edge_0_1"] == "none":
            raise RuntimeError("cannot build")
        return 1.0

    ctrl = ProxyAssisted(RandomController(seed=0), flaky, samples=50, seed=0)
    first = ctrl.propose(NB201)
    assert (
        first["edge_0_1"] != "none" and ctrl.num_proxy_errors > 0
    )  # failures rank last, never raise
    with pytest.raises(
        RuntimeError, match="failed on each of the first 3"
    ):  # never works: a setup error
        ProxyAssisted(RandomController(seed=0), lambda v: 1 / 0, samples=3, seed=0).propose(NB201)
    with pytest.raises(RuntimeError, match="no proxy"):
        ProxyAssisted(RandomController(seed=0), None, samples=3, seed=0).propose(NB201)


def test_oracle_options():
    import keras_tuner as kt

    from keras_nas.tuning.oracle import AgingEvolutionOracle, ReinforceOracle, oracle_options

    assert {"proxy", "proxy_samples", "proxy_candidates"} <= set(oracle_options())
    hp = kt.HyperParameters()
    NB201Space().register(hp)
    o = AgingEvolutionOracle(
        kt.Objective("score", "max"),
        5,
        seed=1,
        hyperparameters=hp,
        proxy=conv3,
        proxy_samples=50,
        proxy_candidates=3,
    )
    assert (
        isinstance(o.controller, ProxyAssisted)
        and o.controller.samples == 50
        and o.proxy_name is None
    )
    assert o.population == []  # the inner controller's attributes still reach through
    with pytest.raises(ValueError, match="need a proxy"):
        ReinforceOracle(kt.Objective("score", "max"), 5, proxy_samples=10)
    with pytest.raises(ValueError, match="valid proxies"):
        AgingEvolutionOracle(kt.Objective("score", "max"), 5, proxy="synflw")


def test_proxy_name_through_a_real_tuner(tmp_path):
    """proxy='synflow' with a keras-nas tuner: the tuner builds each candidate and scores it with
    keras_nas.proxies.score; every trial gets its score, published as proxy/last."""
    import keras
    import keras_tuner as kt

    from keras_nas import proxies
    from keras_nas.tuning.hypermodels import NB201HyperModel
    from keras_nas.tuning.tuners import AgingEvolution

    hm = NB201HyperModel((8, 8, 3), 3, channels=4, num_cells=1)
    x = np.random.default_rng(0).standard_normal((12, 8, 8, 3)).astype("float32")
    y = np.arange(12) % 3
    tuner = AgingEvolution(
        hm,
        objective="val_accuracy",
        max_trials=2,
        seed=5,
        directory=str(tmp_path),
        project_name="p",
        proxy="synflow",
        proxy_samples=3,
        population_size=2,
        sample_size=2,
    )
    assert tuner.oracle.proxy_name == "synflow"
    tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=12, verbose=0)
    ctrl = tuner.oracle.controller
    assert ctrl.num_proxy_calls <= 3 and ctrl.num_warm_proposed == 2 and ctrl.proxy_seconds > 0
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
    assert len(trials) == 2

    def synflow(values):
        hp = kt.HyperParameters()
        hp.values = dict(values)
        return proxies.score(hm.build(hp), "synflow", seed=5)

    # the trials are the warm-up's best two, best first, each scored as keras_nas.proxies.score scores it
    first, last = (synflow(t.hyperparameters.values) for t in trials)
    assert first >= last and ctrl.last_score == pytest.approx(last, rel=1e-6)
    s = tuner.oracle.summary_scalars()
    assert s["proxy/last_log10"] == pytest.approx(
        math.copysign(math.log10(1 + abs(last)), last), rel=1e-6
    )
    from keras_nas.reporting import SearchReporter

    # what the search reporter logs to TensorBoard as controller/<name> after each trial
    assert (
        SearchReporter.controller_scalars(tuner.oracle)["proxy/last_log10"] == s["proxy/last_log10"]
    )
    keras.backend.clear_session()


@pytest.mark.skipif(
    not os.path.isfile(
        os.path.join(
            os.environ.get(
                "KERAS_NAS_NB201_TABLES",
                os.path.join(
                    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "..",
                    "shared",
                    "nas-bench-201",
                ),
            ),
            "nb201.csv",
        )
    ),
    reason="NAS-Bench-201 tables not found (set KERAS_NAS_NB201_TABLES)",
)
def test_simulator_charges_proxy_time():
    import functools

    from keras_nas.benchmarks import NASBench201
    from keras_nas.tuning.oracle import AgingEvolutionOracle

    bench = NASBench201(
        os.environ.get(
            "KERAS_NAS_NB201_TABLES",
            os.path.join(
                os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                "..",
                "shared",
                "nas-bench-201",
            ),
        )
    )
    f = functools.partial(
        AgingEvolutionOracle,
        population_size=4,
        sample_size=2,
        allow_duplicates=True,
        proxy=conv3,
        proxy_samples=100,
        proxy_candidates=3,
    )
    free = bench.simulate(f, "cifar10", time_budget=3000, seed=1, write_files=False)
    charged = bench.simulate(
        f, "cifar10", time_budget=3000, seed=1, write_files=False, proxy_cost_s=5.0
    )
    assert free.proxy_calls >= 100 and charged.proxy_calls >= 100
    assert (
        charged.num_trials < free.num_trials
    )  # 100 warm-up calls cost 500 s: ~4 evaluations fewer
    assert charged.simulated_time <= 3000


def test_cli_flags_are_checked_before_tensorflow(tmp_path, capsys):
    from keras_nas import cli
    from keras_nas.jobs import search

    assert cli.main(["search", "--proxy=synflw", f"--output_dir={tmp_path / 'o'}"]) == 1
    assert "--proxy must be one of" in capsys.readouterr().err
    assert cli.main(["search", "--proxy_samples=5", f"--output_dir={tmp_path / 'o'}"]) == 1
    assert "--proxy_samples needs --proxy" in capsys.readouterr().err
    from keras_nas import proxies

    assert (
        search.PROXIES == proxies.NAMES
    )  # the names the CLI checks are the proxies keras_nas.proxies has
