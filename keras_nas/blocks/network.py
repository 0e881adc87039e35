"""Network builders: NASNet-style networks from genotypes, NAS-Bench-201 and macro networks.

Why this module exists: searches and users need a whole trainable ``keras.Model`` from a
search result; these functions wrap cells with the published skeletons so that
parameter counts match the papers and ``keras.applications`` (tests/test_network_params.py).

``build_network`` (NASNet/AmoebaNet/DARTS/ENAS genotypes):

* ``num_cells`` = N normal cells per stack; 3 stacks with a reduction cell between
  them (reductions at N and 2N: 3N normal + 2 reduction cells; DARTS "20 layers" = N 6).
* ``filters`` = F of the first stack, doubled at each reduction. Alternatively give
  ``penultimate_filters`` P (the "N@P" notation): the last stack outputs
  ``len(normal.concat) * 4F`` channels, so F = P / (4 * len(normal.concat)), i.e. P/24
  for NASNet-A's 6-way normal concat (NASNetMobile 4@1056 is F=44).
* stems: ``"cifar"`` (3x3 conv, F*3 filters) or ``"imagenet"`` (3x3 s2 conv, 32*stem_multiplier
  filters, then two reduction cells; keras.applications NASNet layout).
* head: ReLU, global average pool, dropout, Dense. Outputs softmax probabilities by
  default like keras.applications (``logits=True`` for raw logits).
* ``aux_head=True``: a second output from an ``AuxiliaryHead`` after the second reduction
  cell; compile with ``loss_weights=[1.0, AUX_LOSS_WEIGHT]`` (0.4).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_nas.blocks import ops as ops_lib
from keras_nas.blocks.cell import Cell
from keras_nas.blocks.stems import (
    AUX_LOSS_WEIGHT,
    AuxiliaryHead,
    StemConv,
    cifar_stem,
    imagenet_stem,
)
from keras_nas.space.genotype import Genotype, GenotypeError, load_genotype

__all__ = [
    "NASNetwork",
    "build_network",
    "build_nb201_network",
    "build_macro_network",
    "resolve_genotype",
    "load_model",
    "AUX_LOSS_WEIGHT",
]

_MIN_SIZE = {"cifar": 4, "imagenet": 32}


def resolve_genotype(genotype) -> Genotype:
    """A ``Genotype`` from a Genotype, zoo name ('nasnet_a'), compact/JSON string, dict or file path."""
    from keras_nas import zoo

    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, dict):
        return Genotype.from_dict(genotype)
    if isinstance(genotype, str):
        key = genotype.strip().lower().replace("-", "_")
        if key in zoo.GENOTYPES:
            return zoo.get(key)
        try:
            return load_genotype(genotype)
        except GenotypeError as e:
            raise GenotypeError(
                f"{e} (build_network accepts a Genotype, a zoo name from {sorted(zoo.GENOTYPES)}, "
                "a compact genotype string, JSON, or a path to a genotype file)"
            ) from None
    raise TypeError(
        f"genotype must be a Genotype, zoo name, genotype string/JSON or dict; got {type(genotype).__name__}."
    )


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    return v


def _check_input_shape(input_shape, min_size, what):
    if input_shape is None or len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}.")
    h, w, c = tuple(input_shape)
    for label, d in (("height", h), ("width", w)):
        if d is not None and d < min_size:
            raise ValueError(
                f"input {label} {d} is too small for {what}: it needs height and width >= {min_size}. "
                "Use a larger input_shape."
            )
    return tuple(input_shape)


def _head(x, num_classes, dropout, logits, name="predictions"):
    x = keras.layers.Activation("relu", name="head_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # float32 classifier under mixed precision too (the Keras mixed-precision guide's advice:
    # softmax and loss in float16 are numerically unstable).
    return keras.layers.Dense(
        num_classes, activation=None if logits else "softmax", name=name, dtype="float32"
    )(x)


def load_model(filepath, **kwargs):
    """``keras.models.load_model`` for files holding keras-nas layers.

    ``import keras_nas`` stays light and does not import the Keras layers, so a fresh process
    must import ``keras_nas.blocks`` (or call this function, which lives there) before Keras
    can find the registered classes. Keyword arguments go to ``keras.models.load_model``.
    """
    return keras.models.load_model(filepath, **kwargs)


def build_network(
    genotype,
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    num_cells=6,
    filters=None,
    stem="cifar",
    drop_path=0.0,
    drop_path_total_steps=None,
    aux_head=False,
    dropout=0.0,
    penultimate_filters=None,
    stem_multiplier=None,
    skip_reduction=False,
    logits=False,
    bn_momentum=None,
    bn_epsilon=1e-3,
    name=None,
) -> keras.Model:
    """Build a NASNet-style network from ``genotype``.

    Args:
      genotype: ``Genotype``, zoo name ('nasnet_a', 'amoebanet_a', 'darts_v2', 'enas'),
        compact string, JSON or path.
      input_shape: ``(H, W, C)``; cifar stem needs H, W >= 4, imagenet stem >= 32.
      num_classes: classes of the Dense head.
      num_cells: N, normal cells per stack (3 stacks).
      filters: F of the first stack (doubled at each reduction). Give ``filters`` or
        ``penultimate_filters`` (P = 4 * len(normal.concat) * F; 24F for NASNet-A).
      stem: ``"cifar"`` or ``"imagenet"``.
      drop_path: maximum scheduled drop-path probability (NASNet: 1 - keep prob; 0 = off).
      drop_path_total_steps: steps of the linear time ramp (None: no ramp, depth ramp only).
      aux_head: add the auxiliary classifier after the 2nd reduction (second model output).
      dropout: dropout rate before the classifier.
      stem_multiplier: cifar: stem filters = F * stem_multiplier (default 3);
        imagenet: stem conv filters = 32 * stem_multiplier (default 1, NASNetMobile; 3 = NASNetLarge).
      skip_reduction: keras.applications NASNet's ``skip_reduction`` (NASNetLarge: True): the
        first normal cell after a reduction reads the reduction cell's ``prev_prev``.
      logits: return raw logits instead of softmax probabilities (default False, like keras.applications).
      bn_momentum: BN moving-average momentum (default 0.9 for cifar as slim CIFAR, 0.9997 for imagenet).
      name: model name.
    """
    g = resolve_genotype(genotype)
    g.validate(ops_lib.registered_ops())
    _positive_int("num_cells", num_cells)
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}.")
    if (filters is None) == (penultimate_filters is None):
        raise ValueError(
            "Give exactly one of filters (F of the first stack) or penultimate_filters (P, the N@P notation)."
        )
    if penultimate_filters is not None:
        _positive_int("penultimate_filters", penultimate_filters)
        width = 4 * len(g.normal.concat)
        if penultimate_filters % width:
            raise ValueError(
                f"penultimate_filters {penultimate_filters} must be a multiple of 4 * len(normal concat) = {width} "
                f"for this genotype (the last stack outputs {len(g.normal.concat)} states of 4F channels)."
            )
        filters = penultimate_filters // width
    _positive_int("filters", filters)
    _num_classes = _positive_int("num_classes", num_classes)
    input_shape = _check_input_shape(
        input_shape, _MIN_SIZE[stem], f"stem={stem!r} with its reductions"
    )
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    if bn_momentum is None:
        bn_momentum = 0.9 if stem == "cifar" else ops_lib.BN_MOMENTUM
    kw = dict(bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)

    inputs = keras.Input(shape=input_shape, name="image")
    if stem == "cifar":
        x = cifar_stem(inputs, filters, 3 if stem_multiplier is None else stem_multiplier, **kw)
        prev = None
    else:
        x, prev = imagenet_stem(
            inputs, g.reduce, filters, 1 if stem_multiplier is None else stem_multiplier, **kw
        )

    total = 3 * num_cells + 2
    idx = 0
    aux = None
    # Resolution level (number of stride-2 steps) of x and prev, so that each cell is told
    # whether prev_prev needs a factorized reduction even when spatial sizes are dynamic.
    lx, lp = (0, 0) if stem == "cifar" else (3, 2)

    def cell_kwargs(reduction_prev):
        return dict(
            drop_path=drop_path,
            num_cells=total,
            total_steps=drop_path_total_steps,
            reduction_prev=reduction_prev,
            **kw,
        )

    for stack in range(3):
        f = filters * 2**stack
        if stack > 0:
            cell = Cell(
                g.reduce,
                f,
                reduction=True,
                cell_index=idx,
                name=f"reduction_cell_{stack}",
                **cell_kwargs(prev is not None and lp != lx),
            )
            out = cell([x, prev] if prev is not None else x)
            if not skip_reduction or prev is None:
                prev, lp = x, lx
            x, lx = out, lx + 1
            idx += 1
            if stack == 2 and aux_head:
                aux = AuxiliaryHead(
                    _num_classes,
                    pool_strides=3 if stem == "cifar" else 2,
                    activation=None if logits else "softmax",
                    name="aux_predictions",
                    dtype="float32",
                    **kw,
                )(x)
        for _ in range(num_cells):
            cell = Cell(
                g.normal,
                f,
                cell_index=idx,
                name=f"normal_cell_{idx}",
                **cell_kwargs(prev is not None and lp != lx),
            )
            x, prev, lp = cell([x, prev] if prev is not None else x), x, lx
            idx += 1
    y = _head(x, num_classes, dropout, logits)
    outputs = [y, aux] if aux_head else y
    return NASNetwork(
        inputs, outputs, name=name or (g.name or "nas_network").replace(" ", "_").replace("-", "_")
    )


@keras.saving.register_keras_serializable(package="keras_nas")
class NASNetwork(keras.Model):
    """The functional model returned by the builders; a plain ``keras.Model`` except that
    ``compile`` creates the optimizer's slot variables right away.

    Why: without a distribution strategy, Keras' TensorFlow trainer creates optimizer
    variables while tracing the first ``train_step``; ``tf.function`` then has to trace
    the whole step a second time. For a NASNet-size graph that doubles the time to the
    first training step on CPU. Building the optimizer eagerly in ``compile`` (what Keras
    itself does under a distribution strategy) avoids the second trace.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        opt = getattr(self, "optimizer", None)
        if (
            opt is not None
            and not opt.built
            and getattr(self, "_distribute_strategy", None) is None
            and all(layer.built for layer in self._flatten_layers())
        ):
            opt.build(self.trainable_variables)

    def compile_from_config(self, config):
        # What keras.Model.compile_from_config does (it skips models with a custom compile()).
        self.compile(**keras.saving.deserialize_keras_object(config))


