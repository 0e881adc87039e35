"""Genotypes of NASNet-style cells: immutable, hashable, comparable by value.

Index convention (the one of the NASNet/AmoebaNet reference code): in a cell, hidden
state 0 is the previous cell's output, 1 the output of the cell before it, and 2, 3, ...
the outputs of the cell's blocks in order. Block ``b`` (0-based) may read states
``0 .. b+1``. A block applies one op to each of its two inputs and adds the results.
The cell's output concatenates the states listed in ``concat``; by default these are the
block outputs that no block consumed (the NASNet paper's rule), but published genotypes
carry their own lists because the reference code hard-codes them (NASNet-A's normal cell
concatenates state 1 too).

Serialised forms:

* compact string (``str(g)`` / ``Genotype.parse``)::

    normal=sep_conv_5x5~0+sep_conv_3x3~1|...|sep_conv_3x3~0+identity~0/1,2,3,4,5,6;reduce=...

  one ``|``-separated entry per block, ``op~input`` for each of its two inputs, then
  ``/`` and the concat list.
* JSON (``to_json`` / ``from_json``) with a ``format`` and ``version`` field; every
  version ever written stays readable (see ``_MIGRATIONS``).
"""

from __future__ import annotations

import json
import operator
import re
from typing import Iterable, NamedTuple, Sequence

from keras_nas.space import ops as ops_lib
from keras_nas.space.base import short_repr

FORMAT = "keras-nas/genotype"
VERSION = 1


class GenotypeError(ValueError):
    """A genotype is malformed; the message names the cell, block and field."""


_DIGITS = re.compile(
    r"[0-9]{1,9}"
)  # ASCII only: int() also takes " 1", "+1", "1_0", Arabic-Indic digits
_short = short_repr


def _index(x, what: str) -> int:
    """``x`` as a state index, refusing what ``int()`` would coerce (floats, bools, strings)."""
    if isinstance(x, bool):
        raise GenotypeError(f"{what} must be an integer, got the boolean {x!r}.")
    try:
        return operator.index(x)  # ints and numpy integers; not 0.7, '1' or True
    except TypeError:
        raise GenotypeError(
            f"{what} must be an integer, got {type(x).__name__} {_short(x)}."
        ) from None


def _parse_index(text: str):
    """An index written in a genotype string (ASCII digits only), or None when it is not one."""
    return int(text) if _DIGITS.fullmatch(text) else None


class Block(NamedTuple):
    """One block: ``ops[j]`` is applied to hidden state ``inputs[j]`` (j = 0, 1); results are added."""

    inputs: tuple
    ops: tuple


def _as_block(b, i: int) -> Block:
    """Check ``(inputs, ops)`` or a Block, with an error that names the block when malformed."""
    hint = "expected (inputs, ops) like ((0, 1), ('sep_conv_3x3', 'identity'))"
    if isinstance(b, (str, bytes, dict)):
        raise GenotypeError(f"block {i}: {hint}, got {type(b).__name__} {_short(b)}.")
    try:
        inputs, ops = (b.inputs, b.ops) if isinstance(b, Block) else b
        if isinstance(inputs, (str, bytes, dict)) or isinstance(ops, (str, bytes, dict)):
            raise TypeError
        inputs, ops = tuple(inputs), tuple(ops)
    except (TypeError, ValueError):
        raise GenotypeError(f"block {i}: {hint}, got {_short(b)}.") from None
    try:
        inputs = tuple(_index(x, "input") for x in inputs)
    except GenotypeError as e:
        raise GenotypeError(f"block {i}: {hint}; {e}") from None
    if not all(isinstance(o, str) for o in ops):
        raise GenotypeError(f"block {i}: op names must be strings, got {_short(list(ops))}.")
    return Block(inputs, tuple(ops_lib.canonical_op(o) for o in ops))


def _as_concat(concat) -> tuple:
    if isinstance(concat, (str, bytes, dict)):
        raise GenotypeError(
            f"concat must be a list of integers, got {type(concat).__name__} {_short(concat)}."
        )
    try:
        items = tuple(concat)
    except TypeError:
        raise GenotypeError(f"concat must be a list of integers, got {_short(concat)}.") from None
    try:
        return tuple(_index(c, "concat entry") for c in items)
    except GenotypeError as e:
        raise GenotypeError(f"concat must be a list of integers; {e}") from None


