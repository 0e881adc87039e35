"""Search spaces and genotypes. Pure Python: importing this does not import TensorFlow."""

from keras_nas.space.base import (
    KIND_GENERIC,
    KIND_INPUT,
    KIND_OP,
    Decision,
    SearchSpace,
    SpaceError,
)
from keras_nas.space.genotype import Block, CellGenotype, Genotype, GenotypeError, load_genotype
from keras_nas.space.macro import MacroArchitecture, MacroLayer, MacroSpace
from keras_nas.space.nasnet import NASNetCellSpace
from keras_nas.space.nb201 import NB201_OPS, NB201Cell, NB201Space
from keras_nas.space.ops import (
    AMOEBANET_OPS,
    DARTS_OPS,
    ENAS_OPS,
    NASNET_OPS,
    add_op_name,
    known_ops,
)

__all__ = [n for n in dir() if not n.startswith("_")]
