"""A search space is an ordered list of named categorical decisions.

Every controller treats every space alike: the RNN controller emits one softmax per
decision, aging evolution mutates one decision. Each decision maps one-to-one onto a
keras-tuner ``hp.Choice`` with plain Python values, so a space can also be searched by
any keras-tuner Oracle.
"""

from __future__ import annotations

import dataclasses
import random
import reprlib
from typing import Any, Mapping, Sequence

# Kinds let controllers apply the paper-specific mutations (AmoebaNet's hidden-state and
# op mutations) without knowing the space.
KIND_GENERIC = "generic"
KIND_INPUT = "input"  # which hidden state a block reads (NASNet/AmoebaNet "hidden state")
KIND_OP = "op"  # which operation a block applies


class SpaceError(ValueError):
    """Raised for an invalid search-space definition or invalid decision values."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 60, 60, 6, 6


def short_repr(x) -> str:
    """A bounded repr for error messages: a deeply nested or huge value must neither raise nor flood."""
    try:
        return _REPR.repr(x)
    except Exception:  # a repr that fails: say what type it was
        return f"<{type(x).__name__}>"


@dataclasses.dataclass(frozen=True)
class Decision:
    """One categorical decision: a name and its options (plain ints, strs, floats or bools)."""

    name: str
    options: tuple
    kind: str = KIND_GENERIC

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise SpaceError(f"Decision name must be a non-empty string, got {self.name!r}.")
        opts = tuple(self.options)
        if not opts:
            raise SpaceError(f"Decision {self.name!r} has no options; give at least one.")
        kinds = {type(o) for o in opts}
        if len(kinds) != 1 or kinds.pop() not in (int, str, float, bool):
            raise SpaceError(
                f"Decision {self.name!r}: options must all be plain Python int, str, float or bool "
                f"of one type (keras-tuner's hp.Choice rule), got {opts!r}. Convert numpy values "
                "with int()/str()."
            )
        if len(set(opts)) != len(opts):
            raise SpaceError(f"Decision {self.name!r} has duplicate options {opts!r}.")
        object.__setattr__(self, "options", opts)

    def index(self, value) -> int:
        try:
            return self.options.index(value)
        except ValueError:
            raise SpaceError(
                f"Decision {self.name!r}: value {value!r} is not one of its options {list(self.options)}."
            ) from None


class SearchSpace:
    """Base class: a fixed, ordered list of decisions plus decode/encode to an architecture.

    Subclasses implement :meth:`decode` (values -> architecture object) and :meth:`encode`
    (architecture -> values). ``values`` is always a dict ``{decision name: option}``.
    """

    name = "space"

    def __init__(self, decisions: Sequence[Decision]):
        decisions = tuple(decisions)
        if not decisions:
            raise SpaceError(f"{type(self).__name__} has no decisions.")
        names = [d.name for d in decisions]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SpaceError(f"{type(self).__name__}: duplicate decision names {sorted(dup)}.")
        self.decisions = decisions
        self._by_name = {d.name: d for d in decisions}

    def __len__(self):
        return len(self.decisions)

    def __iter__(self):
        return iter(self.decisions)

    def __getitem__(self, name: str) -> Decision:
        return self._by_name[name]

    @property
    def size(self) -> int:
        """Number of distinct value assignments (an upper bound on distinct architectures)."""
        n = 1
        for d in self.decisions:
            n *= len(d.options)
        return n

    def check_values(self, values: Mapping[str, Any]) -> dict:
        """Return ``values`` restricted to this space, raising a clear error if any is missing or bad."""
        missing = [d.name for d in self.decisions if d.name not in values]
        if missing:
            raise SpaceError(
                f"{type(self).__name__}: values are missing decisions {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; every decision needs a value."
            )
        out = {}
        for d in self.decisions:
            d.index(values[d.name])
            out[d.name] = values[d.name]
        return out

    def sample(self, rng: random.Random | None = None) -> dict:
        rng = rng or random.Random()
        return {d.name: rng.choice(d.options) for d in self.decisions}

    def register(self, hp) -> dict:
        """Register every decision as ``hp.Choice`` on a keras-tuner HyperParameters and return the values."""
        return {d.name: hp.Choice(d.name, list(d.options)) for d in self.decisions}

    def decode(self, values: Mapping[str, Any]):
        raise NotImplementedError

    def encode(self, arch) -> dict:
        raise NotImplementedError

    def describe(self) -> str:
        lines = [
            f"{type(self).__name__}: {len(self.decisions)} decisions, {self.size:.3g} assignments"
        ]
        for d in self.decisions:
            lines.append(f"  {d.name} [{d.kind}]: {list(d.options)}")
        return "\n".join(lines)
