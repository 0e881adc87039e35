"""keras_nas.proxies: zero-cost proxies on untrained models, and the masked NAS-Bench-201 supernet.

Small networks (NB201 with C=4, one cell per stage, 8x8 inputs) keep this file fast; one
default-size NB201 network checks float64 synflow beyond float32's range. The masked supernet
is checked against real default-size networks (3 datasets x 8 cells) by
benchmarks/nb201_proxy_table.py before it writes its table.
"""

import functools
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_nas import proxies
from keras_nas.blocks.network import (
    build_macro_network,
    build_nb201_network,
    build_network,
)
from keras_nas.proxies.nb201 import NB201Synflow, cell_costs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB201_CSV = os.path.join(os.path.dirname(ROOT), "shared", "nas-bench-201", "nb201.csv")
SMALL = {"input_shape": (8, 8, 3), "num_classes": 5, "channels": 4, "num_cells": 1}
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
CELLS = [
    NONE,
    CONV,
    "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",  # ResNet cell
    "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # no path from the conv to the output
]


def small(cell=CONV, **kw):
    return build_nb201_network(cell, **{**SMALL, **kw})


def batch(n=8, shape=(8, 8, 3), classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype("float32"), rng.integers(0, classes, n)


def test_unknown_name_and_missing_batch_are_explained():
    m = small()
    with pytest.raises(
        ValueError, match=r"Unknown proxy 'synflw'; valid proxies are \[.*'synflow'"
    ):
        proxies.score(m, "synflw")
    with pytest.raises(ValueError, match="'naswot' is data-dependent and needs a batch of inputs"):
        proxies.score(m, "naswot")
    with pytest.raises(ValueError, match="'snip' needs labels"):
        proxies.score(m, "snip", batch=batch()[0])
    with pytest.raises(ValueError, match="at least 2 examples"):
        proxies.score(m, "jacob_cov", batch=batch(n=1)[0])
    assert set(proxies.NAMES) == {
        "synflow",
        "naswot",
        "jacob_cov",
        "snip",
        "grad_norm",
        "params",
        "flops",
    }


def test_params_and_flops_are_the_existing_counts():
    from keras_nas.transfer.flops import count_mult_adds

    m = small()
    trainable = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert (
        proxies.score(m, "params") == trainable < m.count_params()
    )  # BN moving statistics are not counted
    dense = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    assert proxies.score(dense, "params") == dense.count_params() == 21
    assert proxies.score(m, "flops") == count_mult_adds(m).mult_adds > 0


@pytest.mark.skipif(not os.path.exists(NB201_CSV), reason="NAS-Bench-201 table not available")
def test_params_equal_nas_bench_201():
    import csv

    with open(NB201_CSV) as f:
        rows = [r for _, r in zip(range(3), csv.DictReader(f))]
    for r in rows:
        assert proxies.score(build_nb201_network(r["arch"]), "params") == round(
            float(r["params_m"]) * 1e6
        )


def test_synflow_is_zero_without_a_path_and_grows_with_width():
    assert proxies.score(small(NONE), "synflow") == 0.0
    assert proxies.score(small(CELLS[-1]), "synflow") == 0.0  # the conv's node never reaches node 3
    narrow, wide = (
        proxies.score(small(channels=4), "synflow"),
        proxies.score(small(channels=8), "synflow"),
    )
    assert 0 < narrow < wide


def test_synflow_runs_in_float64_beyond_float32_range():
    s = proxies.score(build_nb201_network(CONV), "synflow")
    assert np.isfinite(s) and s > float(np.finfo(np.float32).max)


def test_naswot_higher_for_distinct_inputs_than_identical():
    m = small()
    x, _ = batch(n=8)
    distinct = proxies.score(m, "naswot", batch=x)
    same = proxies.score(m, "naswot", batch=np.repeat(x[:1], 8, axis=0))
    assert (
        np.isfinite(distinct) and distinct > same
    )  # identical codes: K is singular (log|K| = -inf)


def test_deterministic_seeded_and_the_model_is_untouched():
    m = small()
    before = [w.numpy().copy() for w in m.weights]
    data = batch()
    names = ["synflow", "naswot", "jacob_cov", "snip", "grad_norm"]
    a = proxies.score_many([m], names, batch=data, seed=3)[0]
    b = proxies.score_many([m], names, batch=data, seed=3)[0]
    c = proxies.score_many([m], names, batch=data, seed=4)[0]
    for n in names:
        assert np.isfinite(a[n]) and a[n] == pytest.approx(b[n], rel=1e-6), n
    assert a["synflow"] != c["synflow"] and a["snip"] != c["snip"]
    assert all(np.array_equal(x, w.numpy()) for x, w in zip(before, m.weights))
    # reinit=False scores the model's own weights: scaling them changes that score, not the seeded one.
    own = proxies.score(m, "synflow", reinit=False)
    for w in m.trainable_weights:
        if len(w.shape) >= 2 and "gamma" not in w.name:
            w.assign(w * 2.0)
    assert proxies.score(m, "synflow", reinit=False) > own
    assert proxies.score(m, "synflow", seed=3) == pytest.approx(a["synflow"], rel=1e-12)


def test_final_softmax_is_removed():
    x, y = batch()
    probs, logits = small(logits=False), small(logits=True)
    for n in ("synflow", "jacob_cov", "snip"):
        assert proxies.score(probs, n, batch=(x, y)) == pytest.approx(
            proxies.score(logits, n, batch=(x, y)), rel=1e-5
        )


def test_score_many_equals_single_scores_for_models_and_builders():
    x, y = batch()
    builders = [functools.partial(small, c) for c in CELLS[1:4]]
    names = ("synflow", "naswot", "grad_norm", "params")
    many = proxies.score_many(builders, names, batch=(x, y), seed=1)
    assert len(many) == 3
    for build, got in zip(builders, many):
        m = build()
        for n in names:
            assert got[n] == pytest.approx(proxies.score(m, n, batch=(x, y), seed=1), rel=1e-6), n
    with pytest.raises(TypeError, match="Keras models or builders"):
        proxies.score_many([42], "params")


def test_other_families_and_user_models():
    x, y = batch(shape=(16, 16, 3))
    nasnet = build_network(
        "darts_v2", input_shape=(16, 16, 3), num_classes=5, num_cells=1, filters=4
    )
    macro = build_macro_network(
        '{"layers": [{"filters": 8, "kernel_size": 3, "stride": 1, "skips": []},'
        ' {"filters": 8, "kernel_size": 5, "stride": 2, "skips": [0]}]}',
        input_shape=(16, 16, 3),
        num_classes=5,
    )
    user = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    for m in (nasnet, macro, user):
        s = proxies.score_many(
            [m], ["synflow", "naswot", "jacob_cov", "snip", "grad_norm"], batch=(x, y)
        )[0]
        assert all(np.isfinite(v) for v in s.values()), (m.name, s)
        assert s["synflow"] > 0


class _Subclassed(keras.Model):  # no get_config: scored in place, then restored
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(4, 3, activation="relu")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.out = keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.pool(self.conv(x)))


