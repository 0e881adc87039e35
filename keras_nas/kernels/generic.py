"""Batch norm written with ``keras.ops`` only: runs on every Keras backend.

The reference formulation for ``keras_nas.kernels``: statistics in float32 (the dynamic
range of float16 is too small for them), normalisation in the input's dtype, exactly as
``keras.layers.BatchNormalization`` computes it.
"""

from __future__ import annotations

from keras import ops


def _as(v, dtype):
    return v if v.dtype == dtype else ops.cast(v, dtype)


def batch_norm_train(x, scale, offset, epsilon):
    axes = list(range(len(x.shape) - 1))
    mean, var = ops.moments(_as(x, "float32"), axes=axes)
    y = ops.batch_normalization(
        x,
        _as(mean, x.dtype),
        _as(var, x.dtype),
        axis=-1,
        offset=_as(offset, x.dtype),
        scale=_as(scale, x.dtype),
        epsilon=epsilon,
    )
    return y, mean, var


def batch_norm_infer(x, scale, offset, mean, variance, epsilon):
    d = x.dtype
    return ops.batch_normalization(
        x,
        _as(mean, d),
        _as(variance, d),
        axis=-1,
        offset=_as(offset, d),
        scale=_as(scale, d),
        epsilon=epsilon,
    )