# ----------------------------------------------------------------------------- NB201
def _nb201_cell(cell):
    from keras_nas.space.nb201 import NB201Cell

    if isinstance(cell, NB201Cell):
        return cell
    if isinstance(cell, str):
        return NB201Cell.parse(cell)
    if isinstance(cell, (list, tuple)):
        return NB201Cell(cell)
    raise TypeError(
        f"NB201 cell must be an NB201Cell, its string or a list of 6 ops, got {type(cell).__name__}."
    )


_NB201_OPS = {
    "nor_conv_1x1": "conv_1x1",
    "nor_conv_3x3": "conv_3x3",
    "avg_pool_3x3": "avg_pool_3x3",
    "skip_connect": "identity",
}
NB201_BN = dict(
    bn_momentum=0.9, bn_epsilon=1e-5
)  # PyTorch BatchNorm2d defaults used by NAS-Bench-201


@keras.saving.register_keras_serializable(package="keras_nas")
class NB201CellLayer(keras.layers.Layer):
    """One NAS-Bench-201 cell: node i = sum_j op_{j->i}(node j), output node 3.

    nor_conv_kxk = ReLU-Conv-BN, avg_pool_3x3 (padding excluded), skip_connect, none (dropped
    from the sum; a node with only 'none' inputs is zeros).
    """

    def __init__(self, cell, channels, **kwargs):
        super().__init__(**kwargs)
        self.cell = _nb201_cell(cell)
        self.channels = int(channels)

    def build(self, input_shape):
        from keras_nas.space.nb201 import EDGES

        ops_list = []
        for (to, frm), op in zip(EDGES, self.cell.ops):
            if op == "none":
                ops_list.append(None)
                continue
            layer = ops_lib.build_op(_NB201_OPS[op], self.channels, 1, **NB201_BN)
            layer.build((None, None, None, int(input_shape[-1])))
            ops_list.append(layer)
        self.edge_ops = ops_list
        self.built = True

    def call(self, x, training=None):
        from keras_nas.space.nb201 import EDGES

        training = bool(training)
        nodes = [x]
        for to in (1, 2, 3):
            terms = [
                self.edge_ops[e].call_op(nodes[frm], training)
                for e, (t, frm) in enumerate(EDGES)
                if t == to and self.edge_ops[e] is not None
            ]
            if not terms:
                nodes.append(ops.zeros_like(x))
            else:
                s = terms[0]
                for t in terms[1:]:
                    s = ops.add(s, t)
                nodes.append(s)
        return nodes[3]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(cell=str(self.cell), channels=self.channels)
        return cfg


