"""One-shot NAS (keras_nas.oneshot, keras_nas.blocks.mixed/supernet): mixed ops, the NB201 supernet and
its sub-networks, every strategy end to end on tiny data, determinism, bad arguments, and a toy task
where one op is clearly better.

Speed: the searches here are tiny (8x8 images, C=2, 3 steps per epoch) and run their steps eagerly
(``run_eagerly=True``): tracing a step as a tf.function costs seconds per strategy, far more than
the few eager steps. The traced steps (the default) run end to end in tests/test_oneshot_resume.py
(MirroredStrategy, in a subprocess)."""

import numpy as np
import pytest

from keras_nas.oneshot import STRATEGIES, OneShotError, search
from keras_nas.space.nb201 import NB201Cell

TINY = dict(epochs=2, batch_size=8, channels=2, num_cells=1, num_samples=3, run_eagerly=True)


def _data(n=24, seed=0, classes=3):
    """16 training images (2 steps of 8 per epoch), 8 validation images (1 batch)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, classes, n)
    return x[: 2 * n // 3], y[: 2 * n // 3], x[2 * n // 3 :], y[2 * n // 3 :]


def _count(variables, trainable):
    return sum(int(np.prod(v.shape)) for v in variables if v.trainable == trainable)


# -- mixed ops and architecture weights -------------------------------------------------------
@pytest.mark.parametrize("name", ["darts", "drnas", "gdas"])
def test_architecture_weights_sum_to_one(name):
    import tensorflow as tf

    from keras_nas.oneshot.architect import make_architect
    from keras_nas.oneshot.spaces import NB201OneShot

    opts = dict(
        arch_learning_rate=3e-4,
        arch_weight_decay=1e-3,
        drnas_reg="kl",
        reg_scale=1e-3,
        beta_reg=0.0,
        tau_max=10.0,
        tau_min=0.1,
    )
    a = make_architect(name, NB201OneShot(), seed=3, epochs=2, options=opts)
    a.create_variables()
    a.alpha.assign(np.random.default_rng(0).standard_normal((6, 5)).astype("float32"))
    for s in range(3):
        w, path = a.weight_arch(tf.constant([1, s], tf.int64), tf.constant(1.0), None)
        w = w.numpy()
        assert w.shape == (6, 5) and np.all(w >= 0)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)
        if name == "gdas":  # hard one-hot in value, the sampled op is the index computed
            np.testing.assert_allclose(np.sort(w, axis=1)[:, -1], 1.0, atol=1e-6)
            assert np.array_equal(np.argmax(w, axis=1), path.numpy())
    if name == "drnas":  # samples differ from step to step (a Dirichlet, not the softmax)
        w0 = a.weight_arch(tf.constant([1, 0], tf.int64), 1.0, None)[0].numpy()
        w1 = a.weight_arch(tf.constant([1, 1], tf.int64), 1.0, None)[0].numpy()
        assert not np.allclose(w0, w1)
    np.testing.assert_allclose(a.probabilities().sum(axis=1), 1.0, rtol=1e-9)


def test_mixed_op_modes():
    import keras

    from keras_nas.blocks.mixed import MixedOp

    m = MixedOp(["none", "identity", "conv_3x3", "avg_pool_3x3"], 4)
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 4)).astype("float32")
    m.build(x.shape)
    each = [np.asarray(m.call_candidate(k, x, training=False)) for k in range(4)]
    assert not each[0].any()
    w = np.array([0.1, 0.2, 0.3, 0.4], "float32")
    np.testing.assert_allclose(
        np.asarray(m(x, weights=w)), sum(wk * e for wk, e in zip(w, each)), atol=1e-5
    )
    for k in range(4):
        np.testing.assert_allclose(np.asarray(m(x, index=k)), each[k], atol=1e-6)
    # straight-through: the value of the chosen op, a gradient for every weight
    import tensorflow as tf

    hard = tf.Variable(np.eye(4, dtype="float32")[2])
    with tf.GradientTape() as tape:
        y = m(x, weights=hard, index=2)
        loss = tf.reduce_sum(y)
    np.testing.assert_allclose(y.numpy(), each[2], atol=1e-6)
    assert np.all(np.asarray(tape.gradient(loss, hard)) != 0)
    assert isinstance(m, keras.layers.Layer)


# -- the supernet and its sub-networks -------------------------------------------------------
CELLS = [
    "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|",
]


@pytest.mark.parametrize("num_cells", [1, 2])
def test_subnetwork_parameters_and_outputs_equal_the_derived_network(num_cells):
    from keras_nas.blocks import build_nb201_network
    from keras_nas.blocks.supernet import NB201Supernet

    kw = dict(input_shape=(8, 8, 3), num_classes=5, channels=4, num_cells=num_cells)
    sup = NB201Supernet(**kw)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype("float32")
    total = {t: _count(sup.weights, t) for t in (True, False)}
    for cell in CELLS:
        net = build_nb201_network(cell, logits=True, **kw)
        # the selected sub-network, from the supernet's own variables: everything minus the
        # candidates the cell does not use
        idx = sup.indices_of(cell)
        unused = [
            v
            for c in sup.cells
            for e, k in enumerate(idx)
            for j in range(len(sup.ops))
            if j != k
            for v in c.edges[e].candidate_weights(j)
        ]
        for t in (True, False):
            assert total[t] - _count(unused, t) == _count(net.weights, t), (cell, t)
            assert _count(sup.selected_weights(cell), t) == _count(net.weights, t)
        sup.transfer_to(net, cell)
        np.testing.assert_allclose(
            np.asarray(sup(x, path=np.array(idx, "int32"), training=False)),
            np.asarray(net(x, training=False)),
            atol=1e-5,
        )


def test_derivation_is_nb201_argmax_over_all_ops():
    from keras_nas.oneshot.spaces import NB201OneShot

    w = np.full((6, 5), 0.1)
    w[:, 0] = 0.5  # 'none' strongest everywhere: NB201's convention keeps it (the collapse shows)
    w[3, 3] = 0.9
    cell = NB201OneShot().derive(w)
    assert cell.ops == ("none",) * 3 + ("nor_conv_3x3",) + ("none",) * 2


# -- every strategy end to end ---------------------------------------------------------------
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_end_to_end(strategy):
    from keras_nas.blocks import build_nb201_network

    xt, yt, xv, yv = _data()
    r = search(xt, yt, xv, yv, strategy=strategy, seed=1, **TINY)
    assert isinstance(r.architecture, NB201Cell)
    assert r.epochs == 2 and r.epochs_this_run == 2 and [t["epoch"] for t in r.trace] == [1, 2]
    assert all(np.isfinite(t["train_loss"]) for t in r.trace)
    assert 0.0 <= r.val_accuracy <= 1.0
    if strategy in ("darts", "drnas", "gdas", "enas"):
        for t in r.trace:
            assert NB201Cell.parse(t["derived"]) and np.asarray(t["probabilities"]).shape[0] == 6
            np.testing.assert_allclose(np.asarray(t["probabilities"]).sum(axis=1), 1.0, atol=1e-4)
    if strategy in ("spos", "supernet-evolution", "enas"):
        assert r.candidates and r.candidates[0][0] == str(r.architecture)
        assert r.candidates[0][1] == max(s for _, s in r.candidates)
    model = build_nb201_network(
        r.architecture, input_shape=(8, 8, 1), num_classes=3, channels=2, num_cells=1
    )
    assert model.count_params() > 0


def test_deterministic_for_a_seed():
    """drnas: Dirichlet draws (host-sampled paths and controller state: the resume test). Two runs
    with the same seed give the same search. (Two candidate ops: cheaper steps.)"""
    xt, yt, xv, yv = _data(seed=2)
    kw = dict(TINY, strategy="drnas", seed=5, ops=("avg_pool_3x3", "nor_conv_3x3"))
    a = search(xt, yt, xv, yv, **kw)
    b = search(xt, yt, xv, yv, **kw)
    assert str(a.architecture) == str(b.architecture)
    for ra, rb in zip(a.trace, b.trace):
        assert ra.get("derived") == rb.get("derived")
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-6)
        np.testing.assert_allclose(ra["probabilities"], rb["probabilities"], atol=1e-6)


@pytest.mark.parametrize("strategy", ["drnas", "enas"])
def test_warmup_epochs_train_only_the_shared_weights(strategy):
    """During the warm-up the architecture does not move (no architecture step, no controller
    phase) while the shared weights train; afterwards it learns."""
    xt, yt, xv, yv = _data(seed=4)
    kw = dict(TINY, epochs=3, strategy=strategy, seed=2, arch_learning_rate=0.5)
    r = search(xt, yt, xv, yv, warmup_epochs=2, **kw)
    first, second, third = (np.asarray(t["probabilities"]) for t in r.trace)
    np.testing.assert_array_equal(first, second)  # frozen through both warm-up epochs
    assert not np.allclose(second, third, atol=1e-6)  # learns in the first epoch after
    if strategy == "drnas":
        assert "arch_loss" not in r.trace[1] and "arch_loss" in r.trace[2]
    else:
        assert r.trace[1].get("controller_reward") is None
        assert r.trace[2]["controller_reward"] is not None
    assert r.trace[0]["train_loss"] != r.trace[1]["train_loss"]  # the weights did train
    cold = search(xt, yt, xv, yv, **kw)
    assert not np.allclose(np.asarray(cold.trace[0]["probabilities"]), first, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(strategy="dartz"), ["strategy", "darts"]),
        (dict(space="nasnet"), ["space", "nb201"]),
        (dict(epochs=0), ["epochs"]),
        (dict(batch_size=1000), ["batch_size", "Lower"]),
        (dict(ops=("none", "sep_conv_3x3")), ["ops", "nor_conv_3x3"]),
        (dict(optimizer="rmsprop"), ["optimizer", "sgd"]),
        (dict(learning_rate=-1), ["learning_rate"]),
        (dict(tau_min=2.0, tau_max=1.0), ["tau_min"]),
        (dict(num_classes=2), ["num_classes", "labels"]),
        (dict(warmup_epochs=2), ["warmup_epochs", "smaller than epochs"]),
        (dict(warmup_epochs=-1), ["warmup_epochs"]),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, words):
    xt, yt, xv, yv = _data()
    with pytest.raises(OneShotError) as e:
        search(xt, yt, xv, yv, **{**TINY, **kwargs})
    for w in words:
        assert w in str(e.value)


def test_bad_data_names_the_array():
    xt, yt, xv, yv = _data()
    with pytest.raises(OneShotError, match="x_train"):
        search(xt[..., 0], yt, xv, yv, **TINY)
    with pytest.raises(OneShotError, match="y_val"):
        search(xt, yt, xv, yv[:3], **TINY)
    with pytest.raises(OneShotError, match="x_val"):
        search(xt, yt, None, yv, **TINY)


# -- a toy task where one op is clearly better ------------------------------------------------
def _period3_stripes(n, seed, noise=1.5, side=8):
    """Class 0: horizontal, class 1: vertical stripes of period 3 (rows 1, 1, -2: zero mean), random
    phase and polarity, under noise. A 3x3 average pool sums whole periods to zero (the box filter
    has a zero at that frequency), so pooling wipes the pattern out (only the image borders, where
    the pool sees a partial period, keep a trace); a convolution can detect it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    wave = np.array([1.0, 1.0, -2.0], np.float32)
    rows = np.stack([np.resize(np.roll(wave, p), side) for p in rng.integers(0, 3, n)])  # (n, side)
    img = np.where(
        (y == 0)[:, None, None],
        rows[:, :, None] + 0 * rows[:, None, :],
        rows[:, None, :] + 0 * rows[:, :, None],
    )
    img = img * rng.choice([-1.0, 1.0], size=(n, 1, 1)) + noise * rng.standard_normal(
        (n, side, side)
    )
    return img[..., None].astype("float32"), y


