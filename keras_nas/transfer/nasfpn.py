"""NAS-FPN: merging-cell feature pyramid decoder and its search space.

Why: NAS-FPN (Ghiasi, Lin, Le, CVPR 2019) searched the pyramid's cross-scale connections
with the same RL controller as NASNet; the published 7-cell pyramid, repeated, is the
decoder our cell backbones feed for detection. The structure is itself a
:class:`keras_nas.space.base.SearchSpace` so keras-nas controllers can search it.

A merging cell takes two feature maps from the pool (backbone levels P3..P7 first, then
every earlier cell's output), resamples both to its level (1x1 conv + BN when channels
differ, max-pool down, nearest upsample up), combines them by ``sum`` or ``attention``
(``coarser + finer * sigmoid(global_max(coarser))``), adds any same-level feature not yet
consumed when it is an output cell, then ReLU -> 3x3 conv -> BN. The last
``num_levels`` cells are the outputs. Follows tf-models
``official/vision/modeling/decoders/nasfpn.py``.
"""

from __future__ import annotations

import itertools
from typing import Mapping, NamedTuple, Sequence

import keras

from keras_nas.space.base import KIND_GENERIC, KIND_INPUT, Decision, SearchSpace, SpaceError

COMBINE_FNS = ("sum", "attention")


class MergingCell(NamedTuple):
    """One merging cell: output ``level``, ``combine`` fn, two ``inputs`` (pool indices), ``is_output``."""

    level: int
    combine: str
    inputs: tuple
    is_output: bool


# tf-models nasfpn.py NASFPN_BLOCK_SPECS (the published 7-cell pyramid of NAS-FPN Fig. 7).
NASFPN_SPEC = (
    MergingCell(4, "attention", (1, 3), False),
    MergingCell(4, "sum", (1, 5), False),
    MergingCell(3, "sum", (0, 6), True),
    MergingCell(4, "sum", (6, 7), True),
    MergingCell(5, "attention", (7, 8), True),
    MergingCell(7, "attention", (6, 9), True),
    MergingCell(6, "attention", (9, 10), True),
)


def validate_spec(spec: Sequence[MergingCell], min_level: int = 3, max_level: int = 7) -> tuple:
    """Check inputs reference existing pool entries and the output cells cover every level once."""
    spec = tuple(
        MergingCell(int(c[0]), str(c[1]), tuple(int(i) for i in c[2]), bool(c[3])) for c in spec
    )
    levels = list(range(min_level, max_level + 1))
    n_levels = len(levels)
    if len(spec) < n_levels:
        raise SpaceError(
            f"NAS-FPN spec has {len(spec)} cells; it needs at least {n_levels} (one per output level)."
        )
    for i, c in enumerate(spec):
        if c.level not in levels:
            raise SpaceError(f"merging cell {i}: level {c.level} outside {min_level}..{max_level}.")
        if c.combine not in COMBINE_FNS:
            raise SpaceError(
                f"merging cell {i}: combine {c.combine!r} is not one of {COMBINE_FNS}."
            )
        for j in c.inputs:
            if not 0 <= j < n_levels + i:
                raise SpaceError(
                    f"merging cell {i}: input {j} out of range; cell {i} may read 0..{n_levels + i - 1} "
                    f"(0..{n_levels - 1} = P{min_level}..P{max_level}, then earlier cells)."
                )
    out_levels = sorted(c.level for c in spec[-n_levels:])
    if out_levels != levels:
        raise SpaceError(
            f"the last {n_levels} merging cells must output each level {levels} once, got {out_levels}."
        )
    return spec


