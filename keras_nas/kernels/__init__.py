"""Backend fast paths for the arithmetic inside keras-nas blocks.

Why this package exists: ``keras_nas.blocks`` is backend-agnostic Keras 3, and Keras 3
computes batch norm as separate moments + normalise ops (tf.keras 2 used TensorFlow's
fused kernel by default). On TensorFlow, one ``FusedBatchNormV3`` op per batch norm (and
one gradient op) makes a NASNet training step measurably faster and shortens tracing
(``benchmarks/README.md``, "build_and_train"). Blocks call the functions below; they
run the backend's fused kernel where one exists (TensorFlow) and the generic
``keras.ops`` formulation everywhere else, with the same math: normalisation by the
biased batch variance, which is also what is returned for the moving averages.

Switch the fast path off with ``set_fused(False)`` or ``KERAS_NAS_FUSED_KERNELS=0`` in
the environment (e.g. to compare numerics); it is read when a model is traced.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import keras

from keras_nas.kernels import generic

__all__ = ["batch_norm_train", "batch_norm_infer", "set_fused", "fused_enabled"]

_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _fused_from_env(value: str) -> bool:
    v = value.strip().lower()
    if v in _ON or v in _OFF:
        return v in _ON
    raise ValueError(
        f"KERAS_NAS_FUSED_KERNELS={value!r} is not understood: set it to 1 (use the backend's fused kernels, "
        "the default) or 0 (generic keras.ops kernels), or unset it."
    )


_FUSED = _fused_from_env(os.environ.get("KERAS_NAS_FUSED_KERNELS", "1"))


def set_fused(enabled: bool) -> None:
    """Use (True, the default) or bypass (False) the backend's fused kernels for models traced from now on."""
    global _FUSED
    _FUSED = bool(enabled)


def fused_enabled() -> bool:
    """Whether the fused kernels would be used now (switch on and a backend that has them)."""
    return _FUSED and keras.backend.backend() == "tensorflow"


@functools.lru_cache(maxsize=None)
def _tensorflow_module():
    # Absent from the standalone bundles written by ``keras_nas.export`` (they compute with the
    # generic kernels); only its absence selects the fallback, an ImportError inside it is raised.
    if importlib.util.find_spec(f"{__name__}.tensorflow_backend") is None:
        return generic
    from keras_nas.kernels import tensorflow_backend

    return tensorflow_backend


def _impl():
    return _tensorflow_module() if fused_enabled() else generic


def batch_norm_train(x, scale, offset, epsilon):
    """Training-mode batch norm over all axes but the last.

    ``scale``/``offset`` may be float32 while ``x`` is float16/bfloat16 (mixed precision).
    Returns ``(y, batch_mean, batch_variance)``; the statistics are float32 and the variance
    is the biased one used to normalise (as ``keras.layers.BatchNormalization``).
    """
    return _impl().batch_norm_train(x, scale, offset, epsilon)


def batch_norm_infer(x, scale, offset, mean, variance, epsilon):
    """Inference-mode batch norm with the given (moving) statistics."""
    return _impl().batch_norm_infer(x, scale, offset, mean, variance, epsilon)