class CellGenotype:
    """Blocks of one cell plus the list of hidden states concatenated into its output."""

    __slots__ = ("blocks", "concat", "_hash")

    def __init__(self, blocks: Iterable, concat: Sequence[int] | None = None):
        blocks = tuple(_as_block(b, i) for i, b in enumerate(blocks))
        object.__setattr__(self, "blocks", blocks)
        concat = self.unused_states() if concat is None else _as_concat(concat)
        object.__setattr__(self, "concat", concat)
        object.__setattr__(self, "_hash", hash((self.blocks, self.concat)))

    def __setattr__(self, key, value):
        raise AttributeError(
            "CellGenotype is immutable; build a new one (e.g. with .replace_block())."
        )

    def __reduce__(self):
        return (CellGenotype, (self.blocks, self.concat))

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def unused_states(self) -> tuple:
        """Block outputs (indices >= 2) that no block consumes: the paper's default concat."""
        used = {i for b in self.blocks for i in b.inputs}
        return tuple(s for s in range(2, 2 + len(self.blocks)) if s not in used)

    def replace_block(self, b: int, *, inputs=None, ops=None, concat="auto") -> "CellGenotype":
        """A copy with block ``b`` changed. ``concat='auto'`` recomputes it if it was the default rule."""
        old = self.blocks[b]
        nb = Block(
            tuple(inputs) if inputs is not None else old.inputs,
            tuple(ops) if ops is not None else old.ops,
        )
        blocks = self.blocks[:b] + (nb,) + self.blocks[b + 1 :]
        if concat == "auto":
            concat = None if self.concat == self.unused_states() else self.concat
        return CellGenotype(blocks, concat)

    def validate(self, name: str = "cell", ops: Sequence[str] | None = None) -> "CellGenotype":
        valid_ops = set(ops) if ops is not None else set(ops_lib.known_ops())
        if not self.blocks:
            raise GenotypeError(f"{name} cell has no blocks; a cell needs at least one block.")
        for b, block in enumerate(self.blocks):
            if len(block.inputs) != 2 or len(block.ops) != 2:
                raise GenotypeError(
                    f"{name} cell, block {b}: needs exactly 2 inputs and 2 ops, got inputs={list(block.inputs)} "
                    f"ops={list(block.ops)}."
                )
            for j in range(2):
                i = block.inputs[j]
                if not 0 <= i <= b + 1:
                    raise GenotypeError(
                        f"{name} cell, block {b}, input {j}: index {i} out of range; block {b} may read "
                        f"0..{b + 1} (0 = previous cell, 1 = the cell before it, 2.. = earlier blocks of this cell)."
                    )
                op = block.ops[j]
                if op not in valid_ops:
                    raise GenotypeError(
                        f"{name} cell, block {b}, op {j}: unknown op {op!r}; valid ops are {sorted(valid_ops)}."
                        + (
                            ""
                            if ops is not None
                            else " Register a custom op with keras_nas.blocks.register_op(name, builder)."
                        )
                    )
        n_states = 2 + len(self.blocks)
        if not self.concat:
            raise GenotypeError(
                f"{name} cell: concat list is empty; list the hidden states (0..{n_states - 1}) to concatenate."
            )
        for c in self.concat:
            if not 0 <= c < n_states:
                raise GenotypeError(
                    f"{name} cell: concat index {c} out of range; valid hidden states are 0..{n_states - 1}."
                )
        if len(set(self.concat)) != len(self.concat):
            raise GenotypeError(f"{name} cell: concat list {list(self.concat)} repeats a state.")
        return self

    # -- value semantics -------------------------------------------------------------
    def __eq__(self, other):
        return (
            isinstance(other, CellGenotype)
            and self.blocks == other.blocks
            and self.concat == other.concat
        )

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"CellGenotype({self.to_string()!r})"

    def to_string(self) -> str:
        body = "|".join("+".join(f"{o}~{i}" for i, o in zip(b.inputs, b.ops)) for b in self.blocks)
        return f"{body}/{','.join(str(c) for c in self.concat)}"

    @classmethod
    def parse(cls, s: str, name: str = "cell") -> "CellGenotype":
        if not isinstance(s, str):
            raise GenotypeError(
                f"{name} cell must be a string like 'op~i+op~j|.../2,3', got {type(s).__name__}."
            )
        s = s.strip()
        if "/" not in s:
            raise GenotypeError(
                f"{name} cell string {s[:80]!r} lacks '/concat'; expected 'op~i+op~j|.../2,3'."
            )
        body, concat = s.rsplit("/", 1)
        blocks = []
        for b, part in enumerate(body.split("|")):
            halves = part.split("+")
            if len(halves) != 2:
                raise GenotypeError(
                    f"{name} cell, block {b}: {part[:80]!r} should be 'op~input+op~input'."
                )
            inputs, opnames = [], []
            for h in halves:
                if "~" not in h:
                    raise GenotypeError(
                        f"{name} cell, block {b}: {h[:80]!r} should be 'op~input' (e.g. 'sep_conv_3x3~0')."
                    )
                op, idx = h.rsplit("~", 1)
                i = _parse_index(idx.strip())
                if i is None:
                    raise GenotypeError(
                        f"{name} cell, block {b}: input {idx[:40]!r} in {h[:60]!r} is not an integer "
                        "(ASCII digits 0-9, no sign)."
                    )
                inputs.append(i)
                opnames.append(op.strip())
            blocks.append(Block(tuple(inputs), tuple(opnames)))
        concat_list = []
        if concat.strip():
            concat_list = [_parse_index(c.strip()) for c in concat.split(",")]
            if None in concat_list:
                raise GenotypeError(
                    f"{name} cell: concat {concat[:60]!r} must be comma-separated integers "
                    "(ASCII digits 0-9, no sign)."
                )
        return cls(blocks, concat_list)

    def to_dict(self) -> dict:
        return {
            "blocks": [{"inputs": list(b.inputs), "ops": list(b.ops)} for b in self.blocks],
            "concat": list(self.concat),
        }

    @classmethod
    def from_dict(cls, d, name: str = "cell") -> "CellGenotype":
        if not isinstance(d, dict) or "blocks" not in d:
            raise GenotypeError(
                f"{name} cell: expected an object with 'blocks' (and 'concat'), got {_short(d)}."
            )
        extra = sorted(map(str, set(d) - {"blocks", "concat"}))
        if extra:
            raise GenotypeError(
                f"{name} cell: unknown field(s) {extra}; a cell has 'blocks' and 'concat'."
            )
        if not isinstance(d["blocks"], list):
            raise GenotypeError(
                f"{name} cell: 'blocks' must be a list, got {type(d['blocks']).__name__} "
                f"{_short(d['blocks'])}."
            )
        if "concat" in d and not isinstance(d["concat"], list):
            raise GenotypeError(
                f"{name} cell: 'concat' must be a list of integers (omit it for the default), "
                f"got {type(d['concat']).__name__} {_short(d['concat'])}."
            )
        blocks = []
        for b, blk in enumerate(d["blocks"]):
            want = f"expected {{'inputs': [i, j], 'ops': [op, op]}}, got {_short(blk)}"
            if not isinstance(blk, dict) or set(blk) != {"inputs", "ops"}:
                raise GenotypeError(f"{name} cell, block {b}: {want}.")
            for field in ("inputs", "ops"):
                if not isinstance(blk[field], list):
                    raise GenotypeError(
                        f"{name} cell, block {b}: {want} ('{field}' must be a list)."
                    )
            blocks.append((blk["inputs"], blk["ops"]))
        try:
            return cls(blocks, d.get("concat"))
        except GenotypeError as e:
            raise GenotypeError(f"{name} cell, {e}") from None