class NASFPNSpace(SearchSpace):
    """The NAS-FPN merging-cell search space (Ghiasi et al. 2019, Sec. 3).

    Per cell: two inputs from the growing pool and a binary op. The first
    ``num_cells - num_levels`` cells also choose their level; the last ``num_levels``
    cells (the outputs) take the levels of one permutation chosen by ``output_levels``.
    """

    name = "nasfpn"

    def __init__(
        self, num_cells: int = 7, min_level: int = 3, max_level: int = 7, combine_fns=COMBINE_FNS
    ):
        self.num_cells = int(num_cells)
        self.min_level, self.max_level = int(min_level), int(max_level)
        self.levels = tuple(range(self.min_level, self.max_level + 1))
        n = len(self.levels)
        if self.num_cells < n:
            raise SpaceError(
                f"NASFPNSpace: num_cells={num_cells} must be >= the number of levels ({n})."
            )
        self.num_hidden = self.num_cells - n
        decisions = []
        for i in range(self.num_cells):
            pool = tuple(range(n + i))
            decisions.append(Decision(f"cell{i}_in0", pool, KIND_INPUT))
            decisions.append(Decision(f"cell{i}_in1", pool, KIND_INPUT))
            decisions.append(Decision(f"cell{i}_combine", tuple(combine_fns), "op"))
            if i < self.num_hidden:
                decisions.append(Decision(f"cell{i}_level", self.levels, KIND_GENERIC))
        perms = tuple(",".join(str(lv) for lv in p) for p in itertools.permutations(self.levels))
        decisions.append(Decision("output_levels", perms, KIND_GENERIC))
        super().__init__(decisions)

    def decode(self, values: Mapping) -> tuple:
        v = self.check_values(values)
        out_levels = [int(s) for s in v["output_levels"].split(",")]
        cells = []
        for i in range(self.num_cells):
            hidden = i < self.num_hidden
            level = v[f"cell{i}_level"] if hidden else out_levels[i - self.num_hidden]
            cells.append(
                MergingCell(
                    level, v[f"cell{i}_combine"], (v[f"cell{i}_in0"], v[f"cell{i}_in1"]), not hidden
                )
            )
        return validate_spec(cells, self.min_level, self.max_level)

    def encode(self, spec) -> dict:
        spec = validate_spec(spec, self.min_level, self.max_level)
        if len(spec) != self.num_cells:
            raise SpaceError(f"spec has {len(spec)} cells; this space has {self.num_cells}.")
        values = {}
        for i, c in enumerate(spec):
            hidden = i < self.num_hidden
            if c.is_output == hidden:
                raise SpaceError(
                    f"merging cell {i}: is_output={c.is_output}, but in this space exactly the last "
                    f"{len(self.levels)} cells are outputs."
                )
            values[f"cell{i}_in0"], values[f"cell{i}_in1"] = c.inputs
            values[f"cell{i}_combine"] = c.combine
            if hidden:
                values[f"cell{i}_level"] = c.level
        values["output_levels"] = ",".join(str(c.level) for c in spec[self.num_hidden :])
        return self.check_values(values)


@keras.saving.register_keras_serializable(package="keras_nas")
class GlobalAttention(keras.layers.Layer):
    """NAS-FPN attention op: ``coarser + finer * sigmoid(global_max_pool(coarser))``."""

    def call(self, inputs):
        coarser, finer = inputs
        gate = keras.ops.sigmoid(keras.ops.max(coarser, axis=(1, 2), keepdims=True))
        return coarser + finer * gate


def _resample(x, from_level, to_level, filters, name, bn_kwargs, size=None):
    """1x1 conv + BN if channels differ; max-pool down or nearest-upsample to ``to_level``.

    ``size`` (H, W) of the target level: when the image is not divisible by 2**max_level
    (small inputs), coarse levels are clamped at 1x1 and a plain 2**k upsampling would
    overshoot, so the result is resized (nearest) to the level's true size.
    """
    L = keras.layers
    if x.shape[-1] != filters:
        x = L.Conv2D(filters, 1, padding="same", name=f"{name}_proj")(x)
        x = L.BatchNormalization(name=f"{name}_proj_bn", **bn_kwargs)(x)
    if from_level < to_level:
        s = 2 ** (to_level - from_level)
        x = L.MaxPooling2D(s, strides=s, padding="same", name=f"{name}_down")(x)
    elif from_level > to_level:
        s = 2 ** (from_level - to_level)
        if size is not None and (x.shape[1] * s, x.shape[2] * s) != tuple(size):
            x = L.Resizing(size[0], size[1], interpolation="nearest", name=f"{name}_resize")(x)
        else:
            x = L.UpSampling2D(s, interpolation="nearest", name=f"{name}_up")(x)
    return x


