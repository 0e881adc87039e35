"""Tests of keras_nas.kernels: the fused TensorFlow batch norm computes what the generic
keras.ops batch norm computes (outputs, batch statistics, gradients, moving averages), falls
back where the fused kernel does not apply, and the switch really changes the traced graph.

Why this file exists: the fused path is a speed optimisation; it must never change results
beyond float rounding, or a searched architecture would train differently depending on it.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from _timing import scaled

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from keras_nas import kernels  # noqa: E402
from keras_nas.blocks import build_network  # noqa: E402
from keras_nas.kernels import generic, tensorflow_backend  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def restore_switch():
    before = kernels._FUSED
    yield
    kernels.set_fused(before)


def _train_outputs(mod, x, gamma, beta, eps=1e-3):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, mean, var = mod.batch_norm_train(x, gamma, beta, eps)
        loss = tf.reduce_sum(
            tf.cast(y, tf.float32) * tf.cos(tf.cast(x, tf.float32))
        )  # non-trivial upstream grad
    return [y, mean, var] + tape.gradient(loss, [x, gamma, beta])


def _close(a, b, atol, name=""):
    np.testing.assert_allclose(
        np.asarray(a, np.float32), np.asarray(b, np.float32), atol=atol, rtol=atol, err_msg=name
    )


@pytest.mark.parametrize("shape", [(4, 5, 5, 7), (3, 2, 2, 4), (1, 1, 1, 3)])
def test_fused_train_matches_generic_values_stats_and_gradients(shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.0, 2.0, size=shape).astype("float32"))
    gamma = tf.Variable(rng.normal(size=shape[-1:]).astype("float32"))
    beta = tf.Variable(rng.normal(size=shape[-1:]).astype("float32"))
    fused = _train_outputs(tensorflow_backend, x, gamma, beta)
    ref = _train_outputs(generic, x, gamma, beta)
    for name, a, b in zip(["y", "mean", "variance", "dx", "dgamma", "dbeta"], fused, ref):
        _close(a, b, 1e-4 if name != "dx" else 1e-3, name)
    # The returned variance is the biased one (what normalises), not the kernel's n/(n-1) one.
    _close(fused[2], np.var(x.numpy().reshape(-1, shape[-1]), axis=0), 1e-4)


def test_fused_train_with_unknown_batch_size_and_float16_input():
    rng = np.random.default_rng(1)
    gamma = tf.constant(rng.normal(size=(4,)).astype("float32"))
    beta = tf.constant(rng.normal(size=(4,)).astype("float32"))
    fn = tf.function(
        lambda x: tensorflow_backend.batch_norm_train(x, gamma, beta, 1e-3),
        input_signature=[tf.TensorSpec((None, 3, 3, 4), tf.float32)],
    )
    x = tf.constant(rng.normal(size=(5, 3, 3, 4)).astype("float32"))
    for a, b in zip(fn(x), generic.batch_norm_train(x, gamma, beta, 1e-3)):
        _close(a, b, 1e-5)
    # Mixed precision: float16 activations, float32 scale/offset and float32 statistics.
    xh = tf.cast(x, tf.float16)
    y, mean, var = tensorflow_backend.batch_norm_train(xh, gamma, beta, 1e-3)
    assert y.dtype == tf.float16 and mean.dtype == tf.float32 and var.dtype == tf.float32
    ry, rmean, rvar = generic.batch_norm_train(xh, gamma, beta, 1e-3)
    _close(y, ry, 5e-3)
    _close(mean, rmean, 1e-5)
    _close(var, rvar, 1e-5)


def test_fused_infer_matches_generic():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(2, 4, 4, 6)).astype("float32"))
    args = [tf.constant(rng.random(6).astype("float32") + 0.5) for _ in range(4)]
    _close(
        tensorflow_backend.batch_norm_infer(x, *args, 1e-3),
        generic.batch_norm_infer(x, *args, 1e-3),
        1e-5,
    )


@pytest.mark.parametrize(
    "shape,dtype,eps",
    [((6, 5), "float32", 1e-3), ((2, 3, 3, 4), "float64", 1e-3), ((2, 3, 3, 4), "float32", 1e-6)],
    ids=["rank2", "float64", "tiny-epsilon"],
)
def test_fused_path_falls_back_where_the_kernel_does_not_apply(shape, dtype, eps):
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=shape).astype(dtype))
    gamma = tf.constant(np.ones(shape[-1], dtype))
    beta = tf.constant(np.zeros(shape[-1], dtype))
    y, mean, var = tensorflow_backend.batch_norm_train(x, gamma, beta, eps)
    assert y.dtype == x.dtype
    flat = x.numpy().reshape(-1, shape[-1])
    _close(mean, flat.mean(0), 1e-5)
    _close(np.reshape(y, flat.shape), (flat - flat.mean(0)) / np.sqrt(flat.var(0) + eps), 1e-4)


def _one_step(fused, x, y, weights=None):
    kernels.set_fused(fused)
    keras.utils.set_random_seed(0)
    model = build_network(
        "nasnet_a", input_shape=(16, 16, 3), num_classes=3, num_cells=1, filters=4
    )
    if weights is not None:
        model.set_weights(weights)
    start = [w.copy() for w in model.get_weights()]
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    loss = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])
    graph = (
        tf.function(lambda t: model(t, training=True))
        .get_concrete_function(tf.TensorSpec((None, 16, 16, 3), tf.float32))
        .graph
    )
    op_types = {op.type for op in graph.get_operations()}
    return start, loss, model.get_weights(), op_types


def test_network_training_step_is_the_same_with_and_without_fused_kernels(restore_switch):
    rng = np.random.default_rng(4)
    x = rng.random((6, 16, 16, 3), dtype=np.float32)
    y = rng.integers(0, 3, 6)
    start, loss_f, after_f, ops_f = _one_step(True, x, y)
    _, loss_g, after_g, ops_g = _one_step(False, x, y, weights=start)
    assert "FusedBatchNormV3" in ops_f and "FusedBatchNormV3" not in ops_g
    assert np.isfinite(loss_f) and abs(loss_f - loss_g) < 1e-4 * max(1.0, abs(loss_g))
    changed = 0
    for a, b, s in zip(after_f, after_g, start):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-3)  # weights and BN moving statistics
        changed += not np.allclose(a, s)
    assert changed > len(start) // 2  # the step really updated weights and statistics


def test_mixed_precision_network_trains_with_fused_kernels(restore_switch):
    kernels.set_fused(True)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_network(
            "amoebanet_a",
            input_shape=(32, 32, 3),
            num_classes=3,
            num_cells=1,
            filters=4,
            aux_head=True,
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=False)
        rng = np.random.default_rng(5)
        x, y = rng.random((4, 32, 32, 3), dtype=np.float32), rng.integers(0, 3, 4)
        loss = float(np.asarray(model.train_on_batch(x, [y, y])).ravel()[0])
        assert np.isfinite(loss)
        assert all(w.dtype == "float32" for w in model.weights)  # variables stay float32
        outs = model(x[:2], training=False)  # main and auxiliary classifiers compute in float32
        assert [o.dtype for o in outs] == ["float32", "float32"]
        assert [o.dtype for o in model.outputs] == ["float32", "float32"]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_environment_variable_switches_fused_kernels_off():
    code = "from keras_nas import kernels; print(kernels.fused_enabled())"
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    outs = {}
    for value in ("0", "1"):
        env["KERAS_NAS_FUSED_KERNELS"] = value
        r = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=scaled(120),
        )
        assert r.returncode == 0, r.stderr
        outs[value] = r.stdout.strip().splitlines()[-1]
    assert outs == {"0": "False", "1": "True"}
    env["KERAS_NAS_FUSED_KERNELS"] = (
        "flase"  # a typo is an error naming the variable and the fix, not "on"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=scaled(120)
    )
    assert r.returncode != 0 and "KERAS_NAS_FUSED_KERNELS='flase' is not understood" in r.stderr
    assert "set it to 1" in r.stderr
