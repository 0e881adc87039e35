"""Synflow, parameters and multiply-adds of many NAS-Bench-201 cells at once.

Why: scoring all 15,625 cells by building 15,625 Keras networks takes hours (building and
tracing dominate). Here one masked supernet (every op on every edge, a 0/1 mask per cell
and edge selecting the cell's ops) is traced once and scores a batch of cells per call.

How synflow is computed without a backward pass: with |weights|, batch norm as identity
and an all-ones input every activation is >= 0, so the network is linear in its signal and
the ReLUs are identities. Synflow, sum over kernels of theta * dR/dtheta, is then the
directional derivative of R along the weights themselves (Euler), i.e. a forward-mode
tangent: for a conv y = W * x the tangent is W * (x + x_dot). Each layer therefore runs
on the stacked batch [x; x + x_dot] (2 x cells), and each cell of the batch carries its
own mask. ``load_into`` copies the supernet's weights into a real ``build_nb201_network``
model so that ``keras_nas.proxies.score(model, "synflow", reinit=False)`` can be checked
against this module (tests/test_proxies.py does, on a handful of cells).

Weights: one He-normal tensor per slot (stem, each cell's edge and op, the reduction blocks,
one head per class count), drawn from (seed, slot name), so every cell is scored with the
same weights for the ops it has, and CIFAR-10 / CIFAR-100 share the body.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_nas.space.nb201 import EDGES, NB201_OPS, NB201Cell

__all__ = ["NB201Synflow", "cell_costs", "cell_masks"]

_MASKED_OPS = (
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)  # 'none' contributes nothing


def _cell(c) -> NB201Cell:
    if isinstance(c, NB201Cell):
        return c
    return NB201Cell.parse(c) if isinstance(c, str) else NB201Cell(c)


def cell_masks(cells: Sequence) -> np.ndarray:
    """(len(cells), 6 edges, 4 ops) 0/1 masks in ``_MASKED_OPS`` order."""
    out = np.zeros((len(cells), len(EDGES), len(_MASKED_OPS)))
    for i, c in enumerate(cells):
        for e, op in enumerate(_cell(c).ops):
            if op != "none":
                out[i, e, _MASKED_OPS.index(op)] = 1.0
    return out


def _he(seed, name, shape):
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
    return rng.standard_normal(shape) * math.sqrt(2.0 / max(1, math.prod(shape[:-1])))


class NB201Synflow:
    """Masked NAS-Bench-201 supernet scoring synflow for batches of cells.

    Args:
      input_shape: ``(H, W, C)`` of the images (32x32x3 CIFAR, 16x16x3 ImageNet16-120).
      num_classes: one or several class counts; one head each, sharing the body.
      channels, num_cells: NAS-Bench-201's C = 16, N = 5 (``build_nb201_network``'s defaults).
      seed: the weights (see the module docstring).
      batch_size: cells per traced call; the last batch is padded.
    """

    def __init__(
        self,
        input_shape=(32, 32, 3),
        num_classes=(10,),
        *,
        channels=16,
        num_cells=5,
        seed=0,
        batch_size=32,
    ):
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = (
            (int(num_classes),) if np.isscalar(num_classes) else tuple(int(k) for k in num_classes)
        )
        self.channels, self.num_cells, self.seed = int(channels), int(num_cells), int(seed)
        self.batch_size = int(batch_size)
        c, cin = self.channels, self.input_shape[-1]
        w = {"stem": _he(seed, "stem", (3, 3, cin, c))}
        for s in range(3):
            cs = c * 2**s
            if s > 0:
                prev = cs // 2
                w[f"resblock_{s}/conv_a"] = _he(seed, f"resblock_{s}/conv_a", (3, 3, prev, cs))
                w[f"resblock_{s}/conv_b"] = _he(seed, f"resblock_{s}/conv_b", (3, 3, cs, cs))
                w[f"resblock_{s}/downsample"] = _he(
                    seed, f"resblock_{s}/downsample", (1, 1, prev, cs)
                )
            for i in range(self.num_cells):
                for e in range(len(EDGES)):
                    for k in (1, 3):
                        name = f"cell_{s}_{i}/edge_{e}/conv_{k}x{k}"
                        w[name] = _he(seed, name, (k, k, cs, cs))
        for k in self.num_classes:
            w[f"predictions_{k}"] = _he(seed, f"predictions_{k}", (4 * c, k))
        self.weights = w  # signed float64 numpy arrays, by slot name
        self._abs = {
            k: tf.Variable(np.abs(v), trainable=False, dtype=tf.float64) for k, v in w.items()
        }
        self._fn = tf.function(
            self._forward, input_signature=[tf.TensorSpec((None, len(EDGES), 4), tf.float64)]
        )

    # -- the traced graph -----------------------------------------------------------
    def _forward(self, masks):
        """masks (B, 6, 4) -> synflow (B, len(num_classes))."""
        b = tf.shape(masks)[0]
        w = self._abs

        def kconv(z, name, stride=1):  # conv on [x; x + t]: value and forward-mode tangent
            x, t = z[:b], z[b:]
            return tf.nn.conv2d(tf.concat([x, x + t], 0), w[name], stride, "SAME")

        def pool3(z):
            return tf.nn.avg_pool2d(
                z, 3, 1, "SAME"
            )  # TensorFlow's SAME average excludes the padding

        m = tf.concat([masks, masks], 0)[:, :, :, None, None, None]  # (2B, 6, 4, 1, 1, 1)
        x = tf.ones((b, *self.input_shape), tf.float64)
        z = kconv(tf.concat([x, tf.zeros_like(x)], 0), "stem")
        for s in range(3):
            if s > 0:
                y = kconv(kconv(z, f"resblock_{s}/conv_a", 2), f"resblock_{s}/conv_b")
                z = y + kconv(tf.nn.avg_pool2d(z, 2, 2, "VALID"), f"resblock_{s}/downsample")
            for i in range(self.num_cells):
                nodes = [z]
                for to in (1, 2, 3):
                    acc = None
                    for e, (t_, frm) in enumerate(EDGES):
                        if t_ != to:
                            continue
                        h, p = nodes[frm], f"cell_{s}_{i}/edge_{e}/"
                        term = (
                            m[:, e, 0] * h
                            + m[:, e, 1] * kconv(h, p + "conv_1x1")
                            + m[:, e, 2] * kconv(h, p + "conv_3x3")
                            + m[:, e, 3] * pool3(h)
                        )
                        acc = term if acc is None else acc + term
                    nodes.append(acc)
                z = nodes[3]
        feats = tf.reduce_mean(
            z, axis=[1, 2]
        )  # BN (identity) and ReLU (identity on >= 0), global pool
        outs = []
        for k in self.num_classes:
            x, t = feats[:b], feats[b:]
            tangent_logits = tf.matmul(x + t, w[f"predictions_{k}"])  # bias |0| has no tangent
            outs.append(tf.reduce_sum(tangent_logits, axis=1))
        return tf.stack(outs, axis=1)

    def __call__(self, cells: Sequence) -> np.ndarray:
        """Synflow of each cell: array (len(cells), len(num_classes))."""
        masks = cell_masks(cells)
        out = []
        for start in range(0, len(masks), self.batch_size):
            chunk = masks[start : start + self.batch_size]
            n = len(chunk)
            if n < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - n, *chunk.shape[1:]))])
            out.append(self._fn(tf.constant(chunk))[:n].numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.num_classes)))

    # -- the same weights in a real network ----------------------------------------
    def load_into(self, model, num_classes=None) -> None:
        """Copy the supernet's weights into ``build_nb201_network(cell, ...)``'s ``model`` (same
        input shape and channels): stem, the convs of the cell's ops, reduction blocks and the
        head for ``num_classes`` (default: the first); the head bias is set to 0."""
        k = self.num_classes[0] if num_classes is None else int(num_classes)
        model.get_layer("stem_conv").kernel.assign(self.weights["stem"])
        for s in range(3):
            if s > 0:
                rb = model.get_layer(f"resblock_{s}")
                rb.ka.assign(self.weights[f"resblock_{s}/conv_a"])
                rb.kb.assign(self.weights[f"resblock_{s}/conv_b"])
                rb.kd.assign(self.weights[f"resblock_{s}/downsample"])
            for i in range(self.num_cells):
                layer = model.get_layer(f"cell_{s}_{i}")
                for e, op in enumerate(layer.edge_ops):
                    if op is not None and hasattr(op, "kernel_size") and hasattr(op, "kernel"):
                        n = op.kernel_size
                        op.kernel.assign(self.weights[f"cell_{s}_{i}/edge_{e}/conv_{n}x{n}"])
        head = model.get_layer("predictions")
        head.kernel.assign(self.weights[f"predictions_{k}"])
        head.bias.assign(np.zeros(tuple(head.bias.shape)))


def cell_costs(
    cells: Sequence, *, input_shape=(32, 32, 3), num_classes=10, channels=16, num_cells=5
) -> dict:
    """Trainable parameters and multiply-adds of ``build_nb201_network`` for each cell, from 5 real
    builds: both are sums over the network's fixed part and independent per-edge op terms
    (every edge of every cell of a stage has the same width and resolution), so a network
    with all edges 'none' gives the fixed part and one with a single op on one edge gives
    that op's term. Returns ``{"params": array, "flops": array}`` (float)."""
    from keras_nas.blocks.network import build_nb201_network
    from keras_nas.proxies.core import score

    def measure(ops):
        model = build_nb201_network(
            list(ops),
            input_shape=input_shape,
            num_classes=num_classes,
            channels=channels,
            num_cells=num_cells,
        )
        return np.array([score(model, "params"), score(model, "flops")])

    none = ("none",) * len(EDGES)
    base = measure(none)
    term = {"none": np.zeros(2)}
    for op in NB201_OPS[1:]:
        term[op] = measure((op,) + none[1:]) - base
    out = np.array([base + sum(term[op] for op in _cell(c).ops) for c in cells]).reshape(-1, 2)
    return {"params": out[:, 0], "flops": out[:, 1]}
