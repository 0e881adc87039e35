"""Zero-cost proxies: rank untrained networks from one forward/backward pass.

Why: training a candidate to convergence is what makes NAS expensive. Zero-cost proxies
(Abdelfattah et al., ICLR 2021; Mellor et al., ICML 2021) score an architecture at
initialisation in milliseconds to seconds, and some rank NAS-Bench-201 about as well as a
short training run. ``benchmarks/README.md`` has the measured rank correlations.

How the model you pass is protected: gradient proxies work on a clone rebuilt from
``get_config()`` (in float64 for synflow, whose products of |weights| overflow float32), with
a final softmax removed so that gradients see the logits (a softmax output sums to 1 for
every input). The weights are passed as values to ``stateless_call`` and gradients are taken
with respect to those values, so no variable is written: the model stays as it was (also a
model that cannot be cloned, which is then called itself), and mirrored variables under a
``tf.distribute`` strategy need no replica context. ``reinit=True`` (the default) re-draws
the weights from ``seed`` so that a score depends on the architecture and the seed only;
see ``reinit``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

__all__ = ["NAMES", "Proxy", "available", "kernel_variables", "register", "reinit", "reinit_values", "score", "score_many"]

# Variable names of normalisation layers: keras.layers.BatchNormalization / LayerNormalization and
# keras-nas' packed batch norms ("*gamma_beta" rows gamma, beta, ...; "*moving_mean_variance" rows mean, var, ...).
_NORM_NAMES = frozenset({"gamma", "beta", "moving_mean", "moving_variance"})
_PACKED_AFFINE, _PACKED_STATS = "gamma_beta", "moving_mean_variance"
_JACOB_K = 1e-5  # the eigenvalue offset of Mellor et al.'s jacob_cov score


def _is_norm(v) -> bool:
    n = v.name
    return n in _NORM_NAMES or n.endswith((_PACKED_AFFINE, _PACKED_STATS))


def _is_float(v) -> bool:
    return "float" in str(v.dtype)


def kernel_variables(model) -> list:
    """The weights the gradient proxies sum over: trainable float variables of rank >= 2 that do
    not belong to a normalisation layer, i.e. conv, depthwise/pointwise and dense kernels (the
    reference implementations sum over ``Conv2d`` and ``Linear`` weights; biases are left out)."""
    return [v for v in model.weights if v.trainable and _is_float(v) and len(v.shape) >= 2 and not _is_norm(v)]


# ----------------------------------------------------------------------------- working copies
def _norm_value(name, shape, epsilon=None):
    """A fresh normalisation variable: gamma 1, beta 0, mean 0, variance 1 (or 1 - epsilon, which
    makes an inference-mode batch norm the exact identity)."""
    var = 1.0 if epsilon is None else 1.0 - epsilon
    if name.endswith((_PACKED_AFFINE, _PACKED_STATS)):
        first, second = (1.0, 0.0) if name.endswith(_PACKED_AFFINE) else (0.0, var)
        rows = [np.full(shape[1:], first if r % 2 == 0 else second) for r in range(shape[0])]
        return np.stack(rows)
    fill = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": var}[name]
    return np.full(shape, fill)


def reinit_values(model, seed: int = 0) -> list:
    """The values ``reinit`` gives ``model.weights``, as float64 numpy arrays (unchanged
    variables: their current value)."""
    out = []
    for i, v in enumerate(model.weights):
        shape = tuple(int(d) for d in v.shape)
        if not _is_float(v):
            value = np.asarray(v.numpy())
        elif _is_norm(v):
            value = _norm_value(v.name, shape)
        elif v.trainable and len(shape) >= 2:
            fan_in = max(1, math.prod(shape[:-1]))
            value = np.random.default_rng([int(seed), i]).standard_normal(shape) * math.sqrt(2.0 / fan_in)
        elif v.trainable:
            value = np.zeros(shape)
        else:
            value = np.asarray(v.numpy())
        out.append(value)
    return out


def reinit(model, seed: int = 0) -> None:
    """Re-draw ``model``'s weights deterministically from ``seed``, independent of the session.

    Kernels (see ``kernel_variables``): He-normal, std sqrt(2 / fan_in) with fan_in the product
    of all but the last dimension (Keras' convention), drawn from a generator seeded with
    (seed, position of the variable in ``model.weights``). Normalisation layers: gamma 1,
    beta 0, moving mean 0, moving variance 1. Other trainable variables (biases): 0. Other
    non-trainable state (counters, seed-generator states) is left alone. The proxies use
    these values without assigning them (``score(..., reinit=True)``).
    """
    for v, value in zip(model.weights, reinit_values(model, seed)):
        if _is_float(v):
            v.assign(np.asarray(value).astype(str(v.dtype)))


_FLOAT_POLICIES = frozenset({"float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16"})


def _rewrite_config(cfg, dtype, strip: set):
    """Deep-copied config with every float dtype policy set to ``dtype`` and the softmax of the
    layers named in ``strip`` replaced by a linear activation."""
    def walk(node):
        if isinstance(node, dict):
            policy = node.get("config") if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") else None
            if isinstance(policy, dict) and policy.get("name") in _FLOAT_POLICIES:
                policy["name"] = dtype
            for k, val in list(node.items()):
                if k == "dtype" and isinstance(val, str) and val in _FLOAT_POLICIES:
                    node[k] = dtype
                else:
                    walk(val)
        elif isinstance(node, (list, tuple)):
            for val in node:
                walk(val)

    cfg = copy.deepcopy(cfg)
    walk(cfg)
    for layer in cfg.get("layers", []):
        c = layer.get("config", {})
        if c.get("name") not in strip:
            continue
        if c.get("activation") == "softmax":
            c["activation"] = "linear"
        elif layer.get("class_name") == "Softmax":
            layer.update(module="keras.layers", class_name="Activation", registered_name=None,
                         config={"name": c["name"], "activation": "linear", "dtype": c.get("dtype", dtype)})
    return cfg


def _output_layer_names(model, cfg) -> set:
    if "output_layers" in cfg:  # functional
        outs = cfg["output_layers"]
        if outs and isinstance(outs[0], str):  # a single [name, node, tensor] triple
            outs = [outs]
        return {o[0] for o in outs}
    layers = cfg.get("layers", [])  # Sequential
    return {layers[-1]["config"]["name"]} if layers else set()


@contextlib.contextmanager
def _dtype_policy(dtype):
    # Layers that create sub-layers in build() (keras-nas cells) take the global policy.
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _clone(model, dtype):
    """A rebuilt copy of ``model`` computing in ``dtype`` without a final softmax, or None when
    the model cannot be rebuilt from its config (then the model itself is called, with the working
    values; float32 only, so synflow may overflow)."""
    try:
        cfg = model.get_config()
        cfg = _rewrite_config(cfg, dtype, _output_layer_names(model, cfg))
        with _dtype_policy(dtype):
            clone = type(model).from_config(cfg)
            if len(clone.weights) != len(model.weights) and model.inputs:
                clone(np.zeros((1, *model.inputs[0].shape[1:]), dtype), training=False)
    except Exception:  # noqa: BLE001 - any model whose config does not round-trip is called itself
        return None
    if [tuple(v.shape) for v in clone.weights] != [tuple(v.shape) for v in model.weights]:
        return None
    return clone


class _Work:
    """Working copies of one model for one scoring call: per dtype, a clone (or the model itself
    when it cannot be cloned) and the values its variables take, re-drawn from the seed or
    copied from the model. Proxies run ``stateless_call`` with these values and differentiate
    with respect to them, so no variable is ever written (the model stays as it is, and
    mirrored variables under a ``tf.distribute`` strategy need no replica context)."""

    def __init__(self, model, seed, do_reinit):
        self.model, self.seed, self.do_reinit = model, int(seed), bool(do_reinit)
        self._copies: dict = {}

    def get(self, dtype="float32"):
        """(model, {id(variable): value}) with fresh numpy values the caller may change."""
        if dtype not in self._copies:
            clone = _clone(self.model, dtype)
            m = self.model if clone is None else clone
            src = reinit_values(m, self.seed) if self.do_reinit else [np.asarray(v.numpy()) for v in self.model.weights]
            self._copies[dtype] = (m, [np.asarray(x).astype(str(v.dtype)) for x, v in zip(src, m.weights)])
        m, vals = self._copies[dtype]
        return m, {id(v): x.copy() for v, x in zip(m.weights, vals)}


def _run(model, values: dict, x, training):
    """``model(x)`` with the variables taking ``values`` (tensors, id(variable) -> value)."""
    tv = [values[id(v)] for v in model.trainable_variables]
    ntv = [values[id(v)] for v in model.non_trainable_variables]
    out, _ = model.stateless_call(tv, ntv, x, **({"training": training} if _takes_training(model) else {}))
    return out


def _takes_training(model) -> bool:
    params = inspect.signature(model.call).parameters.values()
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _tensors(values: dict) -> dict:
    return {k: tf.constant(v) for k, v in values.items()}


def _input_shape(model, input_shape, batch_x):
    if input_shape is not None:
        return tuple(int(d) for d in input_shape)
    if batch_x is not None:
        return tuple(np.shape(batch_x)[1:])
    try:
        shapes = [tuple(t.shape[1:]) for t in model.inputs]
    except (AttributeError, ValueError):
        shapes = []
    if len(shapes) != 1 or any(d is None for d in shapes[0]):
        raise ValueError(
            f"{model.name}: cannot read one fully known input shape from the model (got {shapes}); "
            "pass input_shape=(H, W, C)."
        )
    return shapes[0]


def _sum_outputs(out):
    return tf.add_n([tf.reduce_sum(o) for o in tf.nest.flatten(out)])


def _first_output(out):
    return tf.nest.flatten(out)[0]


# ----------------------------------------------------------------------------- the proxies
def _input_dtype(m, values, default):
    floats = [tf.as_dtype(values[id(v)].dtype).name for v in m.weights if _is_float(v)]
    return floats[0] if floats else default


def _synflow(work, batch, input_shape):
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
        if not _is_float(v):
            continue
        if _is_norm(v):
            values[id(v)] = _norm_value(v.name, tuple(v.shape), eps.get(id(v), 0.0)).astype(values[id(v)].dtype)
        else:
            values[id(v)] = np.abs(values[id(v)])
    values = _tensors(values)
    kernels = [values[id(v)] for v in kernel_variables(m)]
    x = tf.ones((1, *input_shape), dtype=_input_dtype(m, values, "float64"))
    with tf.GradientTape() as tape:
        tape.watch(kernels)
        r = _sum_outputs(_run(m, values, x, training=False))
    grads = tape.gradient(r, kernels)
    total = sum(float(tf.reduce_sum(tf.abs(tf.cast(k, tf.float64) * tf.cast(g, tf.float64))))
                for k, g in zip(kernels, grads) if g is not None)
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


def _naswot(work, batch, input_shape):
    """Mellor et al. 2021 ("NAS without training"): log|K_H| of the kernel K_H = N_A - d_H of
    the binary ReLU codes of one batch (N_A units minus the Hamming distance of two inputs'
    codes); higher when the untrained network already separates the inputs. Training-mode
    forward (batch statistics, as the reference's freshly built PyTorch modules)."""
    m, values = work.get("float32")
    values = _tensors(values)
    x = tf.convert_to_tensor(np.asarray(batch[0]), dtype=_input_dtype(m, values, "float32"))
    codes = _ReluCodes()
    with codes.recording():
        _run(m, values, x, training=True)
    if codes.k is None:
        raise ValueError(f"{m.name}: naswot found no ReLU in the model (it scores ReLU activation patterns).")
    sign, logdet = np.linalg.slogdet(codes.k)
    return float(logdet) if sign > 0 else float("-inf")


def _jacob_cov(work, batch, input_shape):
    """Mellor et al. 2020 (v1), as in Abdelfattah et al.: the correlation matrix of the per-input
    Jacobians d(sum outputs)/dx over one batch; score = -sum(log(v + k) + 1/(v + k)) over its
    eigenvalues v, k = 1e-5. Higher when inputs get less correlated Jacobians."""
    m, values = work.get("float32")
    values = _tensors(values)
    x = tf.convert_to_tensor(np.asarray(batch[0]), dtype=_input_dtype(m, values, "float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(_first_output(_run(m, values, x, training=True)))
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
    values = _tensors(values)
    x, y = batch
    x = tf.convert_to_tensor(np.asarray(x), dtype=_input_dtype(m, values, "float32"))
    y = np.asarray(y)
    kernels = [values[id(v)] for v in kernel_variables(m)]
    with tf.GradientTape() as tape:
        tape.watch(kernels)
        logits = tf.cast(_first_output(_run(m, values, x, training=True)), tf.float32)
        if y.ndim == logits.shape.rank:  # one-hot
            loss = keras.losses.categorical_crossentropy(y.astype("float32"), logits, from_logits=True)
        else:
            loss = keras.losses.sparse_categorical_crossentropy(y.astype("int64"), logits, from_logits=True)
        loss = tf.reduce_mean(loss)
    return kernels, tape.gradient(loss, kernels)


def _snip(work, batch, input_shape):
    """Lee et al. 2019 (SNIP) as a NAS proxy: sum over kernels of |theta * dL/dtheta| for the
    cross-entropy L of one labelled batch (training-mode forward)."""
    kernels, grads = _loss_grads(work, batch)
    return float(sum(float(tf.reduce_sum(tf.abs(tf.cast(k, tf.float32) * g))) for k, g in zip(kernels, grads)
                     if g is not None))


def _grad_norm(work, batch, input_shape):
    """Sum over kernels of the Euclidean norm of dL/dtheta (cross-entropy of one labelled batch)."""
    _, grads = _loss_grads(work, batch)
    return float(sum(float(tf.norm(g)) for g in grads if g is not None))


def _params(model, input_shape):
    """Trainable parameters (NAS-Bench-201's and the papers' count; Keras' count_params() also
    counts batch-norm moving statistics)."""
    return float(sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights))


def _flops(model, input_shape):
    """Multiply-adds of one example (``keras_nas.transfer.flops.count_mult_adds``: conv and dense)."""
    from keras_nas.transfer.flops import count_mult_adds

    return float(count_mult_adds(model, input_shape).mult_adds)


# ----------------------------------------------------------------------------- registry and API
@dataclasses.dataclass(frozen=True)
class Proxy:
    """A registered proxy. ``fn(model, batch)`` gets a working copy of the model (re-initialised
    from the seed unless ``reinit=False``, final softmax removed) and ``batch`` as ``(x, y)``
    (y None when no labels were given; batch None for data-free proxies)."""

    name: str
    fn: Callable
    needs_batch: bool = False
    needs_labels: bool = False
    kind: str = "user"  # "user" | "work" (built-in, gets the _Work) | "static" (built-in, gets the model)


_REGISTRY: dict = {}


def _add(p: Proxy):
    _REGISTRY[p.name] = p


for _p in (
    Proxy("synflow", _synflow, kind="work"),
    Proxy("naswot", _naswot, needs_batch=True, kind="work"),
    Proxy("jacob_cov", _jacob_cov, needs_batch=True, kind="work"),
    Proxy("snip", _snip, needs_batch=True, needs_labels=True, kind="work"),
    Proxy("grad_norm", _grad_norm, needs_batch=True, needs_labels=True, kind="work"),
    Proxy("params", _params, kind="static"),
    Proxy("flops", _flops, kind="static"),
):
    _add(_p)

NAMES = tuple(_REGISTRY)  # the built-in proxies


def available() -> tuple:
    """Names of all proxies: the built-ins (``NAMES``) and those added with ``register``."""
    return tuple(_REGISTRY)


def register(name: str, fn: Callable, *, needs_batch: bool = False, needs_labels: bool = False,
             overwrite: bool = False) -> None:
    """Add proxy ``name``: ``fn(model, batch) -> float``, where ``model`` is a working copy that
    may be changed freely (re-initialised from the seed unless ``reinit=False``, final softmax
    removed) and ``batch`` is ``(x, y)`` (``y`` None without labels) or None."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"A proxy name must be a non-empty string, got {name!r}.")
    if not callable(fn):
        raise TypeError(f"register({name!r}, fn): fn must be callable(model, batch) -> float.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"Proxy {name!r} is already registered; pass overwrite=True to replace it.")
    _add(Proxy(name, fn, needs_batch=bool(needs_batch or needs_labels), needs_labels=bool(needs_labels)))


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
        what = "a labelled batch: pass batch=(x, y)" if proxy.needs_labels else "a batch of inputs: pass batch=x"
        raise ValueError(f"Proxy {proxy.name!r} is data-dependent and needs {what}. Data-free proxies: "
                         f"{[n for n, p in _REGISTRY.items() if not p.needs_batch]}.")
    if proxy.needs_labels and batch[1] is None:
        raise ValueError(f"Proxy {proxy.name!r} needs labels: pass batch=(x, y) with integer or one-hot labels.")
    if batch is not None and proxy.needs_batch and np.shape(batch[0])[0] < 2:
        raise ValueError(f"Proxy {proxy.name!r} compares inputs: the batch needs at least 2 examples.")


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
    shape = _input_shape(model, input_shape, None if batch is None else batch[0])
    work = _Work(model, seed, do_reinit)
    out = {}
    for p in proxies:
        if p.kind == "static":
            out[p.name] = p.fn(model, shape)
        elif p.kind == "work":
            out[p.name] = float(p.fn(work, batch, shape))
        else:
            out[p.name] = float(p.fn(_user_copy(work), batch))
    return out


def score(model, name: str, *, batch=None, seed: int = 0, reinit: bool = True, input_shape=None) -> float:
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
        raise TypeError(f"name must be a proxy name string; for several proxies use score_many. Got {name!r}.")
    return _score_model(model, [name], _split_batch(batch), seed, reinit, input_shape)[name]


def score_many(models, names=("synflow", "params", "flops"), *, batch=None, seed: int = 0, reinit: bool = True,
               input_shape=None) -> list:
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
            raise TypeError(f"score_many: expected Keras models or builders returning one, got {type(model).__name__}.")
        results.append(_score_model(model, names, batch, seed, reinit, input_shape))
        del model
    return results