def test_darts_concentrates_on_the_op_that_can_see_the_pattern():
    """Candidates avg_pool_3x3 (erases the period-3 pattern) and nor_conv_3x3 (can detect it): in
    each of three seeds DARTS picks the convolution on edge 0->1, and over the seeds it puts most
    weight on the convolution on the edges that read the cell's input (0->1, 0->2, 0->3), where the
    choice decides whether the pattern survives; edges between inner nodes see features the
    convolutions already extracted and may go either way. (A high architecture learning rate:
    4 architecture steps per seed keep the test cheap.)

    Not 'none' vs a convolution: the batch norms after every cell make the network invariant to the
    scale that 'none' takes away, so DARTS cannot tell them apart here -- the collapse mechanism."""
    x, y = _period3_stripes(96, 0)
    from_input = [0, 1, 3]  # EDGES order: (1,0), (2,0), (2,1), (3,0), (3,1), (3,2)
    mass = []
    for seed in (0, 1, 2):
        r = search(
            x[:64],
            y[:64],
            x[64:],
            y[64:],
            strategy="darts",
            ops=("avg_pool_3x3", "nor_conv_3x3"),
            epochs=2,
            batch_size=32,
            channels=4,
            num_cells=1,
            seed=seed,
            optimizer="adam",
            learning_rate=0.01,
            arch_learning_rate=0.3,
            run_eagerly=True,
        )
        p = np.asarray(r.trace[-1]["probabilities"])[:, 1]
        mass.append(p[from_input].mean())
        assert r.architecture.ops[0] == "nor_conv_3x3", (
            seed,
            p,
        )  # 0->1: the input of every later node
    assert np.mean(mass) > 0.55, mass  # 0.5: no preference (measured 0.59)


