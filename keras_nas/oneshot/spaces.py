"""Search spaces as the one-shot strategies see them: a supernet, edges x candidate ops, derivation.

Why this module exists: every strategy (DARTS, DrNAS, GDAS, SPOS, ENAS, supernet + evolution)
works on an ``(E, K)`` matrix -- E edges, K candidate ops per edge -- and a supernet that takes
either that matrix (``arch=``) or one op index per edge (``path=``). A :class:`OneShotSpace`
hides the rest: which supernet to build, how an architecture maps to op indices and back,
how a weight matrix becomes an architecture (derivation), the ask/tell ``SearchSpace`` the
controllers use (ENAS, aging evolution), and how the derived architecture is rebuilt with
the ordinary builders.

* ``nb201``: :class:`~keras_nas.blocks.supernet.NB201Supernet`; the derived cell is the plain
  argmax per edge over all ops, ``none`` included (NAS-Bench-201's convention, which is what
  exposes the skip/none collapse of DARTS).
* ``darts``: the DARTS cell space (normal + reduction cell, ``num_blocks`` intermediate nodes,
  every node a MixedOp edge from every earlier state; :class:`~keras_nas.blocks.supernet_darts.
  DartsSupernet`, ``build_network``'s skeleton). Derivation is DARTS' rule: per node, the two
  incoming edges whose strongest non-``none`` op weighs most, each with that op; the cell
  concatenates every intermediate node. A child (single path, controllers) is a keras-nas
  ``Genotype`` whose nodes read two distinct states, concat ``2 .. num_blocks + 1``
  (:class:`DartsCellSpace`); unselected edges run ``none``.
"""

from __future__ import annotations

import numpy as np

from keras_nas.space import ops as space_ops
from keras_nas.space.base import KIND_INPUT, KIND_OP, Decision, SearchSpace
from keras_nas.space.genotype import Block, CellGenotype, Genotype
from keras_nas.space.nb201 import EDGES, NB201_OPS, NB201Cell, NB201Space

SPACES = ("nb201", "darts")


class OneShotSpace:
    """Base class; see the module docstring."""

    name = ""
    family = ""  # keras_nas.families name of the derived architecture

    def __init__(self, ops):
        self.ops = tuple(ops)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    num_edges = 0

    def edge_names(self) -> list:
        raise NotImplementedError

    def build_supernet(
        self, *, input_shape, num_classes, channels, num_cells, bn_momentum, bn_epsilon
    ):
        raise NotImplementedError

    def derive(self, weights: np.ndarray):
        """The architecture a ``(E, K)`` weight matrix (probabilities, logits) stands for."""
        raise NotImplementedError

    def search_space(self):
        """The ask/tell ``SearchSpace`` of child architectures (for ENAS and evolution)."""
        raise NotImplementedError

    def path_of(self, arch) -> np.ndarray:
        """One op index per edge of the supernet computing ``arch`` (int32, shape (E,))."""
        raise NotImplementedError

    def random_path(self, rng: np.random.Generator) -> np.ndarray:
        """A uniformly drawn single path for SPOS training."""
        raise NotImplementedError

    def build_network(self, arch, **kwargs):
        raise NotImplementedError


