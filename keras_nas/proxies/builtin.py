"""The built-in zero-cost proxies: synflow, naswot, jacob_cov, snip, grad_norm, params, flops.

Each docstring says what is computed and, where there is one, the paper it follows. The gradient
and activation proxies take the :class:`~keras_nas.proxies.working_copy.WorkingCopies` of the model
and never write a variable; ``params`` and ``flops`` read the model itself. They are registered
under their names by :mod:`keras_nas.proxies.core`, which checks the batch each one needs.
"""

from __future__ import annotations

import contextlib
import math

import keras
import numpy as np
import tensorflow as tf

from keras_nas.proxies.working_copy import (
    as_tensors,
    first_output,
    input_dtype,
    is_float,
    is_norm,
    kernel_variables,
    norm_value,
    stateless_run,
    sum_outputs,
)

_JACOB_K = 1e-5  # the eigenvalue offset of Mellor et al.'s jacob_cov score


def synflow(work, batch, input_shape):
    """Tanaka et al. 2020, as used for NAS by Abdelfattah et al. 2021: with |weights|, batch norm
    removed and an all-ones input, R = sum of the outputs; score = sum over kernels of
    theta * dR/dtheta. Data-free. Float64 (the products of |weights| overflow float32 in deep
    networks); a batch norm is made the exact identity (inference mode, mean 0, variance
    1 - epsilon, gamma 1, beta 0), which is what the reference's ``bn=False`` copy computes."""
    m, values = work.get("float64")
    eps = {}
    for layer in m._flatten_layers(include_self=False, recursive=True):
        e = getattr(layer, "epsilon", None)
        e = getattr(layer, "bn_epsilon", None) if e is None else e
        if e is not None:
            for v in layer.weights:
                eps[id(v)] = float(e)
    for v in m.weights:
        if not is_float(v):
            continue
        if is_norm(v):
            values[id(v)] = norm_value(v.name, tuple(v.shape), eps.get(id(v), 0.0)).astype(
                values[id(v)].dtype
            )
        else:
            values[id(v)] = np.abs(values[id(v)])
    values = as_tensors(values)
    kernels = [values[id(v)] for v in kernel_variables(m)]
    x = tf.ones((1, *input_shape), dtype=input_dtype(m, values, "float64"))
    with tf.GradientTape() as tape:
        tape.watch(kernels)
        r = sum_outputs(stateless_run(m, values, x, training=False))
    grads = tape.gradient(r, kernels)
    total = sum(
        float(tf.reduce_sum(tf.abs(tf.cast(k, tf.float64) * tf.cast(g, tf.float64))))
        for k, g in zip(kernels, grads)
        if g is not None
    )
    if not math.isfinite(total):
        raise FloatingPointError(
            f"{m.name}: synflow overflowed ({total}); the model could not be cloned to float64 "
            "(its get_config/from_config does not round-trip)."
        )
    return total


class _ReluCodes:
    """Accumulates the NASWOT kernel from every ReLU evaluated while active: for the binary
    code c (N x units) of a ReLU layer, K += c c^T + (1 - c)(1 - c)^T."""

    def __init__(self):
        self.k = None

    @contextlib.contextmanager
    def recording(self):
        from keras.src import backend as kb

        original = kb.nn.relu

        def relu(x):
            y = original(x)
            c = tf.cast(tf.reshape(y > 0, (tf.shape(y)[0], -1)), tf.float32)
            k = tf.matmul(c, c, transpose_b=True) + tf.matmul(1.0 - c, 1.0 - c, transpose_b=True)
            k = np.asarray(k, dtype=np.float64)
            self.k = k if self.k is None else self.k + k
            return y

        kb.nn.relu = relu
        try:
            yield self
        finally:
            kb.nn.relu = original