def test_cli_architecture_learning_rate_follows_the_run_length():
    from keras_nas.jobs import oneshot as job

    assert job.arch_learning_rate(90) == 1e-2  # the digits runs: 3e-4 left the weights uniform
    assert job.arch_learning_rate(50 * 390) == 3e-4  # DARTS' CIFAR-10 run keeps DARTS' rate


def test_cli_warm_up_defaults_to_half_the_epochs_for_enas_only():
    from keras_nas.jobs import oneshot as job
    from keras_nas.jobs.search_config import SearchConfig

    assert job.warmup_epochs(SearchConfig(controller="enas"), 40) == 20  # measured to help ENAS
    assert job.warmup_epochs(SearchConfig(controller="drnas"), 40) == 0
    assert job.warmup_epochs(SearchConfig(controller="darts", warmup_epochs=3), 40) == 3


@pytest.mark.parametrize("shaping, most", [("nb201", 0.97), ("micro", 0.38)])
def test_enas_controller_shaping_bounds_how_far_the_policy_can_concentrate(shaping, most):
    """NAS-Bench-201's ENAS (logits / 5, then 2.5 tanh) lets one op take ~0.97 of an edge; ENAS'
    micro shaping (1.1 tanh, / 2.5 for ops) keeps every op under ~0.38, however large the logits."""
    from keras_nas.oneshot.architect import make_architect
    from keras_nas.oneshot.spaces import NB201OneShot

    opts = dict(controller_learning_rate=0.0035, enas_controller=shaping)
    a = make_architect("enas", NB201OneShot(), seed=0, epochs=2, options=opts)
    a.create_variables()
    c = a.controller
    c.probabilities(a.ps, {p.name: p.options[0] for p in a.ps.params})  # builds the weights
    w = {
        k: (np.where(np.arange(v.size) == 0, 50.0, -50.0) if k.endswith("/b") else v)
        for k, v in c.weights.items()
    }
    c.set_arrays(
        {f"{s}/{k}": (v if s == "w" else np.zeros_like(v)) for k, v in w.items() for s in "wmv"}
    )
    top = a.probabilities().max(axis=1)
    np.testing.assert_allclose(top, most, atol=0.01)