def _as_cell(c, name) -> CellGenotype:
    if isinstance(c, CellGenotype):
        return c
    if isinstance(c, dict):
        return CellGenotype.from_dict(c, name)
    if isinstance(c, str):
        return CellGenotype.parse(c, name)
    raise GenotypeError(
        f"{name} cell must be a CellGenotype, dict or string, got {type(c).__name__}."
    )


class Genotype:
    """A NASNet-style architecture: a normal cell and a reduction cell.

    >>> g = Genotype.parse(str(NASNET_A))   # doctest: +SKIP
    """

    __slots__ = ("normal", "reduce", "name", "_hash")

    def __init__(self, normal, reduce, name: str | None = None):
        if name is not None and not isinstance(name, str):
            raise GenotypeError(
                f"Genotype name must be a string, got {type(name).__name__} {_short(name)}."
            )
        normal, reduce = _as_cell(normal, "normal"), _as_cell(reduce, "reduce")
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "reduce", reduce)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_hash", hash((normal, reduce)))

    def __setattr__(self, key, value):
        raise AttributeError("Genotype is immutable; use .replace(normal=..., reduce=...).")

    def __reduce__(self):
        return (Genotype, (self.normal, self.reduce, self.name))

    def replace(self, normal=None, reduce=None, name=None) -> "Genotype":
        return Genotype(normal or self.normal, reduce or self.reduce, name=name)

    def cell(self, which: str) -> CellGenotype:
        if which not in ("normal", "reduce"):
            raise GenotypeError(f"cell must be 'normal' or 'reduce', got {which!r}.")
        return getattr(self, which)

    def validate(self, ops: Sequence[str] | None = None) -> "Genotype":
        """Check indices, ops and concat lists; raise :class:`GenotypeError` naming the bad field."""
        self.normal.validate("normal", ops)
        self.reduce.validate("reduce", ops)
        return self

    @property
    def ops_used(self) -> tuple:
        return tuple(
            sorted({o for c in (self.normal, self.reduce) for b in c.blocks for o in b.ops})
        )

    # -- value semantics: the name is a label, not part of identity ------------------
    def __eq__(self, other):
        return (
            isinstance(other, Genotype)
            and self.normal == other.normal
            and self.reduce == other.reduce
        )

    def __hash__(self):
        return self._hash

    def __repr__(self):
        label = f"{self.name}: " if self.name else ""
        return f"Genotype({label}{self})"

    def __str__(self):
        return f"normal={self.normal.to_string()};reduce={self.reduce.to_string()}"

    @classmethod
    def parse(cls, s: str) -> "Genotype":
        """Inverse of ``str()``. Also accepts a JSON document (anything starting with '{')."""
        if not isinstance(s, str):
            raise GenotypeError(f"Genotype.parse needs a string, got {type(s).__name__}.")
        s = s.strip()
        if s.startswith("{"):
            return cls.from_json(s)
        parts = {}
        for chunk in s.split(";"):
            if not chunk.strip():
                continue
            if "=" not in chunk:
                raise GenotypeError(
                    f"Genotype string part {chunk[:60]!r} lacks 'normal=' or 'reduce='; "
                    "expected 'normal=op~i+op~j|.../concat;reduce=...'."
                )
            key, val = chunk.split("=", 1)
            key = key.strip()
            if key not in ("normal", "reduce"):
                raise GenotypeError(
                    f"Genotype string has unknown part {key[:40]!r}; expected 'normal' and 'reduce'."
                )
            if key in parts:
                raise GenotypeError(
                    f"Genotype string gives the {key!r} cell twice; give each cell once."
                )
            parts[key] = CellGenotype.parse(val, key)
        missing = {"normal", "reduce"} - set(parts)
        if missing:
            raise GenotypeError(f"Genotype string lacks the {sorted(missing)} cell(s).")
        return cls(parts["normal"], parts["reduce"]).validate()

    def to_dict(self) -> dict:
        d = {
            "format": FORMAT,
            "version": VERSION,
            "normal": self.normal.to_dict(),
            "reduce": self.reduce.to_dict(),
        }
        if self.name:
            d["name"] = self.name
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> "Genotype":
        if not isinstance(d, dict):
            raise GenotypeError(f"Genotype JSON must be an object, got {type(d).__name__}.")
        fmt, version = d.get("format", FORMAT), d.get("version", 1)
        if fmt != FORMAT:
            raise GenotypeError(
                f"Not a keras-nas genotype: format is {_short(fmt)}, expected {FORMAT!r}."
            )
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise GenotypeError(
                f"Genotype JSON 'version' must be an integer from 1 to {VERSION}, got {_short(version)}."
            )
        if version > VERSION:
            raise GenotypeError(
                f"Genotype JSON has version {_short(version)}; this keras-nas reads versions up to {VERSION}. "
                "Upgrade keras-nas to read it."
            )
        for v in range(version, VERSION):
            d = _MIGRATIONS[v](d)
        for key in ("normal", "reduce"):
            if key not in d:
                raise GenotypeError(f"Genotype JSON lacks the {key!r} cell.")
        name = d.get("name")
        if name is not None and not isinstance(name, str):
            raise GenotypeError(
                f"Genotype JSON 'name' must be a string, got {type(name).__name__} {_short(name)}."
            )
        g = cls(
            CellGenotype.from_dict(d["normal"], "normal"),
            CellGenotype.from_dict(d["reduce"], "reduce"),
            name,
        )
        return g.validate()

    @classmethod
    def from_json(cls, s: str) -> "Genotype":
        return cls.from_dict(_loads(s, "genotype JSON"))

    @classmethod
    def from_darts(cls, normal, normal_concat, reduce, reduce_concat, name=None) -> "Genotype":
        """Convert a DARTS/ENAS-style genotype (``[(op, input), ...]`` two per node, input 0 = cell k-2).

        DARTS numbers the *older* cell 0 and the previous cell 1, the opposite of the NASNet
        convention used here, so inputs 0 and 1 are swapped.
        """

        def conv(pairs, concat):
            pairs = list(pairs)
            if len(pairs) % 2:
                raise GenotypeError("DARTS genotype needs two (op, input) pairs per node.")
            swap = {0: 1, 1: 0}
            blocks = [
                Block(
                    (
                        swap.get(pairs[k][1], pairs[k][1]),
                        swap.get(pairs[k + 1][1], pairs[k + 1][1]),
                    ),
                    (pairs[k][0], pairs[k + 1][0]),
                )
                for k in range(0, len(pairs), 2)
            ]
            return CellGenotype(blocks, [swap.get(c, c) for c in concat])

        return cls(conv(normal, normal_concat), conv(reduce, reduce_concat), name=name)


