"""Network stems and the auxiliary head of NASNet-style networks.

Why this module exists: the cells are the searched part of a network, but the published
parameter counts and accuracies also depend on the fixed parts around them. This module
holds those fixed parts as in the reference code:

* CIFAR stem (slim ``_cifar_stem``): 3x3 conv with ``F * stem_multiplier`` filters,
  stride 1, no bias, then BN (``stem_multiplier`` 3 by default).
* ImageNet stem (slim ``_imagenet_stem`` / keras.applications NASNet): 3x3 stride-2 VALID
  conv with ``32 * stem_multiplier`` filters + BN, followed by two reduction cells with
  filter scale 1/4 and 1/2 (``imagenet_stem`` below; NASNetMobile: stem filters 32).
* ``AuxiliaryHead`` (NASNet / DARTS): ReLU, 5x5 average pool (stride 3 on CIFAR, 2 on
  ImageNet), 1x1 conv 128-BN-ReLU, conv 768 with kernel = remaining spatial size
  (2x2 on CIFAR)-BN-ReLU, flatten, dense. Its loss weight is ``AUX_LOSS_WEIGHT`` = 0.4.

Backend-agnostic Keras 3 (``keras.ops`` only).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_nas.blocks import ops as ops_lib
from keras_nas.blocks.cell import Cell

PACKAGE = "keras_nas"
AUX_LOSS_WEIGHT = 0.4


@keras.saving.register_keras_serializable(package=PACKAGE)
class StemConv(ops_lib.NASOp):
    """Conv (no bias, no activation before it) + BN: the first layer of a network."""

    def __init__(self, filters, strides=1, kernel_size=3, padding="same", **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.kernel_size = int(kernel_size)
        if padding not in ("same", "valid"):
            raise ValueError(f"StemConv padding must be 'same' or 'valid', got {padding!r}.")
        self.padding = padding

    def build_op(self, cin):
        self.kernel = self._conv_w(
            "kernel", (self.kernel_size, self.kernel_size, cin, self.filters)
        )
        self.bn = self._bn_w("bn", self.filters)

    def call_op(self, x, training):
        x = ops.conv(x, self.kernel, strides=self.strides, padding=self.padding)
        return self._bn(x, self.bn, training)

    def compute_output_shape(self, input_shape):
        if self.padding == "same":
            return super().compute_output_shape(input_shape)
        k, s = self.kernel_size, self.strides
        size = [None if d is None else (d - k) // s + 1 for d in input_shape[1:3]]
        return (input_shape[0], size[0], size[1], self.filters)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(kernel_size=self.kernel_size, padding=self.padding)
        return cfg


def cifar_stem(x, filters, stem_multiplier=3, bn_momentum=0.9, bn_epsilon=ops_lib.BN_EPSILON):
    """3x3 conv with ``filters * stem_multiplier`` channels, stride 1, + BN."""
    return StemConv(
        int(filters * stem_multiplier),
        1,
        3,
        "same",
        bn_momentum=bn_momentum,
        bn_epsilon=bn_epsilon,
        name="stem_conv",
    )(x)


def imagenet_stem(
    x,
    reduce_genotype,
    filters,
    stem_multiplier=1,
    filter_multiplier=2,
    bn_momentum=ops_lib.BN_MOMENTUM,
    bn_epsilon=ops_lib.BN_EPSILON,
):
    """3x3 s2 VALID conv (32 * stem_multiplier) + BN, then two reduction cells (F/4, F/2).

    Returns ``(x, prev)``: the output of the second stem cell and of the first, for chaining.
    Filter scaling is integer division as in keras.applications (``F // 4``, ``F // 2``).
    """
    stem = StemConv(
        int(32 * stem_multiplier),
        2,
        3,
        "valid",
        bn_momentum=bn_momentum,
        bn_epsilon=bn_epsilon,
        name="stem_conv",
    )(x)
    kw = dict(bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
    c1 = Cell(
        reduce_genotype,
        max(filters // filter_multiplier**2, 1),
        reduction=True,
        name="stem_cell_1",
        **kw,
    )(stem)
    c2 = Cell(
        reduce_genotype,
        max(filters // filter_multiplier, 1),
        reduction=True,
        reduction_prev=True,
        name="stem_cell_2",
        **kw,
    )([c1, stem])
    return c2, c1


@keras.saving.register_keras_serializable(package=PACKAGE)
class AuxiliaryHead(ops_lib.NASOp):
    """NASNet/DARTS auxiliary classifier, one layer. ``filters`` is the number of classes.

    ReLU -> AvgPool(5, stride ``pool_strides``, VALID) -> 1x1 conv 128 -> BN -> ReLU ->
    conv 768 (kernel = spatial size left) -> BN -> ReLU -> flatten -> Dense(classes).
    ``pool_strides`` 3 for CIFAR (8x8 -> 2x2), 2 for ImageNet. Train with loss weight
    ``AUX_LOSS_WEIGHT`` (0.4).
    """

    def __init__(self, filters, strides=1, pool_strides=3, activation="softmax", **kwargs):
        super().__init__(filters, 1, **kwargs)
        self.pool_strides = int(pool_strides)
        self.activation = activation

    def build(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if h is None or w is None:
            raise ValueError("AuxiliaryHead needs a static spatial input size.")
        self.pool = min(5, h, w)
        ph, pw = (h - self.pool) // self.pool_strides + 1, (w - self.pool) // self.pool_strides + 1
        self.kernel_hw = (ph, pw)
        cin = int(input_shape[-1])
        self.k1 = self._conv_w("conv1_kernel", (1, 1, cin, 128))
        self.bn1 = self._bn_w("bn1", 128)
        self.k2 = self._conv_w("conv2_kernel", (ph, pw, 128, 768))
        self.bn2 = self._bn_w("bn2", 768)
        self.dense_kernel = self.add_weight(
            name="dense_kernel", shape=(768, self.filters), initializer="glorot_uniform"
        )
        self.dense_bias = self.add_weight(
            name="dense_bias", shape=(self.filters,), initializer="zeros"
        )
        self.built = True

    def call_op(self, x, training):
        x = ops.relu(x)
        x = ops.average_pool(x, self.pool, strides=self.pool_strides, padding="valid")
        x = ops.relu(self._bn(ops.conv(x, self.k1), self.bn1, training))
        x = ops.relu(self._bn(ops.conv(x, self.k2, padding="valid"), self.bn2, training))
        x = ops.reshape(x, (-1, 768))
        y = ops.matmul(x, self.dense_kernel) + self.dense_bias
        if self.activation == "softmax":
            y = ops.softmax(y, axis=-1)
        return y

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.filters)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_strides=self.pool_strides, activation=self.activation)
        return cfg