def test_model_without_config_is_scored_in_place_and_restored():
    m = _Subclassed()
    x, y = batch(shape=(8, 8, 3), classes=3)
    m(x)
    before = [w.numpy().copy() for w in m.weights]
    s = proxies.score_many([m], ["synflow", "naswot", "snip"], batch=(x, y))[0]
    assert all(np.isfinite(v) for v in s.values()) and s["synflow"] > 0
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, m.weights))


def test_register_a_proxy():
    def depth(model, batch):
        return float(len(model.layers))

    proxies.register("test_depth", depth)
    try:
        m = small()
        assert "test_depth" in proxies.available() and "test_depth" not in proxies.NAMES
        assert proxies.score(m, "test_depth") == len(m.layers)
        with pytest.raises(ValueError, match="already registered"):
            proxies.register("test_depth", depth)
    finally:
        from keras_nas.proxies import core

        core._REGISTRY.pop("test_depth", None)


def test_masked_supernet_equals_real_networks():
    sup = NB201Synflow(SMALL["input_shape"], (5, 7), channels=4, num_cells=1, seed=2, batch_size=4)
    got = sup(CELLS)  # 6 cells: two traced calls, the second padded
    assert got.shape == (6, 2)
    for cell, row in zip(CELLS, got):
        for j, k in enumerate((5, 7)):
            m = small(cell, num_classes=k)
            sup.load_into(m, k)
            assert row[j] == pytest.approx(
                proxies.score(m, "synflow", reinit=False), rel=1e-7, abs=0.0
            ), (cell, k)
    assert got[0, 0] == 0.0 and got[-1, 0] == 0.0 and got[1, 0] > 0


def test_cell_costs_equal_real_builds():
    costs = cell_costs(CELLS, **SMALL)
    for i, cell in enumerate(CELLS):
        m = small(cell)
        assert costs["params"][i] == proxies.score(m, "params")
        assert costs["flops"][i] == proxies.score(m, "flops")


_DIST = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.environ["REPO"])
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_nas import proxies
    from keras_nas.blocks.network import build_nb201_network
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    kw = dict(input_shape=(8, 8, 3), num_classes=5, channels=4, num_cells=1)
    x = np.random.default_rng(0).standard_normal((8, 8, 8, 3)).astype("float32")
    y = np.arange(8) % 5
    names = ["synflow", "naswot", "snip", "params"]
    plain = proxies.score_many([build_nb201_network(cell, **kw)], names, batch=(x, y))[0]
    out = {"plain": plain}
    for label, strategy in (("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
                            ("one_device", tf.distribute.OneDeviceStrategy("/cpu:0"))):
        with strategy.scope():
            m = build_nb201_network(cell, **kw)
            out[label] = proxies.score_many([m], names, batch=(x, y))[0]
        out[label + "_replicas"] = strategy.num_replicas_in_sync
    print("RESULT" + json.dumps(out))
    """
)


def test_inside_distribution_strategy_scopes():
    env = dict(os.environ, REPO=ROOT, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    p = subprocess.run(
        [sys.executable, "-c", _DIST],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")]
    assert p.returncode == 0 and lines, p.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT") :])
    assert out["mirrored_replicas"] == 2
    for label in ("mirrored", "one_device"):
        for n, v in out["plain"].items():
            assert out[label][n] == pytest.approx(v, rel=1e-5), (label, n)
