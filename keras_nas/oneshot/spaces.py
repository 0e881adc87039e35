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
* ``darts`` (the DARTS cell space: every node a MixedOp edge from every earlier state, top-2
  incoming edges by strongest non-``none`` op) is planned (issue #13 item 6) and not implemented
  yet: ``get_space("darts")`` says so.
"""

from __future__ import annotations

import numpy as np

from keras_nas.space.nb201 import EDGES, NB201_OPS, NB201Cell, NB201Space

SPACES = ("nb201",)
PLANNED_SPACES = ("darts",)


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

    def build_supernet(self, *, input_shape, num_classes, channels, num_cells, bn_momentum, bn_epsilon):
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
            raise ValueError(f"ops for space='nb201' must be distinct names from {list(NB201_OPS)}, got {list(ops)}.")
        super().__init__(ops)

    def edge_names(self):
        return [f"edge_{frm}_{to}" for to, frm in EDGES]

    def build_supernet(self, *, input_shape, num_classes, channels, num_cells, bn_momentum, bn_epsilon):
        from keras_nas.blocks.supernet import NB201Supernet

        return NB201Supernet(input_shape=input_shape, num_classes=num_classes, channels=channels,
                             num_cells=num_cells, ops=self.ops, bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)

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


def get_space(name: str, ops=None, num_blocks: int = 4) -> OneShotSpace:
    if name == "nb201":
        return NB201OneShot(NB201_OPS if ops is None else ops)
    if name in PLANNED_SPACES:
        raise ValueError(f"space={name!r} (the DARTS cell-space supernet) is not implemented yet; use space='nb201'.")
    raise ValueError(f"space must be one of {list(SPACES)}, got {name!r}.")
