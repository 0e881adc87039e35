"""The DARTS cell-space supernet: ``build_network``'s skeleton with a ``MixedOp`` on every edge.

Why this module exists: DARTS (Liu et al. 2019) searches a normal and a reduction cell of
``num_blocks`` intermediate nodes; node ``b`` sums a :class:`~keras_nas.blocks.mixed.MixedOp`
edge from every earlier state (the two cell inputs, states 0 and 1, and nodes ``2 .. b+1``), and
the cell outputs the concatenation of its intermediate nodes. A derived cell keeps two incoming
edges per node and one op per edge: a keras-nas :class:`~keras_nas.space.genotype.Genotype` with
``concat = (2, .., num_blocks + 1)``, built by :func:`keras_nas.blocks.build_network`.

The supernet has exactly the skeleton of ``build_network(genotype, stem="cifar", filters=C,
num_cells=N, logits=True)``: the same cifar stem (3x3 conv, 3C), 3 stacks of N normal cells with a
reduction cell between them, filters doubled at each reduction, the same cell preprocessing (the
first cell reads the raw stem output as state 1, as ``build_network`` and slim do; DARTS'
PyTorch code preprocesses it instead), stride-2 ops on the reduction cells' input edges, and the
same head (ReLU, global pool, Dense ``predictions``) and layer names (``stem_conv``,
``normal_cell_{i}``, ``reduction_cell_{s}``). So the sub-network a genotype selects has exactly the
parameters of the derived network (tests/test_oneshot_darts.py), and :meth:`DartsSupernet.transfer_to`
copies the shared weights into it.

Architecture inputs (one row per edge: every normal-cell edge, then every reduction-cell edge;
within a cell node by node, inputs in order 0, 1, 2, ..; see :func:`edge_list`):

* ``supernet(x, arch=w)``: ``w`` an ``(E, K)`` weight matrix, every op computed;
* ``supernet(x, path=p)``: ``p`` an ``(E,)`` vector of op indices, only those ops computed; a child
  genotype is the path whose unselected edges take the ``none`` op (which must be a candidate).

All normal cells share one architecture and all reduction cells the other (DARTS' rule).
Backend-agnostic Keras 3 (``keras.ops`` only).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_nas.blocks import network as network_lib
from keras_nas.blocks.cell import Cell, _is_shape_list
from keras_nas.blocks.mixed import MixedOp
from keras_nas.blocks.stems import StemConv
from keras_nas.space.genotype import CellGenotype, Genotype

PACKAGE = "keras_nas"
CELL_TYPES = ("normal", "reduce")


def cell_edges(num_blocks: int) -> list:
    """``(node, input)`` of every edge of one cell, node by node (node b reads states 0 .. b+1)."""
    return [(b, i) for b in range(int(num_blocks)) for i in range(b + 2)]


def edge_list(num_blocks: int) -> list:
    """``(cell type, node, input)`` of every row of the architecture matrix."""
    return [(c, b, i) for c in CELL_TYPES for b, i in cell_edges(num_blocks)]


def _placeholder_genotype(num_blocks):
    blocks = [((0, 1), ("identity", "identity"))] * num_blocks
    return CellGenotype(blocks, tuple(range(2, 2 + num_blocks)))


class DartsMixedCell(Cell):
    """A DARTS supernet cell: ``Cell``'s preprocessing, then node b = sum over i <= b+1 of
    ``MixedOp_{b,i}(state_i)``; output: the intermediate nodes concatenated."""

    def __init__(
        self, num_blocks, op_names, filters, reduction=False, reduction_prev=None, **kwargs
    ):
        super().__init__(
            _placeholder_genotype(int(num_blocks)),
            filters,
            reduction=reduction,
            reduction_prev=reduction_prev,
            **kwargs,
        )
        self.num_blocks = int(num_blocks)
        self.op_names = tuple(op_names)

    def build(self, input_shape):
        if _is_shape_list(input_shape):
            prev_shape, pp_shape = tuple(input_shape[0]), tuple(input_shape[1])
        else:
            prev_shape, pp_shape = tuple(input_shape), None
        channels = self._build_preprocess(prev_shape, pp_shape)
        kw = self._bn_kw()
        self.edges = []
        for b, i in cell_edges(self.num_blocks):
            stride = 2 if self.reduction and i < 2 else 1
            edge = MixedOp(self.op_names, self.filters, stride, name=f"edge_{b}_{i}", **kw)
            edge.build((None, None, None, channels[i]))
            self.edges.append(edge)
            if i == b + 1:
                channels.append(self.filters)
        self.concat_reducers = [None] * self.num_blocks
        self.out_channels = self.num_blocks * self.filters
        self.drop_path_layer = None
        self.built = True

    def call(self, inputs, arch=None, path=None, training=None):
        training = bool(training)
        states = self._preprocess(inputs, training)
        e = 0
        for b in range(self.num_blocks):
            acc = None
            for i in range(b + 2):
                w = None if arch is None else arch[e]
                k = None if path is None else path[e]
                h = self.edges[e](states[i], weights=w, index=k, training=training)
                acc = h if acc is None else ops.add(acc, h)
                e += 1
            states.append(acc)
        return ops.concatenate(states[2:], axis=-1)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("genotype", None)  # a placeholder: the edges are mixed
        cfg.update(num_blocks=self.num_blocks, op_names=list(self.op_names))
        return cfg


@keras.saving.register_keras_serializable(package=PACKAGE)
class DartsSupernet(keras.Model):
    """DARTS cell-space supernet (see the module docstring). Outputs logits.

    Args:
      input_shape, num_classes: of the data (height and width >= 4).
      channels: F of the first stack (``build_network``'s ``filters``), doubled at each reduction.
      num_cells: N normal cells per stack (3 stacks, 2 reduction cells).
      num_blocks: intermediate nodes per cell (DARTS: 4).
      ops: candidate op names (``keras_nas.blocks.ops``), ``none`` among them.
      bn_momentum, bn_epsilon: every batch norm.
    """

    def __init__(
        self,
        *,
        input_shape=(32, 32, 3),
        num_classes=10,
        channels=16,
        num_cells=2,
        num_blocks=4,
        ops=(
            "none",
            "max_pool_3x3",
            "avg_pool_3x3",
            "identity",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "dil_conv_3x3",
            "dil_conv_5x5",
        ),
        bn_momentum=0.9,
        bn_epsilon=1e-3,
        stem_multiplier=3,
        name="darts_supernet",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        for k, v in (
            ("channels", channels),
            ("num_cells", num_cells),
            ("num_classes", num_classes),
            ("num_blocks", num_blocks),
            ("stem_multiplier", stem_multiplier),
        ):
            network_lib._positive_int(k, v)
        self.image_shape = network_lib._check_input_shape(
            input_shape, 4, "the cifar stem with its reductions"
        )
        ops_t = tuple(ops)
        if "none" not in ops_t or len(ops_t) < 2 or len(set(ops_t)) != len(ops_t):
            raise ValueError(
                f"DARTS supernet ops must be distinct names, 'none' and at least one other among them "
                f"(an unselected edge of a child is 'none'), got {list(ops_t)}."
            )
        self.ops = ops_t
        self.none_index = ops_t.index("none")
        self.channels, self.num_cells, self.num_classes = (
            int(channels),
            int(num_cells),
            int(num_classes),
        )
        self.num_blocks, self.stem_multiplier = int(num_blocks), int(stem_multiplier)
        self.bn_momentum, self.bn_epsilon = float(bn_momentum), float(bn_epsilon)
        self.cell_edges = cell_edges(self.num_blocks)
        bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
        self.stem = StemConv(
            self.channels * self.stem_multiplier, 1, 3, "same", name="stem_conv", **bn
        )
        # build_network's loop: the cell order, names, and whether prev_prev is a resolution ahead
        self.cells, self._plan = [], []
        idx, lx, lp, has_prev = 0, 0, 0, False
        for stack in range(3):
            f = self.channels * 2**stack
            if stack > 0:
                self.cells.append(
                    DartsMixedCell(
                        self.num_blocks,
                        self.ops,
                        f,
                        reduction=True,
                        reduction_prev=has_prev and lp != lx,
                        name=f"reduction_cell_{stack}",
                        **bn,
                    )
                )
                self._plan.append("reduce")
                lp, lx, idx = lx, lx + 1, idx + 1
                has_prev = True
            for _ in range(self.num_cells):
                self.cells.append(
                    DartsMixedCell(
                        self.num_blocks,
                        self.ops,
                        f,
                        reduction_prev=has_prev and lp != lx,
                        name=f"normal_cell_{idx}",
                        **bn,
                    )
                )
                self._plan.append("normal")
                lp, idx, has_prev = lx, idx + 1, True
        self.classifier = keras.layers.Dense(self.num_classes, name="predictions", dtype="float32")
        self._build_all()

    @property
    def edges_per_cell(self) -> int:
        return len(self.cell_edges)

    @property
    def num_edges(self) -> int:
        return 2 * self.edges_per_cell

    def _build_all(self):
        h, w, c = self.image_shape
        self.stem.build((None, h, w, c))
        x, prev = (None, h, w, self.channels * self.stem_multiplier), None
        for cell, kind in zip(self.cells, self._plan):
            shape = [x, prev] if prev is not None else x
            cell.build(shape)
            out = cell.compute_output_shape(shape)
            prev, x = x, out
        self.classifier.build((None, x[-1]))
        self.built = True

    def _rows(self, m, kind):
        if m is None:
            return None
        n = self.edges_per_cell
        return m[:n] if kind == "normal" else m[n:]

    def call(self, x, arch=None, path=None, training=None):
        if arch is None and path is None:
            raise ValueError(
                f"DartsSupernet: pass arch= (an ({self.num_edges}, K) weight matrix) or path= "
                f"({self.num_edges} op indices)."
            )
        training = bool(training)
        x = self.stem.call_op(x, training)
        prev = None
        for cell, kind in zip(self.cells, self._plan):
            out = cell(
                [x, prev] if prev is not None else x,
                arch=self._rows(arch, kind),
                path=self._rows(path, kind),
                training=training,
            )
            prev, x = x, out
        x = ops.relu(x)
        return self.classifier(ops.mean(x, axis=(1, 2)))

    # -- sub-networks -------------------------------------------------------------------
    def _check(self, genotype) -> Genotype:
        g = network_lib.resolve_genotype(genotype)
        want = tuple(range(2, 2 + self.num_blocks))
        for kind in CELL_TYPES:
            c = g.cell(kind)
            if c.num_blocks != self.num_blocks or c.concat != want:
                raise ValueError(
                    f"{kind} cell {c.to_string()} is not a cell of this supernet: it needs "
                    f"{self.num_blocks} blocks and concat {list(want)} (every intermediate node)."
                )
            for b, blk in enumerate(c.blocks):
                if blk.inputs[0] == blk.inputs[1]:
                    raise ValueError(
                        f"{kind} cell, block {b}: both inputs are state {blk.inputs[0]}; a DARTS "
                        "cell keeps two distinct incoming edges per node."
                    )
                bad = [o for o in blk.ops if o not in self.ops or o == "none"]
                if bad:
                    raise ValueError(
                        f"{kind} cell, block {b}: ops {bad} are not candidates of this supernet "
                        f"(non-'none' ops of {list(self.ops)})."
                    )
        return g

    def selection(self, genotype) -> dict:
        """``{cell type: [(edge row within the cell, op index), ...]}`` in the genotype's block and
        input order (``Cell``'s op order)."""
        g = self._check(genotype)
        pos = {e: j for j, e in enumerate(self.cell_edges)}
        return {
            kind: [
                (pos[(b, i)], self.ops.index(o))
                for b, blk in enumerate(g.cell(kind).blocks)
                for i, o in zip(blk.inputs, blk.ops)
            ]
            for kind in CELL_TYPES
        }

    def path_of(self, genotype):
        """The op index of every edge computing ``genotype`` (unselected edges: ``none``)."""
        sel, n = self.selection(genotype), self.edges_per_cell
        path = [self.none_index] * self.num_edges
        for t, kind in enumerate(CELL_TYPES):
            for e, k in sel[kind]:
                path[t * n + e] = k
        return path

    def selected_weights(self, genotype) -> list:
        """Variables of the sub-network ``genotype`` selects: stem, every cell's preprocessing and its
        selected edges' chosen ops, the classifier."""
        sel = self.selection(genotype)
        out = list(self.stem.weights)
        for cell, kind in zip(self.cells, self._plan):
            for p in (cell.preprocess0, cell.preprocess1):
                if p is not None:
                    out += list(p.weights)
            for e, k in sel[kind]:
                out += cell.edges[e].candidate_weights(k)
        return out + list(self.classifier.weights)

    def transfer_to(self, model, genotype) -> None:
        """Copy the shared weights of ``genotype``'s sub-network into ``model``, a
        ``build_network(genotype, filters=channels, num_cells=num_cells, stem="cifar")`` network."""
        sel = self.selection(genotype)
        model.get_layer("stem_conv").set_weights(self.stem.get_weights())
        model.get_layer("predictions").set_weights(self.classifier.get_weights())
        for cell, kind in zip(self.cells, self._plan):
            target = model.get_layer(cell.name)
            for name in ("preprocess0", "preprocess1"):
                src, dst = getattr(cell, name), getattr(target, name)
                if (src is None) != (dst is None):
                    raise ValueError(
                        f"{cell.name}: {name} differs between the supernet and the model."
                    )
                if src is not None:
                    dst.set_weights(src.get_weights())
            for j, (e, k) in enumerate(sel[kind]):
                target.cell_ops[j].set_weights(
                    [v.numpy() for v in cell.edges[e].candidate_weights(k)]
                )

    def get_config(self):
        return {
            "input_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "channels": self.channels,
            "num_cells": self.num_cells,
            "num_blocks": self.num_blocks,
            "ops": list(self.ops),
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "stem_multiplier": self.stem_multiplier,
            "name": self.name,
        }
