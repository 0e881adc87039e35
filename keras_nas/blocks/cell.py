"""The NASNet-style ``Cell`` layer (built from a ``CellGenotype``) and ``ScheduledDropPath``.

Why this module exists: a cell is the unit that architecture search manipulates; this
layer turns a genotype into Keras computation with the conventions of the reference code
(slim ``nasnet_utils.NasNetABaseCell``, ``keras.applications.nasnet``):

* inputs ``[prev, prev_prev]``: state 0 = ``prev`` after ReLU-1x1 conv-BN, state 1 =
  ``prev_prev`` with its shape adjusted (factorized reduction if its resolution is
  twice ``prev``'s, ReLU-1x1 conv-BN if only its channel count differs from
  ``filters``, untouched otherwise; slim ``_reduce_prev_layer`` / keras
  ``_adjust_block``). A single tensor input means "no cell before" (the first cell of a
  network): state 1 is then the raw input, exactly as slim and keras do.
* reduction cell: ops reading states 0/1 use stride 2, ops reading block outputs
  stride 1; concat states still at the input resolution are factorized-reduced.
* ScheduledDropPath on every non-identity branch (slim ``_apply_drop_path``).

The cell is one Keras layer whose op sublayers are called through their ``call`` method
and whose output shape is computed analytically: a functional model of cells is cheap to
construct and to trace (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_nas.blocks import ops as ops_lib
from keras_nas.space.genotype import CellGenotype

PACKAGE = "keras_nas"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScheduledDropPath(keras.layers.Layer):
    """NASNet scheduled drop path: drop a whole branch per example, rescale survivors.

    drop probability = ``drop_prob * layer_ratio * min(step / total_steps, 1)`` where
    ``layer_ratio = (cell_index + 1) / num_cells`` (deeper cells drop more) and
    ``step`` counts training calls of the owning cell (``advance()``); with
    ``total_steps=None`` the time ramp is off (probability ``drop_prob * layer_ratio``
    from the start, as DARTS' constant schedule). No-op unless ``training`` is true.
    """

    def __init__(self, drop_prob, layer_ratio=1.0, total_steps=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(drop_prob) < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob!r}.")
        self.drop_prob = float(drop_prob)
        self.layer_ratio = float(layer_ratio)
        self.total_steps = int(total_steps) if total_steps else None
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        self.step = None
        if self.total_steps:
            self.step = self.add_weight(
                name="step", shape=(), initializer="zeros", trainable=False, dtype="float32"
            )
        self.built = True

    def drop_probability(self):
        p = self.drop_prob * self.layer_ratio
        if self.step is not None:
            p = p * ops.minimum(ops.convert_to_tensor(self.step) / float(self.total_steps), 1.0)
        return p

    def advance(self):
        """Count one training step (called once per training call by the owning cell)."""
        if self.step is not None:
            self.step.assign_add(1.0)

    def call(self, x, training=None):
        if not training or self.drop_prob == 0.0:
            return x
        keep = ops.cast(1.0 - self.drop_probability(), x.dtype)
        noise = keras.random.uniform(
            (ops.shape(x)[0], 1, 1, 1), dtype=x.dtype, seed=self.seed_generator
        )
        return x / keep * ops.floor(keep + noise)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            drop_prob=self.drop_prob,
            layer_ratio=self.layer_ratio,
            total_steps=self.total_steps,
            seed=self.seed,
        )
        return cfg


def _as_cell_genotype(genotype) -> CellGenotype:
    if isinstance(genotype, CellGenotype):
        return genotype
    if isinstance(genotype, str):
        return CellGenotype.parse(genotype)
    if isinstance(genotype, dict):
        return CellGenotype.from_dict(genotype)
    raise TypeError(
        f"Cell genotype must be a CellGenotype (e.g. genotype.normal), its compact string or dict; "
        f"got {type(genotype).__name__}. Pass genotype.normal or genotype.reduce, not the whole Genotype."
    )


def _is_shape_list(input_shape) -> bool:
    return (
        isinstance(input_shape, (list, tuple))
        and len(input_shape) > 0
        and isinstance(input_shape[0], (list, tuple))
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class Cell(keras.layers.Layer):
    """A NASNet-style cell.

    Args:
      genotype: ``CellGenotype`` (``genotype.normal`` / ``genotype.reduce``) or its compact string.
      filters: channels F of every op output; the cell outputs ``len(concat)`` states concatenated.
      reduction: stride-2 cell (halves the resolution).
      reduction_prev: whether ``prev_prev`` has twice ``prev``'s resolution (the cell before was a
        reduction). ``None`` (default) infers it from the input shapes.
      drop_path: maximum drop-path probability (``1 - drop_path_keep_prob``); 0 disables it.
      cell_index, num_cells: depth of this cell, for the drop-path depth ramp.
      total_steps: training steps over which drop path ramps up (``None``: no time ramp).
      bn_momentum, bn_epsilon: batch-norm settings (keras.applications NASNet: 0.9997, 1e-3).

    Call with ``[prev, prev_prev]`` or a single tensor (no cell before). Example::

        y = keras_nas.blocks.Cell(genotype.normal, filters=32)([x, x])
    """

    def __init__(
        self,
        genotype,
        filters,
        reduction=False,
        reduction_prev=None,
        drop_path=0.0,
        cell_index=0,
        num_cells=1,
        total_steps=None,
        bn_momentum=ops_lib.BN_MOMENTUM,
        bn_epsilon=ops_lib.BN_EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.genotype = _as_cell_genotype(genotype).validate("reduce" if reduction else "normal")
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"Cell filters must be a positive integer, got {filters!r}.")
        for b, blk in enumerate(self.genotype.blocks):
            for op in blk.ops:
                if op not in ops_lib._BUILDERS:
                    raise ValueError(
                        f"Cell block {b}: op {op!r} has no Keras implementation; register it with "
                        "keras_nas.blocks.register_op(name, builder)."
                    )
        self.filters = int(filters)
        self.reduction = bool(reduction)
        self.reduction_prev = None if reduction_prev is None else bool(reduction_prev)
        self.drop_path = float(drop_path)
        self.cell_index = int(cell_index)
        self.num_cells = int(num_cells)
        self.total_steps = int(total_steps) if total_steps else None
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)

    # ------------------------------------------------------------------ build
    def _bn_kw(self):
        return dict(bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon)

    def _make(self, layer, in_channels):
        """Build an op for inputs with ``in_channels`` channels; return (layer, fast?)."""
        if isinstance(layer, ops_lib.NASOp):
            layer.build((None, None, None, in_channels))
            return layer
        # A user-registered op: build it (and any sublayers) with one symbolic call.
        layer(keras.KerasTensor((None, 8, 8, in_channels), dtype=self.compute_dtype))
        return layer

    def _prev_prev_mode(self, prev_shape, pp_shape):
        if pp_shape is None:
            return "raw"
        if self.reduction_prev is not None:
            reduce_pp = self.reduction_prev
        else:
            hp, hpp = prev_shape[1], pp_shape[1]
            if hp is None or hpp is None:
                reduce_pp = False
            elif hpp == hp:
                reduce_pp = False
            elif hpp in (2 * hp, 2 * hp - 1):
                reduce_pp = True
            else:
                raise ValueError(
                    f"Cell {self.name}: prev_prev has spatial size {hpp} and prev {hp}; prev_prev must have the same "
                    "resolution as prev or twice it (after one reduction cell)."
                )
        if reduce_pp:
            return "reduce"
        return "project" if pp_shape[-1] != self.filters else "keep"

    def _build_preprocess(self, prev_shape, pp_shape) -> list:
        """The layers that make states 0 and 1 from ``[prev, prev_prev]``; returns their channels.
        (Shared with the DARTS supernet's mixed cell, ``keras_nas.blocks.supernet_darts``.)"""
        F, kw = self.filters, self._bn_kw()
        self.pp_mode = self._prev_prev_mode(prev_shape, pp_shape)
        self.preprocess0 = self._make(
            ops_lib.FactorizedReduction(F, 1, name="preprocess0", **kw), prev_shape[-1]
        )
        self.preprocess1 = None
        raw_pp_channels = (pp_shape or prev_shape)[-1]
        if self.pp_mode in ("reduce", "project"):
            stride = 2 if self.pp_mode == "reduce" else 1
            self.preprocess1 = self._make(
                ops_lib.FactorizedReduction(F, stride, name="preprocess1", **kw), raw_pp_channels
            )
        channels = [F, F if self.preprocess1 is not None else raw_pp_channels]
        self.state_channels = channels  # grows with the block outputs in build()
        return channels

    def _preprocess(self, inputs, training) -> list:
        """States 0 and 1 of the cell from its inputs (see the module docstring)."""
        if isinstance(inputs, (list, tuple)):
            prev, pp = inputs
        else:
            prev, pp = inputs, None
        s0 = self.preprocess0.call_op(prev, training)
        if self.preprocess1 is not None:
            s1 = self.preprocess1.call_op(pp, training)
        else:
            s1 = pp if pp is not None else prev
        return [s0, s1]

    def build(self, input_shape):
        if _is_shape_list(input_shape):
            if len(input_shape) != 2:
                raise ValueError(
                    f"Cell {self.name} takes [prev, prev_prev] (2 tensors) or one tensor; got {len(input_shape)} inputs."
                )
            prev_shape, pp_shape = tuple(input_shape[0]), tuple(input_shape[1])
        else:
            prev_shape, pp_shape = tuple(input_shape), None
        if len(prev_shape) != 4:
            raise ValueError(
                f"Cell {self.name} expects 4D (batch, height, width, channels) inputs, got {prev_shape}."
            )
        F, kw = self.filters, self._bn_kw()
        channels = self._build_preprocess(prev_shape, pp_shape)
        ops_list = []
        for b, blk in enumerate(self.genotype.blocks):
            for j, (i, name) in enumerate(zip(blk.inputs, blk.ops)):
                stride = 2 if self.reduction and i < 2 else 1
                layer = (
                    ops_lib.build_op(name, F, stride, **kw)
                    if name in ops_lib._BUILTIN_NAMES
                    else ops_lib.build_op(name, F, stride)
                )
                ops_list.append(self._make(layer, channels[i]))
            channels.append(F)
        self.cell_ops = ops_list
        self._fast = [isinstance(o, ops_lib.NASOp) for o in ops_list]
        self._drop = [
            self.drop_path > 0 and blk.ops[j] != "identity"
            for blk in self.genotype.blocks
            for j in range(2)
        ]
        reducers = []
        for c in self.genotype.concat:
            if self.reduction and c < 2:
                reducers.append(
                    self._make(
                        ops_lib.FactorizedReduction(F, 2, name=f"reduce_concat_{c}", **kw),
                        channels[c],
                    )
                )
            else:
                reducers.append(None)
        self.concat_reducers = reducers
        self.out_channels = sum(
            F if r is not None else channels[c] for c, r in zip(self.genotype.concat, reducers)
        )
        self.drop_path_layer = None
        if self.drop_path > 0:
            self.drop_path_layer = ScheduledDropPath(
                self.drop_path,
                (self.cell_index + 1) / max(self.num_cells, 1),
                self.total_steps,
                name="drop_path",
            )
            self.drop_path_layer.build(None)
        self.built = True

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=None):
        training = bool(training)
        states = self._preprocess(inputs, training)
        k = 0
        for blk in self.genotype.blocks:
            outs = []
            for i in blk.inputs:
                op = self.cell_ops[k]
                h = (
                    op.call_op(states[i], training)
                    if self._fast[k]
                    else op(states[i], training=training)
                )
                if training and self._drop[k]:
                    h = self.drop_path_layer.call(h, training=True)
                outs.append(h)
                k += 1
            states.append(ops.add(outs[0], outs[1]))
        if training and self.drop_path_layer is not None:
            self.drop_path_layer.advance()
        outs = [
            states[c] if r is None else r.call_op(states[c], training)
            for c, r in zip(self.genotype.concat, self.concat_reducers)
        ]
        return outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=-1)

    def compute_output_shape(self, input_shape):
        prev_shape = tuple(input_shape[0]) if _is_shape_list(input_shape) else tuple(input_shape)
        b, h, w = prev_shape[0], prev_shape[1], prev_shape[2]
        if self.reduction:
            h = None if h is None else (h + 1) // 2
            w = None if w is None else (w + 1) // 2
        if not self.built:
            self.build(input_shape)
        return (b, h, w, self.out_channels)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(
            genotype=self.genotype.to_string(),
            filters=self.filters,
            reduction=self.reduction,
            reduction_prev=self.reduction_prev,
            drop_path=self.drop_path,
            cell_index=self.cell_index,
            num_cells=self.num_cells,
            total_steps=self.total_steps,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return cfg