class NB201OneShot(OneShotSpace):
    name = "nb201"
    family = "nb201"
    num_edges = len(EDGES)

    def __init__(self, ops=NB201_OPS):
        ops = tuple(ops)
        bad = [o for o in ops if o not in NB201_OPS]
        if bad or not ops or len(set(ops)) != len(ops):
            raise ValueError(
                f"ops for space='nb201' must be distinct names from {list(NB201_OPS)}, got {list(ops)}."
            )
        super().__init__(ops)

    def edge_names(self):
        return [f"edge_{frm}_{to}" for to, frm in EDGES]

    def build_supernet(
        self, *, input_shape, num_classes, channels, num_cells, bn_momentum, bn_epsilon
    ):
        from keras_nas.blocks.supernet import NB201Supernet

        return NB201Supernet(
            input_shape=input_shape,
            num_classes=num_classes,
            channels=channels,
            num_cells=num_cells,
            ops=self.ops,
            bn_momentum=bn_momentum,
            bn_epsilon=bn_epsilon,
        )

    def derive(self, weights):
        w = np.asarray(weights)
        return NB201Cell([self.ops[int(np.argmax(row))] for row in w])

    def search_space(self):
        return NB201Space(self.ops)

    def path_of(self, arch):
        cell = arch if isinstance(arch, NB201Cell) else NB201Cell.parse(str(arch))
        return np.asarray([self.ops.index(o) for o in cell.ops], np.int32)

    def random_path(self, rng):
        return rng.integers(0, self.num_ops, size=self.num_edges).astype(np.int32)

    def build_network(self, arch, **kwargs):
        from keras_nas.blocks.network import build_nb201_network

        return build_nb201_network(arch, **kwargs)


class DartsCellSpace(SearchSpace):
    """The children of the DARTS supernet as an ask/tell space (ENAS, evolution, random sampling).

    Per cell (normal, reduce) and node b: ``{cell}/b{b}_inputs`` -- the two distinct states it
    reads, as ``"i,j"`` with ``i < j <= b + 1`` -- and ``{cell}/b{b}_op0`` / ``_op1``, the op on
    each (``none`` excluded). Decodes to a ``Genotype`` with concat ``2 .. num_blocks + 1``.
    """

    name = "darts"

    def __init__(self, num_blocks, ops):
        self.num_blocks = int(num_blocks)
        self.ops = tuple(o for o in ops if o != space_ops.NONE)
        decisions = []
        for cell in ("normal", "reduce"):
            for b in range(self.num_blocks):
                pairs = tuple(f"{i},{j}" for j in range(b + 2) for i in range(j))
                decisions.append(Decision(f"{cell}/b{b}_inputs", pairs, KIND_INPUT))
                decisions += [Decision(f"{cell}/b{b}_op{j}", self.ops, KIND_OP) for j in range(2)]
        super().__init__(decisions)

    def decode(self, values) -> Genotype:
        values = self.check_values(values)
        concat = tuple(range(2, 2 + self.num_blocks))
        cells = []
        for cell in ("normal", "reduce"):
            blocks = [
                Block(
                    tuple(int(i) for i in values[f"{cell}/b{b}_inputs"].split(",")),
                    (values[f"{cell}/b{b}_op0"], values[f"{cell}/b{b}_op1"]),
                )
                for b in range(self.num_blocks)
            ]
            cells.append(CellGenotype(blocks, concat))
        return Genotype(*cells)

    def encode(self, genotype) -> dict:
        out = {}
        for cell in ("normal", "reduce"):
            blocks = genotype.cell(cell).blocks
            for b, blk in enumerate(blocks):
                order = sorted(range(2), key=lambda j: blk.inputs[j])
                out[f"{cell}/b{b}_inputs"] = ",".join(str(blk.inputs[j]) for j in order)
                for n, j in enumerate(order):
                    out[f"{cell}/b{b}_op{n}"] = blk.ops[j]
        return self.check_values(out)