@keras.saving.register_keras_serializable(package="keras_nas")
class NB201ResBlock(ops_lib.NASOp):
    """NAS-Bench-201 reduction block (ResNet basic block, stride 2): ReLU-Conv3x3 s2-BN,
    ReLU-Conv3x3-BN, plus shortcut AvgPool(2, s2) + 1x1 conv (no BN)."""

    def build_op(self, cin):
        f = self.filters
        self.ka, self.bna = self._conv_w("conv_a", (3, 3, cin, f)), self._bn_w("bn_a", f)
        self.kb, self.bnb = self._conv_w("conv_b", (3, 3, f, f)), self._bn_w("bn_b", f)
        self.kd = self._conv_w("downsample", (1, 1, cin, f))

    def call_op(self, x, training):
        y = self._bn(ops.conv(ops.relu(x), self.ka, strides=2, padding="same"), self.bna, training)
        y = self._bn(ops.conv(ops.relu(y), self.kb, padding="same"), self.bnb, training)
        r = ops.conv(ops.average_pool(x, 2, strides=2, padding="valid"), self.kd)
        return ops.add(y, r)


def build_nb201_network(
    cell,
    *,
    input_shape=(32, 32, 3),
    num_classes=10,
    channels=16,
    num_cells=5,
    logits=False,
    name=None,
) -> keras.Model:
    """NAS-Bench-201 network: stem 3x3 conv C + BN; 3 stages of ``num_cells`` cells (C, 2C, 4C)
    with a residual reduction block between; BN-ReLU-GAP-Dense.

    Trainable parameters equal NAS-Bench-201's ``params`` (PyTorch counts BN gamma/beta
    but not running statistics; ``model.count_params()`` also counts Keras' moving
    mean/variance).
    """
    c = _nb201_cell(cell)
    _positive_int("channels", channels)
    _positive_int("num_cells", num_cells)
    _positive_int("num_classes", num_classes)
    input_shape = _check_input_shape(input_shape, 4, "NAS-Bench-201's two reductions")
    for label, d in zip(("height", "width"), input_shape[:2]):
        if d is not None and d % 4:
            # The residual reduction block adds a stride-2 conv (rounds up) to a 2x2 average
            # pool (rounds down), as NAS-Bench-201 does; sizes must halve exactly twice.
            raise ValueError(
                f"input {label} {d} must be divisible by 4 for NAS-Bench-201's two residual reductions "
                f"(e.g. {max(4, d - d % 4)} or {d + 4 - d % 4}). Resize the images."
            )
    inputs = keras.Input(shape=input_shape, name="image")
    x = StemConv(channels, 1, 3, "same", name="stem_conv", **NB201_BN)(inputs)
    for stage in range(3):
        ch = channels * 2**stage
        if stage > 0:
            x = NB201ResBlock(ch, 2, name=f"resblock_{stage}", **NB201_BN)(x)
        for i in range(num_cells):
            x = NB201CellLayer(c, ch, name=f"cell_{stage}_{i}")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="lastact_bn")(x)
    x = keras.layers.Activation("relu", name="lastact_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    y = keras.layers.Dense(
        num_classes, activation=None if logits else "softmax", name="predictions", dtype="float32"
    )(x)
    return NASNetwork(inputs, y, name=name or "nb201_network")


