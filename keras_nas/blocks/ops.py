"""Keras layers for the cell operations of NASNet, AmoebaNet, DARTS and ENAS genotypes.

Why this module exists: a genotype only names its ops (``keras_nas.space.ops``); this
module maps each name to a Keras 3 layer that implements the op the way the reference
code does (TF-slim ``nasnet_utils``, ``keras.applications.nasnet``, the DARTS
``operations.py``), so that networks built from genotypes have the published structure
and parameter counts.

Design, chosen for tracing speed on CPU: every op is ONE Keras layer that owns its raw
weights and computes with ``keras.ops`` (no nested Conv2D/BatchNormalization/Activation
sublayers). A NASNet separable-conv op is thus one layer call instead of ~8, which
roughly halves the time to the first training step compared with
``keras.applications.NASNet`` (see ``benchmarks/README.md``). Parameter layout is
identical to the keras.applications layers: BN keeps gamma, beta, moving mean and
moving variance; convs have no bias.

Every op layer takes ``(filters, strides)``; whether a projection is needed (channels
differ, stride 2) is decided in ``build`` from the input shape, as in slim.

Backend-agnostic: ``keras.ops`` and ``keras.layers`` only; batch-norm arithmetic goes through
``keras_nas.kernels``, which uses a backend's fused kernel where it has one.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_nas import kernels
from keras_nas.space import ops as space_ops

PACKAGE = "keras_nas"
BN_MOMENTUM = 0.9997  # keras.applications.nasnet / slim ImageNet (slim CIFAR uses 0.9)
BN_EPSILON = 1e-3


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v), int(v))


class NASOp(keras.layers.Layer):
    """Base class of the built-in ops: raw weights, helpers for conv and batch norm.

    Subclasses implement ``build_op(in_channels)`` and ``call_op(x, training)``.
    ``compute_output_shape`` is analytic (strides halve the spatial size with SAME
    padding, channels become ``filters``), so Keras never traces an op just to learn
    its output shape.
    """

    def __init__(
        self, filters, strides=1, bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON, **kwargs
    ):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(
                f"{type(self).__name__}: filters must be a positive integer, got {filters!r}."
            )
        self.filters = int(filters)
        self.strides = int(strides[0] if isinstance(strides, (tuple, list)) else strides)
        if self.strides not in (1, 2):
            raise ValueError(f"{type(self).__name__}: strides must be 1 or 2, got {strides!r}.")
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)

    # -- weight helpers ----------------------------------------------------------
    def _conv_w(self, name, shape):
        return self.add_weight(name=name, shape=shape, initializer="he_normal", trainable=True)

    def _bn_w(self, name, channels):
        # Packed: one trainable (2, C) variable [gamma; beta] and one non-trainable (2, C)
        # variable [moving_mean; moving_variance]. Same parameter counts (trainable and not)
        # as four (C,) variables, but half the variables, reads, optimizer updates and
        # moving-average assigns, which shortens tracing and graph optimization. Never autocast:
        # under mixed precision, BN parameters and statistics stay float32 (as in Keras' layer).
        return PackedBN(
            self.add_weight(
                name=f"{name}_gamma_beta",
                shape=(2, channels),
                initializer=_ones_zeros,
                trainable=True,
                autocast=False,
            ),
            self.add_weight(
                name=f"{name}_moving_mean_variance",
                shape=(2, channels),
                initializer=_zeros_ones,
                trainable=False,
                autocast=False,
            ),
        )

    def _bn(self, x, bn, training):
        return batch_norm(x, bn, training, self.bn_momentum, self.bn_epsilon)

    # -- Layer API ---------------------------------------------------------------
    def build(self, input_shape):
        self.in_channels = int(input_shape[-1])
        self.build_op(self.in_channels)
        self.built = True

    def build_op(self, in_channels):  # pragma: no cover - abstract
        pass

    def call(self, x, training=None):
        return self.call_op(x, bool(training))

    def out_channels(self, in_channels):
        return self.filters

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if self.strides == 2:
            h = None if h is None else (h + 1) // 2
            w = None if w is None else (w + 1) // 2
        return (input_shape[0], h, w, self.out_channels(input_shape[-1]))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            filters=self.filters,
            strides=self.strides,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return cfg


def _correct_pad(x, k):
    """Zero padding for a stride-2 k x k VALID conv (keras.applications ``correct_pad``)."""
    adjust = [1 if d is None else 1 - int(d) % 2 for d in (x.shape[1], x.shape[2])]
    c = k // 2
    return [[0, 0], [c - adjust[0], c], [c - adjust[1], c], [0, 0]]


def _ones_zeros(shape, dtype=None):
    """Rows 1, 0, 1, 0, ... (packed [gamma; beta] pairs)."""
    pair = [ops.ones(shape[1:], dtype=dtype), ops.zeros(shape[1:], dtype=dtype)]
    return ops.stack(pair * (shape[0] // 2))


def _zeros_ones(shape, dtype=None):
    """Rows 0, 1, 0, 1, ... (packed [moving_mean; moving_variance] pairs)."""
    pair = [ops.zeros(shape[1:], dtype=dtype), ops.ones(shape[1:], dtype=dtype)]
    return ops.stack(pair * (shape[0] // 2))


class PackedBN:
    """Batch-norm weights of one BN: ``affine`` = [gamma; beta] (trainable, (2, C)) and
    ``stats`` = [moving_mean; moving_variance] (non-trainable, (2, C)). Iterating yields
    gamma, beta, moving_mean, moving_variance as tensors (read-only views)."""

    __slots__ = ("affine", "stats")

    def __init__(self, affine, stats):
        self.affine, self.stats = affine, stats

    def __iter__(self):
        return iter((*ops.unstack(self.affine), *ops.unstack(self.stats)))


def batch_norm(x, bn, training, momentum, epsilon):
    """Batch norm with packed raw variables (see ``PackedBN``), the same math as keras' layer;
    the arithmetic is ``keras_nas.kernels`` (TensorFlow's fused kernel on that backend)."""
    gamma, beta = ops.unstack(bn.affine)
    if training:
        y, mean, var = kernels.batch_norm_train(x, gamma, beta, epsilon)
        bn.stats.assign(bn.stats * momentum + ops.stack([mean, var]) * (1.0 - momentum))
        return y
    mean, var = ops.unstack(bn.stats)
    return kernels.batch_norm_infer(x, gamma, beta, mean, var, epsilon)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SepConv(NASOp):
    """NASNet 'separable conv applied twice': ReLU-SepConv(k, s)-BN-ReLU-SepConv(k, 1)-BN.

    With ``repeats=1`` and ``dilation=2`` it is the DARTS dil_conv
    (ReLU-depthwise dilated-pointwise-BN). Depth multiplier 1, no bias, as keras.applications.
    """

    def __init__(self, filters, strides=1, kernel_size=3, dilation=1, repeats=2, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.kernel_size = int(kernel_size)
        self.dilation = int(dilation)
        self.repeats = int(repeats)

    def build_op(self, cin):
        k, self.w = self.kernel_size, []
        for r in range(self.repeats):
            c = cin if r == 0 else self.filters
            self.w.append(
                (
                    self._conv_w(f"depthwise_{r}", (k, k, c, 1)),
                    self._conv_w(f"pointwise_{r}", (1, 1, c, self.filters)),
                )
            )
        # All BNs of the op (same width) packed: rows [gamma_0, beta_0, gamma_1, beta_1, ...] and
        # [mean_0, var_0, mean_1, var_1, ...]; same parameter counts as separate BN variables.
        n = 2 * self.repeats
        self.bn_affine = self.add_weight(
            name="bn_gamma_beta",
            shape=(n, self.filters),
            initializer=_ones_zeros,
            trainable=True,
            autocast=False,
        )
        self.bn_stats = self.add_weight(
            name="bn_moving_mean_variance",
            shape=(n, self.filters),
            initializer=_zeros_ones,
            trainable=False,
            autocast=False,
        )

    def call_op(self, x, training):
        aff = ops.unstack(self.bn_affine)
        st = None if training else ops.unstack(self.bn_stats)
        new_stats = []
        for r, (dw, pw) in enumerate(self.w):
            x = ops.relu(x)
            if r == 0 and self.strides == 2:
                # keras.applications' explicit "correct_pad" + VALID: same output size as SAME,
                # same numerics as keras.applications NASNet (and measurably faster on CPU).
                x = ops.pad(x, _correct_pad(x, (self.kernel_size - 1) * self.dilation + 1))
                x = ops.separable_conv(
                    x, dw, pw, strides=2, padding="valid", dilation_rate=self.dilation
                )
            else:
                x = ops.separable_conv(
                    x, dw, pw, strides=1, padding="same", dilation_rate=self.dilation
                )
            gamma, beta = aff[2 * r], aff[2 * r + 1]
            if training:
                x, mean, var = kernels.batch_norm_train(x, gamma, beta, self.bn_epsilon)
                new_stats += [mean, var]
            else:
                x = kernels.batch_norm_infer(
                    x, gamma, beta, st[2 * r], st[2 * r + 1], self.bn_epsilon
                )
        if training:
            m = self.bn_momentum
            self.bn_stats.assign(self.bn_stats * m + ops.stack(new_stats) * (1.0 - m))
        return x

    def get_config(self):
        cfg = super().get_config()
        cfg.update(kernel_size=self.kernel_size, dilation=self.dilation, repeats=self.repeats)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvBN(NASOp):
    """ReLU-Conv(k x k)-BN (NASNet conv_1x1 / conv_3x3; NAS-Bench-201 nor_conv_kxk)."""

    def __init__(self, filters, strides=1, kernel_size=3, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.kernel_size = int(kernel_size)

    def build_op(self, cin):
        k = self.kernel_size
        self.kernel = self._conv_w("kernel", (k, k, cin, self.filters))
        self.bn = self._bn_w("bn", self.filters)

    def call_op(self, x, training):
        x = ops.conv(ops.relu(x), self.kernel, strides=self.strides, padding="same")
        return self._bn(x, self.bn, training)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(kernel_size=self.kernel_size)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactorizedConv(NASOp):
    """conv_1x7_7x1 / conv_1x3_3x1 as in the AmoebaNet reference (tensorflow/tpu
    ``amoeba_net/network_utils.py``, the only published genotypes using them):
    ReLU-1x1(B)-BN-ReLU-conv1xk(B, stride (1,s))-BN-ReLU-convkx1(B, stride (s,1))-BN-ReLU-1x1(F)-BN
    with bottleneck width B = F/4 (3F/8 for 1x3_3x1). ``bottleneck=None`` (or B < 1) gives
    the plain form ReLU-conv1xk-BN-ReLU-convkx1-BN with F channels.
    """

    def __init__(self, filters, strides=1, kernel_size=7, bottleneck=0.25, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.kernel_size = int(kernel_size)
        self.bottleneck = None if bottleneck is None else float(bottleneck)

    def build_op(self, cin):
        k, f = self.kernel_size, self.filters
        b = int(f * self.bottleneck) if self.bottleneck else 0
        self.use_bottleneck = b >= 1
        mid = b if self.use_bottleneck else f
        if self.use_bottleneck:
            self.pre = (self._conv_w("pre_1x1", (1, 1, cin, b)), self._bn_w("pre_bn", b))
            cin = b
        self.k1 = self._conv_w("kernel_1xk", (1, k, cin, mid))
        self.bn1 = self._bn_w("bn_1xk", mid)
        self.k2 = self._conv_w("kernel_kx1", (k, 1, mid, mid))
        self.bn2 = self._bn_w("bn_kx1", mid)
        if self.use_bottleneck:
            self.post = (self._conv_w("post_1x1", (1, 1, b, f)), self._bn_w("post_bn", f))

    def call_op(self, x, training):
        s = self.strides
        if self.use_bottleneck:
            x = self._bn(ops.conv(ops.relu(x), self.pre[0]), self.pre[1], training)
        x = self._bn(
            ops.conv(ops.relu(x), self.k1, strides=(1, s), padding="same"), self.bn1, training
        )
        x = self._bn(
            ops.conv(ops.relu(x), self.k2, strides=(s, 1), padding="same"), self.bn2, training
        )
        if self.use_bottleneck:
            x = self._bn(ops.conv(ops.relu(x), self.post[0]), self.post[1], training)
        return x

    def get_config(self):
        cfg = super().get_config()
        cfg.update(kernel_size=self.kernel_size, bottleneck=self.bottleneck)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactorizedReduction(NASOp):
    """ReLU, two 1x1 stride-2 convs (the second on the input shifted by one pixel), concat, BN.

    slim ``factorized_reduction`` / keras.applications ``_adjust_block``; an avg-pool(1, s2)
    followed by a 1x1 conv equals a 1x1 stride-2 conv, so that is what is computed.
    With ``strides=1`` this is ReLU-1x1 conv-BN (the projection case of ``_adjust_block``).
    """

    def __init__(self, filters, strides=2, relu=True, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.relu = bool(relu)

    def build_op(self, cin):
        if self.strides == 1:
            self.kernels = [self._conv_w("kernel", (1, 1, cin, self.filters))]
        else:
            half = self.filters // 2
            self.kernels = [
                self._conv_w("kernel_path1", (1, 1, cin, half)),
                self._conv_w("kernel_path2", (1, 1, cin, self.filters - half)),
            ]
        self.bn = self._bn_w("bn", self.filters)

    def call_op(self, x, training):
        if self.relu:
            x = ops.relu(x)
        if self.strides == 1:
            y = ops.conv(x, self.kernels[0], strides=1, padding="valid")
        else:
            # Subsample first, then stride-1 1x1 convs: the same numbers as a strided conv on the
            # input and on the input shifted by one pixel (zero-padded at the end), but TF 2.21's
            # oneDNN CPU kernels corrupt memory (double free / segfault) in training when the
            # shifted path is written as pad + slice + strided conv.
            p1 = ops.conv(x[:, ::2, ::2, :], self.kernels[0], strides=1, padding="valid")
            p2 = ops.conv(x[:, 1::2, 1::2, :], self.kernels[1], strides=1, padding="valid")
            h1, w1, h2, w2 = p1.shape[1], p1.shape[2], p2.shape[1], p2.shape[2]
            if None in (h1, w1, h2, w2):
                p2 = ops.pad(p2, [[0, 0], [0, 1], [0, 1], [0, 0]])[
                    :, : ops.shape(p1)[1], : ops.shape(p1)[2], :
                ]
            elif (h2, w2) != (h1, w1):
                p2 = ops.pad(p2, [[0, 0], [0, h1 - h2], [0, w1 - w2], [0, 0]])
            y = ops.concatenate([p1, p2], axis=-1)
        return self._bn(y, self.bn, training)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(relu=self.relu)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class Pool(NASOp):
    """avg/max pool (SAME padding, stride s), then 1x1 conv + BN when the channel count
    differs from ``filters`` (slim ``_pooling``). Average pooling excludes padding."""

    def __init__(self, filters, strides=1, pool_size=3, mode="avg", **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.pool_size = int(pool_size)
        if mode not in ("avg", "max"):
            raise ValueError(f"Pool mode must be 'avg' or 'max', got {mode!r}.")
        self.mode = mode

    def build_op(self, cin):
        self.proj = None
        if cin != self.filters:
            self.proj = (
                self._conv_w("kernel", (1, 1, cin, self.filters)),
                self._bn_w("bn", self.filters),
            )

    def call_op(self, x, training):
        pool = ops.average_pool if self.mode == "avg" else ops.max_pool
        x = pool(x, self.pool_size, strides=self.strides, padding="same")
        if self.proj is not None:
            x = self._bn(ops.conv(x, self.proj[0], padding="valid"), self.proj[1], training)
        return x

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=self.pool_size, mode=self.mode)
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class Identity(NASOp):
    """Identity; factorized reduction when stride 2, ReLU-1x1 conv-BN when channels differ."""

    def build_op(self, cin):
        self.proj = None
        if self.strides == 2 or cin != self.filters:
            self.proj = FactorizedReduction(
                self.filters,
                self.strides,
                bn_momentum=self.bn_momentum,
                bn_epsilon=self.bn_epsilon,
                name="reduce",
            )
            self.proj.build((None, None, None, cin))

    def call_op(self, x, training):
        return x if self.proj is None else self.proj.call_op(x, training)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Zero(NASOp):
    """DARTS 'none': zeros shaped like the op's output."""

    def call_op(self, x, training):
        if self.strides == 2:
            x = x[:, ::2, ::2, :]
        z = ops.zeros_like(x[..., :1])
        return ops.repeat(z, self.filters, axis=-1) if self.filters != 1 else z


# name -> builder(filters, strides, **kwargs) -> keras Layer
_BUILDERS: dict = {}


def _builtin(name, cls, **fixed):
    def builder(filters, strides=1, **kwargs):
        return cls(filters, strides, **fixed, **kwargs)

    builder.__name__ = f"build_{name}"
    _BUILDERS[name] = builder


for _k in (3, 5, 7):
    _builtin(f"sep_conv_{_k}x{_k}", SepConv, kernel_size=_k)
_builtin("dil_sep_conv_3x3", SepConv, kernel_size=3, dilation=2)
_builtin("dil_conv_3x3", SepConv, kernel_size=3, dilation=2, repeats=1)
_builtin("dil_conv_5x5", SepConv, kernel_size=5, dilation=2, repeats=1)
_builtin("conv_1x7_7x1", FactorizedConv, kernel_size=7, bottleneck=0.25)
_builtin("conv_1x3_3x1", FactorizedConv, kernel_size=3, bottleneck=0.375)
_builtin("conv_1x1", ConvBN, kernel_size=1)
_builtin("conv_3x3", ConvBN, kernel_size=3)
_builtin("avg_pool_3x3", Pool, pool_size=3, mode="avg")
for _k in (3, 5, 7):
    _builtin(f"max_pool_{_k}x{_k}", Pool, pool_size=_k, mode="max")
_builtin("identity", Identity)
_builtin("none", Zero)
_BUILTIN_NAMES = frozenset(_BUILDERS)


def register_op(name: str, builder) -> None:
    """Make op ``name`` usable in genotypes and cells.

    ``builder(filters, strides)`` must return a Keras layer mapping a ``(B, H, W, C)``
    tensor to ``(B, H / strides, W / strides, filters)`` (SAME padding). Register the
    layer class with ``keras.saving.register_keras_serializable`` if models using it
    should be saved and loaded; the op name itself is saved in the cell's genotype and
    looked up again here, so register the op before ``keras.models.load_model``.
    """
    if not callable(builder):
        raise TypeError(
            f"register_op({name!r}, builder): builder must be callable(filters, strides) -> Layer."
        )
    space_ops.add_op_name(name)
    _BUILDERS[name] = builder


def registered_ops() -> tuple:
    return tuple(sorted(_BUILDERS))


def build_op(name: str, filters: int, strides: int = 1, **kwargs):
    """Instantiate op ``name`` (canonical or alias) as a Keras layer."""
    name = space_ops.canonical_op(name)
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(
            f"Op {name!r} has no Keras implementation; known ops: {list(registered_ops())}. "
            "Add one with keras_nas.blocks.register_op(name, builder)."
        ) from None
    if name in _BUILTIN_NAMES:
        return builder(filters, strides, **kwargs)
    return builder(filters, strides)
