"""Parameter and multiply-add reports for built Keras models.

Why: NAS papers compare architectures by parameters and multiply-adds (NASNet-A 4@1056 at
224: 5.3M / 564M). Keras gives parameter counts but no mult-add counter, so this module
counts them the way the NASNet paper does: only convolutions and dense layers
(``Conv*``, ``DepthwiseConv2D``, ``SeparableConv2D``, ``Dense``); pooling, batch norm,
activations and additions are left out.

How: the model is run once on a zero batch of size 1 while ``Layer.__call__`` is wrapped,
so every call of a counted layer is seen with its real input and output shapes: nested
models, sub-layers called inside custom layers and shared layers called several times
are all counted, once per call. Custom layers that compute with raw public ops on their
own weights (keras-nas cells: ``keras.ops.conv``, ``separable_conv``, ``depthwise_conv``,
``conv_transpose`` and ``matmul`` by a weight variable) are counted by wrapping those
``keras.ops`` functions too; calls made inside an already-counted Keras layer are
skipped so nothing is counted twice. Convolutions through backend-private functions
(``keras.src``, ``tf.nn``) are not seen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Sequence

import keras
import numpy as np


@dataclasses.dataclass
class ComplexityReport:
    """Parameters and multiply-adds of one model at one input size (batch 1)."""

    name: str
    input_shape: tuple
    params: int
    trainable_params: int
    mult_adds: int
    by_type: dict  # layer class name (or "ops.conv" etc. for raw ops) -> mult-adds
    calls: int  # number of counted layer calls

    def __str__(self):
        types = ", ".join(
            f"{k} {_human(v)}" for k, v in sorted(self.by_type.items(), key=lambda kv: -kv[1])
        )
        return (
            f"{self.name} @ {self.input_shape}: {_human(self.params)} params "
            f"({_human(self.trainable_params)} trainable), {_human(self.mult_adds)} mult-adds [{types}]"
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _human(n: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return str(int(n))


def _spatial(shape) -> int:
    """Product of the non-batch, non-channel dims (channels_last)."""
    dims = [int(d) for d in shape[1:-1]]
    return int(np.prod(dims)) if dims else 1


def _shape(x):
    return tuple(x.shape)


def layer_mult_adds(layer, input_shape, output_shape) -> int:
    """Multiply-adds of one call of a conv/dense layer (0 for any other layer).

    Shapes are channels_last with a batch dim; the result is per example.
    """
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt == "channels_first":
        input_shape = (input_shape[0], *input_shape[2:], input_shape[1])
        output_shape = (output_shape[0], *output_shape[2:], output_shape[1])
    cin = int(input_shape[-1])
    cout = int(output_shape[-1])
    out_pos = _spatial(output_shape)
    L = keras.layers
    if isinstance(layer, L.SeparableConv2D) or isinstance(layer, getattr(L, "SeparableConv1D", ())):
        k = int(np.prod(layer.kernel_size))
        dm = int(layer.depth_multiplier)
        return out_pos * (k * cin * dm + cin * dm * cout)
    if isinstance(layer, L.DepthwiseConv2D) or isinstance(layer, getattr(L, "DepthwiseConv1D", ())):
        k = int(np.prod(layer.kernel_size))
        return out_pos * k * cin * int(layer.depth_multiplier)
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        k = int(np.prod(layer.kernel_size))
        groups = int(getattr(layer, "groups", 1) or 1)
        return out_pos * k * (cin // groups) * cout
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        # every input position scatters a k x cout patch
        k = int(np.prod(layer.kernel_size))
        return _spatial(input_shape) * k * cin * cout
    if isinstance(layer, L.Dense):
        return _spatial(output_shape) * cin * cout
    return 0


_COUNTED = None


def _counted_types():
    global _COUNTED
    if _COUNTED is None:
        L = keras.layers
        _COUNTED = tuple(
            t
            for t in (
                L.Conv1D,
                L.Conv2D,
                L.Conv3D,
                L.SeparableConv2D,
                L.DepthwiseConv2D,
                getattr(L, "SeparableConv1D", None),
                getattr(L, "DepthwiseConv1D", None),
                L.Conv1DTranspose,
                L.Conv2DTranspose,
                L.Conv3DTranspose,
                L.Dense,
            )
            if t is not None
        )
    return _COUNTED


def _op_mult_adds(op: str, args, kwargs, out) -> int:
    """Mult-adds of one raw ``keras.ops`` call (channels_last)."""
    x = args[0] if args else kwargs.get("inputs")
    if op == "matmul":
        w = args[1] if len(args) > 1 else kwargs.get("x2")
        if not isinstance(w, keras.Variable) or len(w.shape) != 2:
            return 0  # activation x activation products are not dense layers
        return _spatial(_shape(out)) * int(w.shape[0]) * int(w.shape[1])
    if kwargs.get("data_format", "channels_last") == "channels_first":
        raise ValueError(
            "count_mult_adds: raw keras.ops convs in channels_first are not supported."
        )
    out_pos = _spatial(_shape(out))
    if op == "conv":
        k = _shape(args[1] if len(args) > 1 else kwargs["kernel"])
        return out_pos * int(np.prod(k))
    if op == "depthwise_conv":
        k = _shape(args[1] if len(args) > 1 else kwargs["kernel"])
        return out_pos * int(np.prod(k))
    if op == "separable_conv":
        dk = _shape(args[1] if len(args) > 1 else kwargs["depthwise_kernel"])
        pk = _shape(args[2] if len(args) > 2 else kwargs["pointwise_kernel"])
        return out_pos * (int(np.prod(dk)) + int(np.prod(pk)))
    if op == "conv_transpose":
        k = _shape(args[1] if len(args) > 1 else kwargs["kernel"])
        return _spatial(_shape(x)) * int(np.prod(k))
    return 0


_RAW_OPS = ("conv", "depthwise_conv", "separable_conv", "conv_transpose", "matmul")


@contextlib.contextmanager
def _record_calls(records: list):
    """Record counted layer calls (layer, in_shape, out_shape) and raw op calls (op name, mult-adds)."""
    Layer = keras.layers.Layer
    original = Layer.__call__
    counted = _counted_types()
    depth = [0]  # > 0 while inside a counted layer: its internal ops are already counted

    def wrapped(self, *args, **kwargs):
        is_counted = isinstance(self, counted)
        depth[0] += is_counted
        try:
            out = original(self, *args, **kwargs)
        finally:
            depth[0] -= is_counted
        if is_counted:
            x = args[0] if args else kwargs.get("inputs")
            records.append((self, _shape(x), _shape(out)))
        return out

    def wrap_op(name, fn):
        def op(*args, **kwargs):
            out = fn(*args, **kwargs)
            if depth[0] == 0:
                n = _op_mult_adds(name, args, kwargs, out)
                if n:
                    records.append((f"ops.{name}", n, None))
            return out

        return op

    originals = {name: getattr(keras.ops, name) for name in _RAW_OPS}
    Layer.__call__ = wrapped
    for name, fn in originals.items():
        setattr(keras.ops, name, wrap_op(name, fn))
    try:
        yield
    finally:
        Layer.__call__ = original
        for name, fn in originals.items():
            setattr(keras.ops, name, fn)


def count_mult_adds(model, input_shape: Sequence[int] | None = None) -> ComplexityReport:
    """Report parameters and multiply-adds of ``model`` for one example.

    ``input_shape`` (without batch) defaults to the model's declared input shape; it is
    needed when the model accepts any spatial size.
    """
    if input_shape is None:
        try:
            shapes = [tuple(t.shape[1:]) for t in model.inputs]
        except (AttributeError, ValueError):
            raise ValueError(
                f"{model.name}: cannot read an input shape from the model; pass input_shape=(H, W, C)."
            ) from None
        if len(shapes) != 1:
            raise ValueError(
                f"{model.name} has {len(shapes)} inputs; count_mult_adds supports one."
            )
        input_shape = shapes[0]
    input_shape = tuple(input_shape)
    if any(d is None for d in input_shape):
        raise ValueError(
            f"{model.name}: input shape {input_shape} has unknown dims; pass a concrete input_shape=(H, W, C)."
        )
    x = np.zeros((1, *input_shape), dtype="float32")
    records: list = []
    with _record_calls(records):
        model(x, training=False)
    by_type: dict = {}
    total = 0
    for layer, ins, outs in records:
        if isinstance(layer, str):  # raw op: (name, mult-adds, None)
            n, key = ins, layer
        else:
            n, key = layer_mult_adds(layer, ins, outs), type(layer).__name__
        total += n
        by_type[key] = by_type.get(key, 0) + n
    trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    return ComplexityReport(
        name=model.name,
        input_shape=input_shape,
        params=int(model.count_params()),
        trainable_params=trainable,
        mult_adds=int(total),
        by_type=by_type,
        calls=len(records),
    )
