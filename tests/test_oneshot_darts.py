"""One-shot search in the DARTS cell space (keras_nas.blocks.supernet_darts, space="darts"): the
supernet's selected sub-network against the derived ``build_network``, DARTS' derivation rule, the
children's ask/tell space, and strategies end to end on tiny data (eager steps: no tracing)."""

import numpy as np
import pytest

from keras_nas.oneshot import STRATEGIES, search
from keras_nas.space.genotype import Genotype

OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "identity", "sep_conv_3x3", "dil_conv_3x3")
TINY = dict(
    space="darts",
    epochs=2,
    batch_size=8,
    channels=2,
    num_cells=1,
    num_blocks=2,
    num_samples=3,
    run_eagerly=True,
)


def _count(variables, trainable):
    return sum(int(np.prod(v.shape)) for v in variables if v.trainable == trainable)


def _data(n=24, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, classes, n)
    return x[: 2 * n // 3], y[: 2 * n // 3], x[2 * n // 3 :], y[2 * n // 3 :]


@pytest.mark.parametrize("num_cells", [1, 2])
def test_selected_subnetwork_equals_the_derived_network(num_cells):
    """Derive genotypes from random architecture weights; each is valid, rebuilds with
    build_network with exactly the parameters (trainable and not) of the supernet's selected
    sub-network, and with the shared weights copied in computes what the supernet's path does."""
    from keras_nas.blocks import build_network
    from keras_nas.blocks.supernet_darts import DartsSupernet
    from keras_nas.oneshot.spaces import DartsOneShot

    space = DartsOneShot(OPS, num_blocks=3)
    kw = dict(input_shape=(8, 8, 3), num_classes=5, num_cells=num_cells)
    sup = DartsSupernet(channels=4, num_blocks=3, ops=OPS, **kw)
    assert sup.num_edges == space.num_edges == 2 * (2 + 3 + 4)
    total = {t: _count(sup.weights, t) for t in (True, False)}
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype("float32")
    rng = np.random.default_rng(num_cells)
    for _ in range(2):
        g = space.derive(rng.random((space.num_edges, len(OPS))))
        g.validate()
        assert Genotype.parse(str(g)) == g
        assert g.normal.concat == g.reduce.concat == (2, 3, 4)
        net = build_network(g, filters=4, logits=True, **kw)
        for t in (True, False):
            assert _count(sup.selected_weights(g), t) == _count(net.weights, t), (str(g), t)
            assert _count(sup.selected_weights(g), t) < total[t]
        path = np.asarray(sup.path_of(g), "int32")
        np.testing.assert_array_equal(path, space.path_of(g))
        sup.transfer_to(net, g)
        np.testing.assert_allclose(
            np.asarray(sup(x, path=path, training=False)),
            np.asarray(net(x, training=False)),
            atol=1e-4,
        )


def test_derivation_keeps_the_top_two_edges_by_strongest_non_none_op():
    from keras_nas.oneshot.spaces import DartsOneShot

    space = DartsOneShot(OPS, num_blocks=2)  # edges per cell: node 2 <- 0, 1; node 3 <- 0, 1, 2
    w = np.full((10, len(OPS)), 0.05)
    w[:, 0] = 0.9  # 'none' strongest on every edge: ignored by the rule
    w[0, 4] = 0.3  # normal node 2 <- 0: sep_conv_3x3
    w[1, 3] = 0.2  # normal node 2 <- 1: identity
    w[2, 1] = 0.1  # normal node 3 <- 0: max_pool (weakest: dropped)
    w[3, 5] = 0.4  # normal node 3 <- 1: dil_conv_3x3
    w[4, 2] = 0.35  # normal node 3 <- 2: avg_pool_3x3
    g = space.derive(w)
    assert g.normal.blocks[0].inputs == (0, 1) and g.normal.blocks[0].ops == (
        "sep_conv_3x3",
        "identity",
    )
    assert g.normal.blocks[1].inputs == (1, 2) and g.normal.blocks[1].ops == (
        "dil_conv_3x3",
        "avg_pool_3x3",
    )
    assert "none" not in g.ops_used
    assert g.reduce.concat == (2, 3)


def test_children_space_round_trips_and_paths_select_two_edges_per_node():
    from keras_nas.oneshot.spaces import DartsOneShot

    space = DartsOneShot(OPS, num_blocks=3)
    cs = space.search_space()
    rng = np.random.default_rng(0)
    for _ in range(20):
        path = space.random_path(rng)
        active = path != space.none_index
        for t in range(2):
            per_node = [0, 0, 0]
            for e, (b, _) in enumerate(space.cell_edges):
                per_node[b] += int(active[t * len(space.cell_edges) + e])
            assert per_node == [2, 2, 2]
        values = {d.name: d.options[int(rng.integers(len(d.options)))] for d in cs.decisions}
        g = cs.decode(values)
        assert cs.encode(g) == values and g.validate() is g


def test_bad_ops_name_the_problem():
    from keras_nas.oneshot import OneShotError

    xt, yt, xv, yv = _data()
    with pytest.raises(OneShotError, match="'none'"):
        search(xt, yt, xv, yv, **{**TINY, "ops": ("identity", "sep_conv_3x3")})


# gdas and enas run in this space too (checked when it was written: ~12 s and ~30 s more here)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_end_to_end_in_the_darts_space(strategy):
    from keras_nas.blocks import build_network

    xt, yt, xv, yv = _data()
    ops = ("none", "max_pool_3x3", "identity", "dil_conv_3x3")  # few, cheap candidates: eager steps
    r = search(xt, yt, xv, yv, strategy=strategy, ops=ops, seed=1, **TINY)
    g = r.architecture
    assert isinstance(g, Genotype) and g.validate() is g and g.normal.concat == (2, 3)
    assert r.epochs == 2 and all(np.isfinite(t["train_loss"]) for t in r.trace)
    assert 0.0 <= r.val_accuracy <= 1.0
    if strategy in ("darts", "drnas", "gdas"):  # one row per supernet edge (2 + 3 inputs x 2 cells)
        p = np.asarray(r.trace[-1]["probabilities"])
        assert p.shape == (10, len(ops))
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    if strategy == "enas":  # one row per controller decision (inputs and ops), zero-padded
        p = np.asarray(r.trace[-1]["probabilities"])
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    if strategy in ("spos", "supernet-evolution", "enas"):
        assert r.candidates and r.candidates[0][0] == str(g)
    model = r.build(input_shape=(8, 8, 1), num_classes=3, channels=2, num_cells=1)
    assert model.count_params() > 0
    assert (
        build_network(
            str(g), input_shape=(8, 8, 1), num_classes=3, filters=2, num_cells=1
        ).count_params()
        == model.count_params()
    )
