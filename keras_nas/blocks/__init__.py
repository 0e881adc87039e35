"""keras_nas.blocks: Keras 3 layers and network builders for genotypes.

Why this package exists: it is the only place where genotypes become Keras computation
(cells, ops, stems, heads, whole networks). Backend-agnostic: ``keras.ops`` and
``keras.layers`` only, never TensorFlow directly.
"""

from keras_nas.blocks.cell import Cell, ScheduledDropPath
from keras_nas.blocks.network import (
    build_macro_network,
    build_nb201_network,
    build_network,
    load_model,
    resolve_genotype,
)
from keras_nas.blocks.ops import build_op, register_op, registered_ops
from keras_nas.blocks.stems import AUX_LOSS_WEIGHT, AuxiliaryHead

__all__ = [
    "AUX_LOSS_WEIGHT",
    "AuxiliaryHead",
    "Cell",
    "ScheduledDropPath",
    "build_macro_network",
    "build_nb201_network",
    "build_network",
    "build_op",
    "load_model",
    "register_op",
    "registered_ops",
    "resolve_genotype",
]
