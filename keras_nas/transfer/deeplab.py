"""DeepLabv3+ segmentation head (ASPP + decoder) on a multi-level backbone.

Why: Auto-DeepLab and NAS-FPN-style transfer evaluate searched cells on dense
prediction; DeepLabv3+ (Chen et al. 2018) is the standard head. ASPP on the deepest
feature: a 1x1 branch, one 3x3 atrous branch per rate and image pooling, concatenated and
projected to ``aspp_filters``; the decoder upsamples it to the low-level feature's
stride, concatenates a 1x1 (48-channel) projection of that feature, applies two 3x3
convs and a 1x1 classifier, and resizes bilinearly to the input size.

All stock Keras layers (``Conv2D`` with ``dilation_rate``, ``GlobalAveragePooling2D``,
``Resizing``/``UpSampling2D``); the metric is ``keras.metrics.MeanIoU`` with
``sparse_y_pred=False`` so it takes the argmax of the logits itself.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras


def _conv_bn_relu(x, filters, kernel, name, dilation=1):
    L = keras.layers
    x = L.Conv2D(
        filters, kernel, padding="same", dilation_rate=dilation, use_bias=False, name=name
    )(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x)


def aspp(
    x,
    filters: int = 256,
    rates: Sequence[int] = (6, 12, 18),
    dropout: float = 0.1,
    name: str = "aspp",
):
    """Atrous spatial pyramid pooling (DeepLabv3): 1x1 + atrous 3x3 per rate + image pooling."""
    L = keras.layers
    h, w = int(x.shape[1]), int(x.shape[2])
    branches = [_conv_bn_relu(x, filters, 1, f"{name}_1x1")]
    for r in rates:
        branches.append(_conv_bn_relu(x, filters, 3, f"{name}_rate{r}", dilation=r))
    pooled = L.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    pooled = _conv_bn_relu(pooled, filters, 1, f"{name}_pool_conv")
    branches.append(L.UpSampling2D((h, w), name=f"{name}_pool_up")(pooled))
    y = L.Concatenate(name=f"{name}_concat")(branches)
    y = _conv_bn_relu(y, filters, 1, f"{name}_proj")
    if dropout:
        y = L.Dropout(dropout, name=f"{name}_dropout")(y)
    return y


def build_deeplab(
    backbone,
    num_classes: int,
    aspp_filters: int = 256,
    rates: Sequence[int] = (6, 12, 18),
    decoder_filters: int = 256,
    low_level_filters: int = 48,
    high_level: int | None = None,
    low_level: int | None = None,
    dropout: float = 0.1,
    name: str = "deeplabv3plus",
):
    """DeepLabv3+ model: image -> per-pixel logits ``(B, H, W, num_classes)`` at input resolution.

    ``backbone``: a Keras model from an image to a list of feature maps (strides powers of
    two). ASPP runs on level ``high_level`` (default: the deepest), the decoder takes
    level ``low_level`` (default: the shallowest). Rates (6, 12, 18) are the paper's for
    output stride 16; halve them for tiny inputs or use (2, 4, 6) as in the tests.
    """
    L = keras.layers
    image_shape = tuple(backbone.inputs[0].shape[1:])
    if None in image_shape[:2]:
        raise ValueError("build_deeplab needs a backbone with a fixed input size.")
    images = keras.Input(image_shape, name="images")
    feats = backbone(images)
    if not isinstance(feats, (list, tuple)):
        feats = [feats]
    by_level = {int(round(math.log2(image_shape[0] / f.shape[1]))): f for f in feats}
    hi = max(by_level) if high_level is None else high_level
    lo = min(by_level) if low_level is None else low_level
    for lv, what in ((hi, "high_level"), (lo, "low_level")):
        if lv not in by_level:
            raise ValueError(
                f"{what}={lv}: backbone gives levels {sorted(by_level)}; pick one of them."
            )
    if lo > hi:
        raise ValueError(f"low_level ({lo}) must not be deeper than high_level ({hi}).")
    x = aspp(by_level[hi], aspp_filters, rates, dropout)
    if hi > lo:
        x = L.UpSampling2D(2 ** (hi - lo), interpolation="bilinear", name="decoder_up")(x)
        low = _conv_bn_relu(by_level[lo], low_level_filters, 1, "decoder_low_proj")
        x = L.Concatenate(name="decoder_concat")([x, low])
    x = _conv_bn_relu(x, decoder_filters, 3, "decoder_conv1")
    x = _conv_bn_relu(x, decoder_filters, 3, "decoder_conv2")
    x = L.Conv2D(num_classes, 1, name="classifier")(x)
    logits = L.Resizing(image_shape[0], image_shape[1], interpolation="bilinear", name="logits")(x)
    return keras.Model(images, logits, name=name)


def mean_iou_metric(num_classes: int, name: str = "mean_iou"):
    """``keras.metrics.MeanIoU`` over integer labels and logits (argmax taken by the metric)."""
    return keras.metrics.MeanIoU(
        num_classes=num_classes, sparse_y_true=True, sparse_y_pred=False, name=name
    )


def compile_segmenter(model, num_classes: int, optimizer="adam"):
    """Sparse softmax cross-entropy on logits, with mean IoU."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[mean_iou_metric(num_classes)],
    )
    return model
