"""Multi-level feature backbones for detection and segmentation heads.

Why: NAS-FPN and DeepLab need features at several strides (C2..C5 at 4, 8, 16, 32), not
a classifier. The heads accept any Keras model from an image to a list of feature maps
(strides powers of two, inferred from static shapes), so a cell network, a
``keras.applications`` model or the tiny :func:`conv_backbone` used in tests all fit.
:func:`cell_backbone` builds one from a searched genotype with the ImageNet-style
layout (stem with two reduction cells, then N normal cells per stack).
"""

from __future__ import annotations

import math
from typing import Sequence

import keras


def conv_backbone(
    input_shape=(64, 64, 3),
    filters: int = 16,
    levels: Sequence[int] = (2, 3, 4, 5),
    name="conv_backbone",
):
    """A plain conv net (3x3 stride-2 conv + BN + ReLU per level) returning features at ``levels``.

    A stand-in with the backbone interface, for tests and benchmarks that must be fast.
    """
    L = keras.layers
    inp = keras.Input(input_shape, name="images")
    x, outs = inp, []
    for lv in range(1, max(levels) + 1):
        f = filters * 2 ** max(0, lv - 2)
        x = L.Conv2D(f, 3, strides=2, padding="same", use_bias=False, name=f"{name}_c{lv}_down")(x)
        x = L.BatchNormalization(name=f"{name}_c{lv}_bn")(x)
        x = L.ReLU(name=f"{name}_c{lv}_relu")(x)
        if lv >= 2:
            y = L.Conv2D(f, 3, padding="same", use_bias=False, name=f"{name}_c{lv}_conv")(x)
            y = L.BatchNormalization(name=f"{name}_c{lv}_bn2")(y)
            x = L.ReLU(name=f"{name}_c{lv}_relu2")(L.Add(name=f"{name}_c{lv}_add")([x, y]))
        if lv in levels:
            outs.append(x)
    return keras.Model(inp, outs, name=name)


def feature_levels(model) -> list:
    """Pyramid level (log2 stride) of each output of a backbone, from static shapes."""
    h = model.inputs[0].shape[1]
    return [int(round(math.log2(h / o.shape[1]))) for o in model.outputs]


def features_from_network(network, levels: Sequence[int] = (2, 3, 4, 5), name=None):
    """Turn a built classification network into a multi-level backbone.

    For each wanted level, takes the output of the last layer whose output has that
    stride (4-D, same batch) before global pooling. Works for functional networks whose
    cells are layers (keras-nas cell networks, keras.applications models).
    """
    h = network.inputs[0].shape[1]
    last = {}
    for layer in network.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) != 4 or shape[1] is None or layer in network.inputs:
            continue
        lv = round(math.log2(h / shape[1])) if shape[1] else None
        if lv in levels:
            last[lv] = layer.output
    missing = [lv for lv in levels if lv not in last]
    if missing:
        raise ValueError(
            f"{network.name} has no 4-D output at levels {missing} (strides {[2**m for m in missing]}); "
            f"available levels: {sorted(last)}."
        )
    return keras.Model(
        network.inputs, [last[lv] for lv in levels], name=name or f"{network.name}_features"
    )


def cell_backbone(
    genotype,
    input_shape=(224, 224, 3),
    num_cells: int = 4,
    filters: int = 44,
    levels: Sequence[int] = (2, 3, 4, 5),
    stem: str = "imagenet",
    name: str | None = None,
    **network_kwargs,
):
    """A backbone from a cell genotype: ``keras_nas.build_network`` minus its classifier.

    ImageNet layout: stride-2 stem conv and two reduction cells (C2 at stride 4 after the
    first), then three stacks of ``num_cells`` normal cells at strides 8, 16, 32 (C3, C4,
    C5) separated by reduction cells.
    """
    from keras_nas.blocks import network as network_lib

    net = network_lib.build_network(
        genotype,
        input_shape=input_shape,
        num_classes=1,
        num_cells=num_cells,
        filters=filters,
        stem=stem,
        **network_kwargs,
    )
    return features_from_network(net, levels, name=name or f"cell_backbone_{net.name}")
