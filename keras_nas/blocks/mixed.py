"""``MixedOp``: one edge of a weight-sharing supernet, every candidate op of the edge at once.

Why this module exists: one-shot NAS (DARTS, DrNAS, GDAS, ENAS, SPOS) trains a single
*supernet* whose edges hold all candidate ops; an architecture is then a choice (or a
weighting) per edge, given to the network as an input instead of being baked into it. The
candidate ops are the ordinary keras-nas op layers (``keras_nas.blocks.ops.build_op``), so
the weights an op learns in the supernet have exactly the layout of the same op in a
network built from a derived genotype.

Two ways to call it (``keras.ops`` only, backend-agnostic):

* **mixed** (DARTS, DrNAS): ``mixed(x, weights=w)`` with ``w`` a ``(K,)`` vector returns
  ``sum_k w[k] * op_k(x)``. A ``none`` (``Zero``) candidate contributes nothing and is not
  computed.
* **single path** (GDAS, SPOS, ENAS, RSPS): ``mixed(x, index=i)`` computes only op ``i``
  (``keras.ops.switch``: one branch runs, so a one-path step costs one op, not K). With
  ``weights`` as well (GDAS' hard one-hot with a straight-through gradient) the result is
  ``w[i] * op_i(x) + sum_{k != i} w[k]``: the value of op ``i`` (the extra terms are 0 for a
  one-hot), and every weight gets a gradient (GDAS' formulation).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_nas.blocks import ops as ops_lib

PACKAGE = "keras_nas"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MixedOp(keras.layers.Layer):
    """All candidate ops of one edge (see the module docstring).

    Args:
      op_names: candidate op names, in the order of the weight vector (names of
        ``keras_nas.blocks.ops``: ``conv_3x3``, ``identity``, ``none``, ``sep_conv_3x3``, ...).
      filters, strides: of every candidate (``build_op(name, filters, strides)``).
      bn_momentum, bn_epsilon: batch norm of the candidates that have one.
    """

    def __init__(
        self,
        op_names,
        filters,
        strides=1,
        bn_momentum=ops_lib.BN_MOMENTUM,
        bn_epsilon=ops_lib.BN_EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        names = tuple(op_names)
        if not names:
            raise ValueError(
                "MixedOp needs at least one candidate op; pass op_names=('conv_3x3', ...)."
            )
        if len(set(names)) != len(names):
            raise ValueError(f"MixedOp candidate ops must be distinct, got {list(names)}.")
        self.op_names = names
        self.filters = int(filters)
        self.strides = int(strides)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.candidates = [
            ops_lib.build_op(
                n,
                self.filters,
                self.strides,
                bn_momentum=self.bn_momentum,
                bn_epsilon=self.bn_epsilon,
            )
            for n in names
        ]
        self._zero = [isinstance(op, ops_lib.Zero) for op in self.candidates]

    @property
    def num_ops(self) -> int:
        return len(self.op_names)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for op in self.candidates:
            if isinstance(op, ops_lib.NASOp):
                op.build(shape)
            else:  # a user-registered op: build it (and its sublayers) with one symbolic call
                op(keras.KerasTensor((None, 8, 8, shape[-1]), dtype=self.compute_dtype))
        self.built = True

    def call_candidate(self, k, x, training=None):
        """Op ``k`` alone (a Python int)."""
        op = self.candidates[k]
        if isinstance(op, ops_lib.NASOp):
            return op.call_op(x, bool(training))
        return op(x, training=training)

    def call(self, x, weights=None, index=None, training=None):
        if index is None:
            if weights is None:
                raise ValueError(
                    "MixedOp: pass weights= (a (K,) vector, mixed mode) or index= (one op, single path)."
                )
            out = None
            for k in range(self.num_ops):
                if self._zero[k]:
                    continue
                term = ops.multiply(
                    ops.cast(weights[k], x.dtype), self.call_candidate(k, x, training)
                )
                out = term if out is None else ops.add(out, term)
            if out is None:  # only 'none' candidates
                out = self.call_candidate(0, x, training)
            return out
        branches = [lambda z, k=k: self.call_candidate(k, z, training) for k in range(self.num_ops)]
        index = ops.cast(index, "int32")
        out = branches[0](x) if self.num_ops == 1 else ops.switch(index, branches, x)
        if weights is None:
            return out
        w = ops.cast(weights, out.dtype)
        chosen = ops.take(w, index)
        return ops.add(ops.multiply(chosen, out), ops.subtract(ops.sum(w), chosen))

    def compute_output_shape(self, input_shape):
        return self.candidates[0].compute_output_shape(input_shape)

    def candidate_weights(self, k) -> list:
        """The variables of candidate ``k`` (trainable and not), e.g. to copy into a derived network."""
        return list(self.candidates[k].weights)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            op_names=list(self.op_names),
            filters=self.filters,
            strides=self.strides,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return cfg
