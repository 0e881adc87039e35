"""Zero-cost proxies: rank untrained networks from one forward/backward pass.

Why: training a candidate to convergence is what makes NAS expensive. Zero-cost proxies
(Abdelfattah et al., ICLR 2021; Mellor et al., ICML 2021) score an architecture at
initialisation in milliseconds to seconds, and some rank NAS-Bench-201 about as well as a
short training run. ``benchmarks/README.md`` has the measured rank correlations.

This module is the registry (the built-in proxies of :mod:`keras_nas.proxies.builtin` and those
added with ``register``) and the scoring API, ``score`` and ``score_many``. The model you pass is
never changed: the proxies work on copies (:mod:`keras_nas.proxies.working_copy`, which says how;
``reinit``, ``reinit_values`` and ``kernel_variables`` come from there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np

from keras_nas.proxies import builtin
from keras_nas.proxies.working_copy import (
    WorkingCopies,
    input_shape_of,
    kernel_variables,
    reinit,
    reinit_values,
)

__all__ = [
    "NAMES",
    "Proxy",
    "available",
    "kernel_variables",
    "register",
    "reinit",
    "reinit_values",
    "score",
    "score_many",
]


@dataclasses.dataclass(frozen=True)
class Proxy:
    """A registered proxy. ``fn(model, batch)`` gets a working copy of the model (re-initialised
    from the seed unless ``reinit=False``, final softmax removed) and ``batch`` as ``(x, y)``
    (y None when no labels were given; batch None for data-free proxies)."""

    name: str
    fn: Callable
    needs_batch: bool = False
    needs_labels: bool = False
    kind: str = (
        "user"  # "user" | "work" (built-in: gets WorkingCopies) | "static" (built-in: the model)
    )


_REGISTRY: dict = {}


def _add(p: Proxy):
    _REGISTRY[p.name] = p


for _p in (
    Proxy("synflow", builtin.synflow, kind="work"),
    Proxy("naswot", builtin.naswot, needs_batch=True, kind="work"),
    Proxy("jacob_cov", builtin.jacob_cov, needs_batch=True, kind="work"),
    Proxy("snip", builtin.snip, needs_batch=True, needs_labels=True, kind="work"),
    Proxy("grad_norm", builtin.grad_norm, needs_batch=True, needs_labels=True, kind="work"),
    Proxy("params", builtin.params, kind="static"),
    Proxy("flops", builtin.flops, kind="static"),
):
    _add(_p)

NAMES = tuple(_REGISTRY)  # the built-in proxies


def available() -> tuple:
    """Names of all proxies: the built-ins (``NAMES``) and those added with ``register``."""
    return tuple(_REGISTRY)


def register(
    name: str,
    fn: Callable,
    *,
    needs_batch: bool = False,
    needs_labels: bool = False,
    overwrite: bool = False,
) -> None:
    """Add proxy ``name``: ``fn(model, batch) -> float``, where ``model`` is a working copy that
    may be changed freely (re-initialised from the seed unless ``reinit=False``, final softmax
    removed) and ``batch`` is ``(x, y)`` (``y`` None without labels) or None."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"A proxy name must be a non-empty string, got {name!r}.")
    if not callable(fn):
        raise TypeError(f"register({name!r}, fn): fn must be callable(model, batch) -> float.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"Proxy {name!r} is already registered; pass overwrite=True to replace it."
        )
    _add(
        Proxy(
            name, fn, needs_batch=bool(needs_batch or needs_labels), needs_labels=bool(needs_labels)
        )
    )


def _lookup(name):
    if name not in _REGISTRY:
        raise ValueError(f"Unknown proxy {name!r}; valid proxies are {list(available())}.")
    return _REGISTRY[name]


def _split_batch(batch):
    if batch is None:
        return None
    if isinstance(batch, (tuple, list)):
        if len(batch) != 2:
            raise ValueError(f"batch must be x or (x, y); got a sequence of {len(batch)} items.")
        return batch[0], batch[1]
    return batch, None