class DartsOneShot(OneShotSpace):
    """The DARTS cell space (see the module docstring)."""

    name = "darts"
    family = "nasnet"

    def __init__(self, ops=space_ops.DARTS_OPS, num_blocks=4):
        ops = tuple(space_ops.canonical_op(o) for o in ops)
        from keras_nas.blocks import ops as block_ops

        known = set(block_ops.registered_ops())
        bad = [o for o in ops if o not in known]
        if bad or len(set(ops)) != len(ops) or space_ops.NONE not in ops or len(ops) < 2:
            raise ValueError(
                f"ops for space='darts' must be distinct op names of keras_nas.blocks ({sorted(known)}), "
                f"'none' and at least one other among them (a child's unselected edges run 'none'), "
                f"got {list(ops)}; e.g. keras_nas.space.ops.DARTS_OPS."
            )
        super().__init__(ops)
        self.num_blocks = int(num_blocks)
        self.none_index = ops.index(space_ops.NONE)
        self.cell_edges = [(b, i) for b in range(self.num_blocks) for i in range(b + 2)]
        self.num_edges = 2 * len(self.cell_edges)
        self._space = DartsCellSpace(self.num_blocks, ops)

    def edge_names(self):
        return [
            f"{c}_node{b + 2}_from{i}" for c in ("normal", "reduce") for b, i in self.cell_edges
        ]

    def build_supernet(
        self, *, input_shape, num_classes, channels, num_cells, bn_momentum, bn_epsilon
    ):
        from keras_nas.blocks.supernet_darts import DartsSupernet

        return DartsSupernet(
            input_shape=input_shape,
            num_classes=num_classes,
            channels=channels,
            num_cells=num_cells,
            num_blocks=self.num_blocks,
            ops=self.ops,
            bn_momentum=bn_momentum,
            bn_epsilon=bn_epsilon,
        )

    def derive(self, weights) -> Genotype:
        """DARTS' rule: per node, keep the two incoming edges with the largest non-``none`` op
        weight (ties: the earlier state), each with its strongest non-``none`` op; concat = every
        intermediate node."""
        w = np.asarray(weights, np.float64)
        n = len(self.cell_edges)
        cand = [k for k in range(self.num_ops) if k != self.none_index]
        cells = []
        for t in range(2):
            rows, blocks = w[t * n : (t + 1) * n], []
            for b in range(self.num_blocks):
                es = [e for e, (bb, _) in enumerate(self.cell_edges) if bb == b]
                best = {e: max(cand, key=lambda k: (rows[e, k], -k)) for e in es}
                top = sorted(es, key=lambda e: (-rows[e, best[e]], self.cell_edges[e][1]))[:2]
                top.sort(key=lambda e: self.cell_edges[e][1])
                blocks.append(
                    Block(
                        tuple(self.cell_edges[e][1] for e in top),
                        tuple(self.ops[best[e]] for e in top),
                    )
                )
            cells.append(CellGenotype(blocks, tuple(range(2, 2 + self.num_blocks))))
        return Genotype(*cells)

    def search_space(self):
        return self._space

    def path_of(self, arch):
        from keras_nas.blocks.network import resolve_genotype

        g = resolve_genotype(arch)
        pos = {e: j for j, e in enumerate(self.cell_edges)}
        path = np.full(self.num_edges, self.none_index, np.int32)
        for t, cell in enumerate(("normal", "reduce")):
            c = g.cell(cell)
            if c.num_blocks != self.num_blocks:
                raise ValueError(
                    f"{cell} cell has {c.num_blocks} blocks, this space {self.num_blocks}."
                )
            for b, blk in enumerate(c.blocks):
                for i, o in zip(blk.inputs, blk.ops):
                    path[t * len(self.cell_edges) + pos[(b, i)]] = self.ops.index(o)
        return path

    def random_path(self, rng):
        values = {
            d.name: d.options[int(rng.integers(len(d.options)))] for d in self._space.decisions
        }
        return self.path_of(self._space.decode(values))

    def build_network(self, arch, **kwargs):
        from keras_nas.blocks.network import build_network

        if "channels" in kwargs:  # the supernet's name for build_network's filters
            kwargs["filters"] = kwargs.pop("channels")
        return build_network(arch, **kwargs)


def get_space(name: str, ops=None, num_blocks: int = 4) -> OneShotSpace:
    if name == "nb201":
        return NB201OneShot(NB201_OPS if ops is None else ops)
    if name == "darts":
        return DartsOneShot(space_ops.DARTS_OPS if ops is None else ops, num_blocks)
    raise ValueError(f"space must be one of {list(SPACES)}, got {name!r}.")
