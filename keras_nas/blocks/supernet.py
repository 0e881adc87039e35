"""The NAS-Bench-201 supernet: ``build_nb201_network``'s skeleton with a ``MixedOp`` on every edge.

Why this module exists: weight-sharing NAS trains one network that contains every cell of the
space. Here that network has exactly the skeleton of :func:`keras_nas.blocks.build_nb201_network`
(same stem, residual reduction blocks, head, layer names and op layers), and every one of the
6 edges of every cell is a :class:`~keras_nas.blocks.mixed.MixedOp` over the candidate ops. The
architecture is an *input* of ``call``, never a weight of the model:

* ``supernet(x, arch=w)``: ``w`` is an ``(6, K)`` weight matrix (rows in ``EDGES`` order,
  columns in ``supernet.ops`` order; a softmax or a Dirichlet sample), every op computed;
* ``supernet(x, path=p)``: ``p`` is a ``(6,)`` vector of op indices, only those ops computed
  (``arch`` may be given as well: GDAS' straight-through hard weights);

the same architecture is used by every cell of the network (NB201's shared cell).
:meth:`NB201Supernet.selected_weights` lists the variables of the sub-network a cell selects
and :meth:`NB201Supernet.transfer_to` copies them into a ``build_nb201_network`` model, so the
derived network inherits the shared weights (and tests can check the two agree).

Backend-agnostic Keras 3 (``keras.ops`` only).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_nas.blocks import network as network_lib
from keras_nas.blocks.mixed import MixedOp
from keras_nas.blocks.stems import StemConv
from keras_nas.space.nb201 import EDGES, NB201_OPS, NB201Cell

PACKAGE = "keras_nas"
#: NB201 op name -> keras-nas op layer name
NB201_OP_LAYERS = {
    "none": "none",
    "skip_connect": "identity",
    "nor_conv_1x1": "conv_1x1",
    "nor_conv_3x3": "conv_3x3",
    "avg_pool_3x3": "avg_pool_3x3",
}


class NB201MixedCell(keras.layers.Layer):
    """One NB201 cell with a MixedOp on each of its 6 edges; node i = sum of its incoming edges."""

    def __init__(self, channels, op_names=NB201_OPS, bn_momentum=0.9, bn_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.op_names = tuple(op_names)
        self.edges = [
            MixedOp(
                [NB201_OP_LAYERS[o] for o in self.op_names],
                self.channels,
                1,
                bn_momentum=bn_momentum,
                bn_epsilon=bn_epsilon,
                name=f"edge_{frm}_{to}",
            )
            for to, frm in EDGES
        ]

    def build(self, input_shape):
        for e in self.edges:
            e.build(tuple(input_shape))
        self.built = True

    def call(self, x, arch=None, path=None, training=None):
        nodes = [x]
        for to in (1, 2, 3):
            acc = None
            for e, (t, frm) in enumerate(EDGES):
                if t != to:
                    continue
                w = None if arch is None else arch[e]
                i = None if path is None else path[e]
                h = self.edges[e](nodes[frm], weights=w, index=i, training=training)
                acc = h if acc is None else ops.add(acc, h)
            nodes.append(acc)
        return nodes[3]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)


@keras.saving.register_keras_serializable(package=PACKAGE)
class NB201Supernet(keras.Model):
    """NB201 supernet (see the module docstring). Outputs logits.

    Args:
      input_shape, num_classes, channels, num_cells: as :func:`build_nb201_network`.
      ops: candidate ops of every edge, a subset of ``NB201_OPS`` in any order (default all 5).
      bn_momentum, bn_epsilon: every batch norm (default NAS-Bench-201's 0.9, 1e-5).
    """

    def __init__(
        self,
        *,
        input_shape=(32, 32, 3),
        num_classes=10,
        channels=16,
        num_cells=5,
        ops=NB201_OPS,
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        name="nb201_supernet",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        network_lib._positive_int("channels", channels)
        network_lib._positive_int("num_cells", num_cells)
        network_lib._positive_int("num_classes", num_classes)
        self.image_shape = network_lib._check_input_shape(
            input_shape, 4, "NAS-Bench-201's two reductions"
        )
        for d in self.image_shape[:2]:
            if d is not None and d % 4:
                raise ValueError(
                    f"NB201 supernet: input sides must be divisible by 4 (two residual reductions), "
                    f"got {self.image_shape}; resize the images."
                )
        bad = [o for o in ops if o not in NB201_OPS]
        if bad or not ops or len(set(ops)) != len(tuple(ops)):
            raise ValueError(
                f"NB201 supernet ops must be distinct names from {list(NB201_OPS)}, got {list(ops)}."
            )
        self.ops = tuple(ops)
        self.channels, self.num_cells, self.num_classes = (
            int(channels),
            int(num_cells),
            int(num_classes),
        )
        self.bn_momentum, self.bn_epsilon = float(bn_momentum), float(bn_epsilon)
        bn = dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)
        self.stem = StemConv(self.channels, 1, 3, "same", name="stem_conv", **bn)
        self.resblocks, self.cells = [], []
        for stage in range(3):
            ch = self.channels * 2**stage
            if stage > 0:
                self.resblocks.append(
                    network_lib.NB201ResBlock(ch, 2, name=f"resblock_{stage}", **bn)
                )
            for i in range(self.num_cells):
                self.cells.append(NB201MixedCell(ch, self.ops, name=f"cell_{stage}_{i}", **bn))
        self.lastact_bn = keras.layers.BatchNormalization(
            momentum=self.bn_momentum, epsilon=self.bn_epsilon, name="lastact_bn"
        )
        self.classifier = keras.layers.Dense(self.num_classes, name="predictions", dtype="float32")
        self._build_all()

    @property
    def num_edges(self) -> int:
        return len(EDGES)

    def _build_all(self):
        shape = (None, *self.image_shape)
        self.stem.build(shape)
        h, w = self.image_shape[:2]
        for stage in range(3):
            ch = self.channels * 2**stage
            if stage > 0:
                self.resblocks[stage - 1].build((None, h, w, ch // 2))
                h, w = h // 2, w // 2
            for i in range(self.num_cells):
                self.cells[stage * self.num_cells + i].build((None, h, w, ch))
        self.lastact_bn.build((None, h, w, 4 * self.channels))
        self.classifier.build((None, 4 * self.channels))
        self.built = True

    def call(self, x, arch=None, path=None, training=None):
        if arch is None and path is None:
            raise ValueError(
                "NB201Supernet: pass arch= (a (6, K) weight matrix) or path= (6 op indices)."
            )
        training = bool(training)
        x = self.stem.call_op(x, training)
        for stage in range(3):
            if stage > 0:
                x = self.resblocks[stage - 1].call_op(x, training)
            for i in range(self.num_cells):
                x = self.cells[stage * self.num_cells + i](
                    x, arch=arch, path=path, training=training
                )
        x = ops.relu(self.lastact_bn(x, training=training))
        return self.classifier(ops.mean(x, axis=(1, 2)))

    # -- sub-networks -------------------------------------------------------------------
    def cell_of(self, indices) -> NB201Cell:
        """The NB201 cell of one op index per edge (columns of ``arch``)."""
        return NB201Cell([self.ops[int(i)] for i in indices])

    def indices_of(self, cell) -> list:
        """Op index per edge of an NB201 cell (its ops must be candidates of this supernet)."""
        cell = network_lib._nb201_cell(cell)
        missing = sorted(set(cell.ops) - set(self.ops))
        if missing:
            raise ValueError(
                f"cell {cell} uses ops {missing} that this supernet does not have (ops={list(self.ops)})."
            )
        return [self.ops.index(o) for o in cell.ops]

    def _fixed_layers(self):
        return [self.stem, *self.resblocks, self.lastact_bn, self.classifier]

    def selected_weights(self, cell) -> list:
        """The variables of the sub-network ``cell`` selects: stem, reduction blocks, head and, on
        every edge of every cell, the chosen op's variables (trainable and not)."""
        idx = self.indices_of(cell)
        out = [v for layer in self._fixed_layers() for v in layer.weights]
        for c in self.cells:
            for e, k in enumerate(idx):
                out += c.edges[e].candidate_weights(k)
        return out

    def transfer_to(self, model, cell) -> None:
        """Copy the shared weights of ``cell``'s sub-network into ``model``, a
        ``build_nb201_network(cell, ...)`` network with the same input shape, channels and cells."""
        idx = self.indices_of(cell)
        for layer in self._fixed_layers():
            model.get_layer(layer.name).set_weights(layer.get_weights())
        for c in self.cells:
            target = model.get_layer(c.name)
            for e, k in enumerate(idx):
                op = target.edge_ops[e]
                if op is not None:
                    op.set_weights([v.numpy() for v in c.edges[e].candidate_weights(k)])

    def get_config(self):
        return {
            "input_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "channels": self.channels,
            "num_cells": self.num_cells,
            "ops": list(self.ops),
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "name": self.name,
        }
