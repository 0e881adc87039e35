"""TensorFlow's fused batch norm (``FusedBatchNormV3``) behind the ``keras_nas.kernels`` API.

One op forward and one gradient op instead of the ~10 + ~20 ops of the moments +
normalise formulation; oneDNN rewrites both to its native kernels on CPU, XLA and the
GPU/TPU backends have them too. Falls back to ``generic`` where the fused kernel does
not apply (rank other than 4, float64, epsilon below the kernel's minimum), so the
results never depend on the switch beyond float rounding.
"""

from __future__ import annotations

import tensorflow as tf

from keras_nas.kernels import generic

_MIN_EPSILON = 1.001e-5  # FusedBatchNormV3 rejects smaller epsilons
_FUSED_DTYPES = (tf.float16, tf.bfloat16, tf.float32)


def _applies(x, epsilon):
    return x.shape.rank == 4 and x.dtype in _FUSED_DTYPES and epsilon >= _MIN_EPSILON


def _f32(v):
    return tf.cast(v, tf.float32) if v.dtype != tf.float32 else v


def batch_norm_train(x, scale, offset, epsilon):
    x = tf.convert_to_tensor(x)
    if not _applies(x, epsilon):
        return generic.batch_norm_train(x, scale, offset, epsilon)
    empty = tf.constant([], tf.float32)
    y, mean, var, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=_f32(scale),
        offset=_f32(offset),
        mean=empty,
        variance=empty,
        epsilon=epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=True,
    )
    # The kernel returns the Bessel-corrected variance n/(n-1) * biased (0 when n == 1);
    # undo it so that moving averages match keras.layers.BatchNormalization.
    static = x.shape[:3]
    if static.is_fully_defined():
        n = float(static.num_elements())
        factor = (n - 1.0) / n
    else:
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
        factor = (n - 1.0) / tf.maximum(n, 1.0)
    return y, mean, var * factor


def batch_norm_infer(x, scale, offset, mean, variance, epsilon):
    x = tf.convert_to_tensor(x)
    if not _applies(x, epsilon):
        return generic.batch_norm_infer(x, scale, offset, mean, variance, epsilon)
    y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=_f32(scale),
        offset=_f32(offset),
        mean=_f32(mean),
        variance=_f32(variance),
        epsilon=epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=False,
    )
    return y