def nasfpn_decoder(
    features: Mapping[int, "keras.KerasTensor"],
    spec: Sequence[MergingCell] = NASFPN_SPEC,
    filters: int = 256,
    num_repeats: int = 5,
    min_level: int = 3,
    max_level: int = 7,
    name: str = "nasfpn",
    bn_momentum: float = 0.99,
) -> dict:
    """Apply the NAS-FPN pyramid to backbone features ``{level: tensor}``; return ``{level: tensor}``.

    Levels above the backbone's deepest one (P6, P7) are made from it by 1x1 conv and
    stride-2 max pooling, as in tf-models. Every repeat has its own weights.
    """
    L = keras.layers
    spec = validate_spec(spec, min_level, max_level)
    bn = {"momentum": bn_momentum}
    have = sorted(features)
    if min_level not in features:
        raise ValueError(f"NAS-FPN needs backbone level {min_level}; got levels {have}.")
    top = max(lv for lv in have if lv <= max_level)
    feats = []
    for lv in range(min_level, max_level + 1):
        if lv in features:
            x = features[lv]
        else:
            if lv <= top:
                raise ValueError(
                    f"backbone lacks level {lv} (has {have}); levels up to {top} must all be present."
                )
            x = _resample(feats[-1], lv - 1, lv, filters, f"{name}_p{lv}", bn)
        feats.append(x)
    levels = list(range(min_level, max_level + 1))
    n_levels = len(levels)
    sizes = {lv: (f.shape[1], f.shape[2]) for lv, f in zip(levels, feats)}
    for r in range(num_repeats):
        pool, pool_levels, used = list(feats), list(levels), [0] * len(feats)
        for i, cell in enumerate(spec):
            tag = f"{name}_r{r}_c{i}"
            nodes = []
            for k, j in enumerate(cell.inputs):
                used[j] += 1
                nodes.append(
                    (
                        pool_levels[j],
                        _resample(
                            pool[j],
                            pool_levels[j],
                            cell.level,
                            filters,
                            f"{tag}_in{k}",
                            bn,
                            sizes[cell.level],
                        ),
                    )
                )
            if cell.combine == "sum":
                x = L.Add(name=f"{tag}_sum")([nodes[0][1], nodes[1][1]])
            else:
                (l0, n0), (l1, n1) = nodes
                coarser, finer = (n0, n1) if l0 >= l1 else (n1, n0)
                x = GlobalAttention(name=f"{tag}_attn")([coarser, finer])
            if cell.is_output:
                extra = [
                    _resample(f, fl, cell.level, filters, f"{tag}_extra{j}", bn, sizes[cell.level])
                    for j, (f, fl) in enumerate(zip(pool, pool_levels))
                    if used[j] == 0 and fl == cell.level
                ]
                for j, fl in enumerate(pool_levels):
                    if used[j] == 0 and fl == cell.level:
                        used[j] += 1
                if extra:
                    x = L.Add(name=f"{tag}_extra_sum")([x, *extra])
            x = L.Activation("relu", name=f"{tag}_relu")(x)
            x = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{tag}_conv")(x)
            x = L.BatchNormalization(name=f"{tag}_bn", **bn)(x)
            pool.append(x)
            pool_levels.append(cell.level)
            used.append(0)
        out = {pool_levels[k]: pool[k] for k in range(len(pool) - n_levels, len(pool))}
        feats = [out[lv] for lv in levels]
    return dict(zip(levels, feats))