def naswot(work, batch, input_shape):
    """Mellor et al. 2021 ("NAS without training"): log|K_H| of the kernel K_H = N_A - d_H of
    the binary ReLU codes of one batch (N_A units minus the Hamming distance of two inputs'
    codes); higher when the untrained network already separates the inputs. Training-mode
    forward (batch statistics, as the reference's freshly built PyTorch modules)."""
    m, values = work.get("float32")
    values = as_tensors(values)
    x = tf.convert_to_tensor(np.asarray(batch[0]), dtype=input_dtype(m, values, "float32"))
    codes = _ReluCodes()
    with codes.recording():
        stateless_run(m, values, x, training=True)
    if codes.k is None:
        raise ValueError(
            f"{m.name}: naswot found no ReLU in the model (it scores ReLU activation patterns)."
        )
    sign, logdet = np.linalg.slogdet(codes.k)
    return float(logdet) if sign > 0 else float("-inf")


def jacob_cov(work, batch, input_shape):
    """Mellor et al. 2020 (v1), as in Abdelfattah et al.: the correlation matrix of the per-input
    Jacobians d(sum outputs)/dx over one batch; score = -sum(log(v + k) + 1/(v + k)) over its
    eigenvalues v, k = 1e-5. Higher when inputs get less correlated Jacobians."""
    m, values = work.get("float32")
    values = as_tensors(values)
    x = tf.convert_to_tensor(np.asarray(batch[0]), dtype=input_dtype(m, values, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(first_output(stateless_run(m, values, x, training=True)))
    grad = tape.gradient(s, x)
    if grad is None:  # the output does not depend on the input (no path through the cell)
        return float("nan")
    jac = np.asarray(grad, dtype=np.float64).reshape(x.shape[0], -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return float("nan")  # a constant Jacobian row: the correlation is undefined
    v = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(v + _JACOB_K) + 1.0 / (v + _JACOB_K)))


def _loss_grads(work, batch):
    m, values = work.get("float32")
    values = as_tensors(values)
    x, y = batch
    x = tf.convert_to_tensor(np.asarray(x), dtype=input_dtype(m, values, "float32"))
    y = np.asarray(y)
    kernels = [values[id(v)] for v in kernel_variables(m)]
    with tf.GradientTape() as tape:
        tape.watch(kernels)
        logits = tf.cast(first_output(stateless_run(m, values, x, training=True)), tf.float32)
        if y.ndim == logits.shape.rank:  # one-hot
            loss = keras.losses.categorical_crossentropy(
                y.astype("float32"), logits, from_logits=True
            )
        else:
            loss = keras.losses.sparse_categorical_crossentropy(
                y.astype("int64"), logits, from_logits=True
            )
        loss = tf.reduce_mean(loss)
    return kernels, tape.gradient(loss, kernels)


def snip(work, batch, input_shape):
    """Lee et al. 2019 (SNIP) as a NAS proxy: sum over kernels of |theta * dL/dtheta| for the
    cross-entropy L of one labelled batch (training-mode forward)."""
    kernels, grads = _loss_grads(work, batch)
    return float(
        sum(
            float(tf.reduce_sum(tf.abs(tf.cast(k, tf.float32) * g)))
            for k, g in zip(kernels, grads)
            if g is not None
        )
    )


def grad_norm(work, batch, input_shape):
    """Sum over kernels of the Euclidean norm of dL/dtheta (cross-entropy of one labelled batch)."""
    _, grads = _loss_grads(work, batch)
    return float(sum(float(tf.norm(g)) for g in grads if g is not None))


def params(model, input_shape):
    """Trainable parameters (NAS-Bench-201's and the papers' count; Keras' count_params() also
    counts batch-norm moving statistics)."""
    return float(sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights))


def flops(model, input_shape):
    """Multiply-adds of one example (``keras_nas.transfer.flops.count_mult_adds``: conv and dense)."""
    from keras_nas.transfer.flops import count_mult_adds

    return float(count_mult_adds(model, input_shape).mult_adds)
