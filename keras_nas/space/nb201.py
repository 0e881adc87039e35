"""The NAS-Bench-201 cell space (Dong & Yang 2020): 4 nodes, 6 edges, 5 ops per edge.

Node i (1..3) sums ``op(edge j->i)(node j)`` over j < i; node 0 is the cell input and
node 3 its output. Architectures are written as in the benchmark,
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from keras_nas.space.base import KIND_OP, Decision, SearchSpace, SpaceError

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), in string order


def edge_name(to: int, frm: int) -> str:
    return f"edge_{frm}_{to}"


class NB201Cell:
    """One NAS-Bench-201 cell: six op names, one per edge in ``EDGES`` order. Immutable and hashable."""

    __slots__ = ("ops",)

    def __init__(self, ops: Sequence[str]):
        if isinstance(ops, (str, bytes, dict)) or not hasattr(ops, "__iter__"):
            raise SpaceError(
                f"An NB201 cell takes a sequence of {len(EDGES)} op names, got {type(ops).__name__}."
            )
        ops = tuple(ops)
        if len(ops) != len(EDGES):
            raise SpaceError(f"An NB201 cell has {len(EDGES)} edges, got {len(ops)} ops.")
        for (to, frm), op in zip(EDGES, ops):
            if not isinstance(op, str) or op not in NB201_OPS:
                raise SpaceError(
                    f"NB201 edge {frm}->{to}: unknown op {op!r}; valid ops are {list(NB201_OPS)}."
                )
        object.__setattr__(self, "ops", ops)

    def __setattr__(self, k, v):
        raise AttributeError("NB201Cell is immutable.")

    def __reduce__(self):
        return (NB201Cell, (self.ops,))

    def op(self, to: int, frm: int) -> str:
        return self.ops[EDGES.index((to, frm))]

    def __str__(self):
        parts = []
        for to in (1, 2, 3):
            parts.append("|" + "|".join(f"{self.op(to, frm)}~{frm}" for frm in range(to)) + "|")
        return "+".join(parts)

    def __repr__(self):
        return f"NB201Cell({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, NB201Cell) and self.ops == other.ops

    def __hash__(self):
        return hash(self.ops)

    @classmethod
    def parse(cls, s: str) -> "NB201Cell":
        if not isinstance(s, str):
            raise SpaceError(
                f"NB201 string must be a string like '|op~0|+|op~0|op~1|+|...|', got {type(s).__name__}."
            )
        s = s.strip()
        nodes = s.split("+")
        if len(nodes) != 3:
            raise SpaceError(
                f"NB201 string {s[:80]!r} must have 3 '+'-separated nodes, like '|op~0|+|op~0|op~1|+|...|'."
            )
        found = {}
        for to, node in enumerate(nodes, start=1):
            items = [x for x in node.strip().strip("|").split("|") if x]
            if len(items) != to:
                raise SpaceError(f"NB201 string: node {to} needs {to} inputs, got {node[:80]!r}.")
            for item in items:
                if "~" not in item:
                    raise SpaceError(f"NB201 string: {item[:60]!r} should be 'op~input'.")
                op, frm = item.rsplit("~", 1)
                # ASCII digits only: int() would also take ' 1', '+1' or other scripts' digits.
                if not re.fullmatch(r"[0-9]", frm) or int(frm) >= to:
                    raise SpaceError(
                        f"NB201 string: node {to} input {frm[:20]!r} in {item[:60]!r} must be a node "
                        f"index 0..{to - 1}."
                    )
                if (to, int(frm)) in found:
                    raise SpaceError(f"NB201 string: node {to} lists input {frm} twice.")
                found[(to, int(frm))] = op
        return cls([found[e] for e in EDGES])  # every edge is present: `to` distinct inputs < to


class NB201Space(SearchSpace):
    name = "nb201"

    def __init__(self, ops: Sequence[str] = NB201_OPS):
        self.ops = tuple(ops)
        for o in self.ops:
            if o not in NB201_OPS:
                raise SpaceError(f"NB201 space: unknown op {o!r}; valid ops are {list(NB201_OPS)}.")
        super().__init__([Decision(edge_name(to, frm), self.ops, KIND_OP) for to, frm in EDGES])

    def decode(self, values: Mapping) -> NB201Cell:
        values = self.check_values(values)
        return NB201Cell([values[edge_name(to, frm)] for to, frm in EDGES])

    def encode(self, cell) -> dict:
        if isinstance(cell, str):
            cell = NB201Cell.parse(cell)
        return {edge_name(to, frm): op for (to, frm), op in zip(EDGES, cell.ops)}