def _check(proxy, batch):
    if proxy.needs_batch and batch is None:
        what = (
            "a labelled batch: pass batch=(x, y)"
            if proxy.needs_labels
            else "a batch of inputs: pass batch=x"
        )
        raise ValueError(
            f"Proxy {proxy.name!r} is data-dependent and needs {what}. Data-free proxies: "
            f"{[n for n, p in _REGISTRY.items() if not p.needs_batch]}."
        )
    if proxy.needs_labels and batch[1] is None:
        raise ValueError(
            f"Proxy {proxy.name!r} needs labels: pass batch=(x, y) with integer or one-hot labels."
        )
    if batch is not None and proxy.needs_batch and np.shape(batch[0])[0] < 2:
        raise ValueError(
            f"Proxy {proxy.name!r} compares inputs: the batch needs at least 2 examples."
        )


def _user_copy(work):
    """A model for a registered proxy: the clone with the working values assigned (the model
    itself only when it has no clone; it then keeps its own weights, as with reinit=False)."""
    m, values = work.get("float32")
    if m is not work.model:
        for v in m.weights:
            v.assign(values[id(v)])
    return m


def _score_model(model, names, batch, seed, do_reinit, input_shape):
    proxies = [_lookup(n) for n in names]
    for p in proxies:
        _check(p, batch)
    shape = input_shape_of(model, input_shape, None if batch is None else batch[0])
    work = WorkingCopies(model, seed, do_reinit)
    out = {}
    for p in proxies:
        if p.kind == "static":
            out[p.name] = p.fn(model, shape)
        elif p.kind == "work":
            out[p.name] = float(p.fn(work, batch, shape))
        else:
            out[p.name] = float(p.fn(_user_copy(work), batch))
    return out


def score(
    model, name: str, *, batch=None, seed: int = 0, reinit: bool = True, input_shape=None
) -> float:
    """Score ``model`` with proxy ``name`` (one of ``available()``); higher means predicted better.

    Args:
      model: a Keras model (any keras-nas builder's, or your own). It is not changed.
      name: 'synflow', 'naswot', 'jacob_cov', 'snip', 'grad_norm', 'params', 'flops' or a
        registered name.
      batch: inputs ``x`` (naswot, jacob_cov) or ``(x, y)`` with integer or one-hot labels (snip,
        grad_norm); used as given, in its order. Data-free proxies ignore it.
      seed: weights are re-drawn from this seed (``reinit``), so scores are reproducible and
        compare architectures rather than initialisations.
      reinit: False scores the model's current weights (e.g. a trained or loaded model).
      input_shape: ``(H, W, C)`` for synflow and flops when the model's input shape is not fully known.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"name must be a proxy name string; for several proxies use score_many. Got {name!r}."
        )
    return _score_model(model, [name], _split_batch(batch), seed, reinit, input_shape)[name]


def score_many(
    models,
    names=("synflow", "params", "flops"),
    *,
    batch=None,
    seed: int = 0,
    reinit: bool = True,
    input_shape=None,
) -> list:
    """Score several architectures with several proxies: one dict ``{name: score}`` per entry.

    ``models`` may hold Keras models or zero-argument builders (e.g.
    ``functools.partial(build_nb201_network, cell)``); a builder's model is built, scored and
    dropped, so a long list does not keep every model alive. Each model gets the same
    ``seed`` and ``batch``, so the scores equal ``score(model, name, ...)`` one by one.
    """
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    batch = _split_batch(batch)
    for n in names:
        _check(_lookup(n), batch)
    results = []
    for item in models:
        model = item() if callable(item) and not isinstance(item, keras.Model) else item
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"score_many: expected Keras models or builders returning one, got {type(model).__name__}."
            )
        results.append(_score_model(model, names, batch, seed, reinit, input_shape))
        del model
    return results
