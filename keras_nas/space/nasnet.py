"""The NASNet cell search space (Zoph et al. 2018), also AmoebaNet's (Real et al. 2019).

A normal and a reduction cell of B blocks each; every block picks two inputs (0 = previous
cell, 1 = the cell before, 2.. = earlier blocks) and two ops. Outputs no block consumed
are concatenated. Decision names follow keras-tuner's ``hp.name_scope`` convention:
``normal/b0_in0``, ``normal/b0_op0``, ... so the space plugs into any keras-tuner Oracle.
"""

from __future__ import annotations

from typing import Mapping

from keras_nas.space import ops as ops_lib
from keras_nas.space.base import KIND_INPUT, KIND_OP, Decision, SearchSpace, SpaceError
from keras_nas.space.genotype import Block, CellGenotype, Genotype

CELLS = ("normal", "reduce")


def decision_name(cell: str, block: int, field: str, j: int) -> str:
    """``field`` is 'in' or 'op'; e.g. decision_name('normal', 0, 'in', 1) == 'normal/b0_in1'."""
    return f"{cell}/b{block}_{field}{j}"


class NASNetCellSpace(SearchSpace):
    """Normal + reduction cells with ``num_blocks`` blocks over an op vocabulary.

    Args:
      num_blocks: B, blocks per cell (5 in NASNet and AmoebaNet).
      ops: 'amoebanet' (8 ops, the default), 'nasnet' (13 ops), 'darts', 'enas', or a list of op names.
    """

    name = "nasnet"

    def __init__(self, num_blocks: int = 5, ops="amoebanet"):
        if not isinstance(num_blocks, int) or num_blocks < 1:
            raise SpaceError(f"num_blocks must be a positive integer, got {num_blocks!r}.")
        self.num_blocks = num_blocks
        self.ops = ops_lib.resolve_vocabulary(ops)
        if ops_lib.NONE in self.ops:
            raise SpaceError(
                "The 'none' (zero) op cannot be searched in the NASNet space: a block of two zeros has no output. "
                "Use 'identity' instead."
            )
        decisions = []
        for cell in CELLS:
            for b in range(num_blocks):
                for j in range(2):
                    decisions.append(
                        Decision(decision_name(cell, b, "in", j), tuple(range(b + 2)), KIND_INPUT)
                    )
                    decisions.append(Decision(decision_name(cell, b, "op", j), self.ops, KIND_OP))
        super().__init__(decisions)

    def decode(self, values: Mapping) -> Genotype:
        values = self.check_values(values)
        cells = []
        for cell in CELLS:
            blocks = [
                Block(
                    tuple(values[decision_name(cell, b, "in", j)] for j in range(2)),
                    tuple(values[decision_name(cell, b, "op", j)] for j in range(2)),
                )
                for b in range(self.num_blocks)
            ]
            cells.append(CellGenotype(blocks))  # concat = unused states (paper rule)
        return Genotype(*cells)

    def encode(self, genotype: Genotype) -> dict:
        genotype.validate(self.ops)
        out = {}
        for cell in CELLS:
            c = genotype.cell(cell)
            if c.num_blocks != self.num_blocks:
                raise SpaceError(
                    f"{cell} cell has {c.num_blocks} blocks but this space has {self.num_blocks}; "
                    f"use NASNetCellSpace(num_blocks={c.num_blocks})."
                )
            for b, block in enumerate(c.blocks):
                for j in range(2):
                    out[decision_name(cell, b, "in", j)] = block.inputs[j]
                    out[decision_name(cell, b, "op", j)] = block.ops[j]
        return out

    def __repr__(self):
        return f"NASNetCellSpace(num_blocks={self.num_blocks}, ops={list(self.ops)})"
