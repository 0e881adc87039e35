"""Working copies of a model for the zero-cost proxies: scoring never changes the model.

How the model you pass is protected: gradient proxies work on a clone rebuilt from
``get_config()`` (in float64 for synflow, whose products of |weights| overflow float32), with
a final softmax removed so that gradients see the logits (a softmax output sums to 1 for
every input). The weights are passed as values to ``stateless_call`` and gradients are taken
with respect to those values, so no variable is written: the model stays as it was (also a
model that cannot be cloned, which is then called itself), and mirrored variables under a
``tf.distribute`` strategy need no replica context. ``reinit=True`` (the default) re-draws
the weights from ``seed`` so that a score depends on the architecture and the seed only;
see ``reinit``.

Also here: the variables the gradient proxies sum over (``kernel_variables``) and the
deterministic re-initialisation (``reinit``, ``reinit_values``). Why a module of its own: every
built-in proxy (:mod:`keras_nas.proxies.builtin`) works on these copies, and the registry
(:mod:`keras_nas.proxies.core`) makes them once per scoring call.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math

import keras
import numpy as np
import tensorflow as tf

# Variable names of normalisation layers: keras.layers.BatchNormalization / LayerNormalization and
# keras-nas' packed batch norms ("*gamma_beta" rows gamma, beta, ...; "*moving_mean_variance" rows mean, var, ...).
_NORM_NAMES = frozenset({"gamma", "beta", "moving_mean", "moving_variance"})
_PACKED_AFFINE, _PACKED_STATS = "gamma_beta", "moving_mean_variance"


def is_norm(v) -> bool:
    n = v.name
    return n in _NORM_NAMES or n.endswith((_PACKED_AFFINE, _PACKED_STATS))


def is_float(v) -> bool:
    return "float" in str(v.dtype)


def kernel_variables(model) -> list:
    """The weights the gradient proxies sum over: trainable float variables of rank >= 2 that do
    not belong to a normalisation layer, i.e. conv, depthwise/pointwise and dense kernels (the
    reference implementations sum over ``Conv2d`` and ``Linear`` weights; biases are left out)."""
    return [
        v
        for v in model.weights
        if v.trainable and is_float(v) and len(v.shape) >= 2 and not is_norm(v)
    ]


def norm_value(name, shape, epsilon=None):
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
        if not is_float(v):
            value = np.asarray(v.numpy())
        elif is_norm(v):
            value = norm_value(v.name, shape)
        elif v.trainable and len(shape) >= 2:
            fan_in = max(1, math.prod(shape[:-1]))
            value = np.random.default_rng([int(seed), i]).standard_normal(shape) * math.sqrt(
                2.0 / fan_in
            )
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
        if is_float(v):
            v.assign(np.asarray(value).astype(str(v.dtype)))


_FLOAT_POLICIES = frozenset(
    {"float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16"}
)


def _rewrite_config(cfg, dtype, strip: set):
    """Deep-copied config with every float dtype policy set to ``dtype`` and the softmax of the
    layers named in ``strip`` replaced by a linear activation."""

    def walk(node):
        if isinstance(node, dict):
            policy = (
                node.get("config")
                if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
                else None
            )
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
            layer.update(
                module="keras.layers",
                class_name="Activation",
                registered_name=None,
                config={"name": c["name"], "activation": "linear", "dtype": c.get("dtype", dtype)},
            )
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


class WorkingCopies:
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
            src = (
                reinit_values(m, self.seed)
                if self.do_reinit
                else [np.asarray(v.numpy()) for v in self.model.weights]
            )
            self._copies[dtype] = (
                m,
                [np.asarray(x).astype(str(v.dtype)) for x, v in zip(src, m.weights)],
            )
        m, vals = self._copies[dtype]
        return m, {id(v): x.copy() for v, x in zip(m.weights, vals)}


def stateless_run(model, values: dict, x, training):
    """``model(x)`` with the variables taking ``values`` (tensors, id(variable) -> value)."""
    tv = [values[id(v)] for v in model.trainable_variables]
    ntv = [values[id(v)] for v in model.non_trainable_variables]
    out, _ = model.stateless_call(
        tv, ntv, x, **({"training": training} if _takes_training(model) else {})
    )
    return out


def _takes_training(model) -> bool:
    params = inspect.signature(model.call).parameters.values()
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def as_tensors(values: dict) -> dict:
    return {k: tf.constant(v) for k, v in values.items()}


def input_shape_of(model, input_shape, batch_x):
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


def sum_outputs(out):
    return tf.add_n([tf.reduce_sum(o) for o in tf.nest.flatten(out)])


def first_output(out):
    return tf.nest.flatten(out)[0]


def input_dtype(m, values, default):
    floats = [tf.as_dtype(values[id(v)].dtype).name for v in m.weights if is_float(v)]
    return floats[0] if floats else default
