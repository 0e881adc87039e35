"""The scorer behind ``proxy="synflow"`` (any ``keras_nas.proxies`` name) in keras-nas tuners.

Why here: the oracle only sees hyperparameter values; a proxy name needs the candidate's Keras
model (and, for data-dependent proxies such as ``naswot``, one batch of data). The tuner has both:
at the start of ``search()`` it installs a scorer on the oracle's
:class:`~keras_nas.controllers.proxy_assisted.ProxyAssisted` controller that builds each candidate
with the tuner's hypermodel and scores it with :func:`keras_nas.proxies.score` (weights re-drawn
from the search seed, so a score depends on the architecture only). The batch is the first batch
of ``search()``'s training data (a ``tf.data.Dataset``'s first element, or the first
``batch_size`` rows of arrays); data-free proxies (synflow, params, flops) ignore it.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BATCH = 32


def first_batch(fit_args, fit_kwargs):
    """``(x, y)`` (y None without labels) of the first training batch, or None when there is none
    (a generator or ``keras.utils.PyDataset`` is not consumed)."""
    x = fit_args[0] if fit_args else fit_kwargs.get("x")
    y = fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y")
    if x is None:
        return None
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        elem = next(iter(x.take(1)))
        if isinstance(elem, (tuple, list)):
            return np.asarray(elem[0]), (np.asarray(elem[1]) if len(elem) > 1 else None)
        return np.asarray(elem), None
    if isinstance(x, (np.ndarray, tf.Tensor)) or hasattr(x, "__array__"):
        n = int(fit_kwargs.get("batch_size") or DEFAULT_BATCH)
        return np.asarray(x[:n]), (None if y is None else np.asarray(y[:n]))
    return None


def make_scorer(tuner, name: str, batch, seed: int):
    """``values -> float``: build the candidate with ``tuner``'s hypermodel and score it with proxy ``name``."""
    from keras_nas import proxies

    def score(values) -> float:
        hp = tuner.oracle.get_space()
        hp.values = dict(values)
        model = tuner.build_hypermodel(hp)
        return proxies.score(model, name, batch=batch, seed=seed)

    return score


def install(tuner, fit_args, fit_kwargs) -> None:
    """Give the oracle's proxy-assisted controller a scorer for its proxy name (chief / single process)."""
    oracle = tuner.oracle
    name = getattr(oracle, "proxy_name", None)
    ctrl = getattr(oracle, "controller", None)
    if tuner.is_worker or not name or ctrl is None or getattr(ctrl, "proxy", None) is not None:
        return
    ctrl.set_proxy(
        make_scorer(tuner, name, first_batch(fit_args, fit_kwargs), int(oracle.seed or 0))
    )