def test_enas_controller_auto_is_the_space_reference_and_a_resumed_search_keeps_its_own(tmp_path):
    xt, yt, xv, yv = _data(seed=6)
    kw = dict(TINY, epochs=1, strategy="enas", seed=3, directory=str(tmp_path))
    with pytest.raises(OneShotError, match="enas_controller"):
        search(xt, yt, xv, yv, **{**kw, "enas_controller": "macro"})
    first = search(xt, yt, xv, yv, enas_controller="micro", **kw)
    # "auto" would be nb201 on this space, but the finished search ran with micro: returned as is
    again = search(xt, yt, xv, yv, **kw)
    assert again.epochs_this_run == 0 and str(again.architecture) == str(first.architecture)
    with pytest.raises(OneShotError, match="enas_controller"):  # an explicit other shaping: refused
        search(xt, yt, xv, yv, enas_controller="nb201", **kw)
    # another strategy does not read it: an explicit value never blocks resuming it
    kw_darts = dict(kw, strategy="darts", directory=str(tmp_path / "darts"))
    done = search(xt, yt, xv, yv, **kw_darts)
    again = search(xt, yt, xv, yv, enas_controller="micro", **kw_darts)
    assert again.epochs_this_run == 0 and str(again.architecture) == str(done.architecture)