# Version v -> v+1 converters. Add one whenever VERSION is bumped; never remove any.
_MIGRATIONS: dict = {}


def _loads(s, what: str):
    """``json.loads`` whose every failure is a :class:`GenotypeError` naming ``what``."""
    if not isinstance(s, (str, bytes, bytearray)):
        raise GenotypeError(f"{what} must be a string, got {type(s).__name__}.")
    try:
        return json.loads(s)
    except json.JSONDecodeError as e:
        raise GenotypeError(
            f"Malformed {what}: {e.msg} at line {e.lineno} column {e.colno}."
        ) from None
    except RecursionError:
        raise GenotypeError(f"Malformed {what}: nested too deeply.") from None
    except ValueError as e:  # e.g. an integer literal of more than 4300 digits, bad UTF-8
        raise GenotypeError(f"Malformed {what}: {e}.") from None


def load_genotype(text_or_path: str) -> Genotype:
    """Read a genotype from a compact string, a JSON string, or a path to a JSON/text file."""
    import os

    if isinstance(text_or_path, Genotype):
        return text_or_path
    if not isinstance(text_or_path, (str, os.PathLike)):
        raise GenotypeError(
            f"load_genotype needs a string or path, got {type(text_or_path).__name__}."
        )
    s = os.fspath(text_or_path)
    s = s.strip() if isinstance(s, str) else s
    if not isinstance(s, str):
        raise GenotypeError(f"load_genotype needs a str path, got {type(s).__name__}.")
    if not s.startswith("{") and "=" not in s and os.path.isfile(s):
        try:
            with open(s, encoding="utf-8") as f:
                s = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise GenotypeError(f"Cannot read the genotype file {text_or_path!r}: {e}.") from None
        if s.startswith("{"):
            d = _loads(s, f"genotype JSON in {text_or_path}")
            # A results file may wrap the genotype: {"genotype": {...}, ...}
            if isinstance(d, dict) and "genotype" in d and isinstance(d["genotype"], (dict, str)):
                g = d["genotype"]
                return Genotype.from_dict(g) if isinstance(g, dict) else Genotype.parse(g)
            return Genotype.from_dict(d)
    return Genotype.parse(s)