# ----------------------------------------------------------------------------- macro
def build_macro_network(
    arch, *, input_shape=(32, 32, 3), num_classes=10, logits=False, name=None
) -> keras.Model:
    """Chain network for a ``MacroArchitecture``: per layer Conv(k, stride, SAME)-BN-ReLU.

    Layer i reads layer i-1's output (the image for i = 0) concatenated with the outputs
    of the layers in its ``skips``, each average-pooled (or resized, for non-integer
    factors) to the current resolution. Head: global average pool, Dense.
    """
    from keras_nas.space.macro import MacroArchitecture

    if isinstance(arch, str):
        arch = MacroArchitecture.from_json(arch)
    arch = MacroArchitecture(arch)
    if not arch:
        raise ValueError("A macro architecture needs at least one layer.")
    _positive_int("num_classes", num_classes)
    n_red = sum(1 for l in arch if l.stride > 1)
    input_shape = _check_input_shape(input_shape, 1, "this architecture")
    inputs = keras.Input(shape=input_shape, name="image")
    outs = []
    x = inputs
    for i, layer in enumerate(arch):
        for j in layer.skips:
            if not 0 <= j < i:
                raise ValueError(
                    f"macro layer {i}: skip from layer {j} is invalid; skips must name earlier layers 0..{i - 1}."
                )
        feats = [x]
        for j in layer.skips:
            if j == i - 1:
                continue
            s = outs[j]
            h, w = x.shape[1], x.shape[2]
            sh, sw = s.shape[1], s.shape[2]
            if (sh, sw) != (h, w):
                if h and w and sh % h == 0 and sw % w == 0 and sh // h == sw // w:
                    s = keras.layers.AveragePooling2D(sh // h, name=f"layer{i}_skip{j}_pool")(s)
                else:
                    s = keras.layers.Resizing(h, w, name=f"layer{i}_skip{j}_resize")(s)
            feats.append(s)
        if len(feats) > 1:
            x = keras.layers.Concatenate(name=f"layer{i}_concat")(feats)
        x = keras.layers.Conv2D(
            layer.filters,
            layer.kernel_size,
            strides=layer.stride,
            padding="same",
            use_bias=False,
            name=f"layer{i}_conv",
        )(x)
        x = keras.layers.BatchNormalization(name=f"layer{i}_bn")(x)
        x = keras.layers.Activation("relu", name=f"layer{i}_relu")(x)
        outs.append(x)
    del n_red
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    y = keras.layers.Dense(
        num_classes, activation=None if logits else "softmax", name="predictions", dtype="float32"
    )(x)
    return NASNetwork(inputs, y, name=name or "macro_network")
