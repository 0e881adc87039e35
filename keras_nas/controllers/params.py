"""The decision list a controller searches, built from a keras-nas space or any keras-tuner space.

Controllers never see keras-tuner objects directly: they see an ordered list of
:class:`Param` (a categorical decision, or a continuous one for a Float without step)
with keras-tuner's activation conditions. Order is registration order, so a parent
(conditional-scope owner) always comes before the params it activates.

Rules every controller follows (keras-tuner fills a missing active value with an
*unseeded* random draw, which would break reproducible search):
* a proposal holds a value for every active param and none for inactive ones
  (:meth:`ParamSpace.complete` enforces it);
* values are plain Python ``int``/``float``/``str``/``bool`` (numpy scalars break
  keras-tuner's JSON and gRPC).
"""

from __future__ import annotations

import dataclasses
import decimal
import math
from typing import Any, Callable, Mapping, Sequence

from keras_nas.space.base import KIND_GENERIC, SearchSpace

# Int / stepped Float spaces larger than this are treated as continuous.
MAX_OPTIONS = 1000


def plain(value):
    """Convert numpy scalars to Python scalars (keras-tuner needs native types)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


@dataclasses.dataclass(frozen=True)
class Param:
    """One decision. ``options`` is None for a continuous param (then ``hp`` maps probs to values)."""

    name: str
    options: tuple | None
    kind: str = KIND_GENERIC
    conditions: tuple = ()
    hp: Any = None  # the keras-tuner HyperParameter, when the param came from one

    @property
    def continuous(self) -> bool:
        return self.options is None

    def is_active(self, values: Mapping[str, Any]) -> bool:
        return all(c.is_active(values) for c in self.conditions)

    def from_prob(self, p: float):
        """Value at cumulative probability ``p`` in [0, 1] (continuous params)."""
        p = min(max(float(p), 0.0), 1.0 - 1e-12)
        if self.hp is not None:
            return plain(self.hp.prob_to_value(p))
        return self.options[min(int(p * len(self.options)), len(self.options) - 1)]

    def to_prob(self, value) -> float:
        if self.hp is not None:
            return float(self.hp.value_to_prob(value))
        return (self.options.index(value) + 0.5) / len(self.options)

    def mutated(self, current, rng, sigma: float):
        """A value different from ``current`` (the mutation of aging evolution and of the
        predictor's candidates): another option drawn uniformly, or for a continuous param a
        Gaussian step of std ``sigma`` in probability space, reflected into [0, 1] and redrawn
        until the value changes. ``rng`` is a ``random.Random``."""
        if not self.continuous:
            others = [o for o in self.options if o != current]
            return others[rng.randrange(len(others))]
        try:
            p0 = self.to_prob(current)
        except Exception:  # value outside the hp's range: restart from a random point
            p0 = rng.random()
        for _ in range(20):
            q = abs(p0 + rng.gauss(0.0, sigma)) % 2.0  # reflect into [0, 1]
            q = 2.0 - q if q > 1.0 else q
            v = self.from_prob(q)
            if v != current:
                return v
        for _ in range(100):  # a very narrow continuous range: fall back to uniform draws
            v = self.from_prob(rng.random())
            if v != current:
                return v
        raise ValueError(
            f"Cannot mutate {self.name!r}: every value maps to {current!r}; widen its range."
        )

    def bins(self, k: int = 10) -> tuple:
        """A categorical view: the options, or ``k`` evenly spaced quantiles of a continuous param."""
        if not self.continuous:
            return self.options
        vals = []
        for i in range(k):
            v = self.from_prob((i + 0.5) / k)
            if v not in vals:
                vals.append(v)
        return tuple(vals)

    def nearest_bin(self, value, k: int = 10) -> int:
        b = self.bins(k)
        if value in b:
            return b.index(value)
        if self.continuous:
            p = self.to_prob(value)
            return min(range(len(b)), key=lambda i: abs(self.to_prob(b[i]) - p))
        raise ValueError(f"Value {value!r} is not an option of {self.name!r}: {list(b)}")


class ParamSpace:
    """Ordered params; build with :meth:`from_search_space` (keras-tuner spaces:
    ``keras_nas.tuning.spaces.param_space_from_hyperparameters``)."""

    def __init__(self, params: Sequence[Param]):
        self.params = tuple(params)
        self._by_name = {p.name: p for p in self.params}

    def __len__(self):
        return len(self.params)

    def __iter__(self):
        return iter(self.params)

    def __contains__(self, name):
        return name in self._by_name

    def __getitem__(self, name) -> Param:
        return self._by_name[name]

    @property
    def names(self) -> tuple:
        return tuple(p.name for p in self.params)

    @classmethod
    def from_search_space(cls, space: SearchSpace) -> "ParamSpace":
        return cls([Param(d.name, d.options, d.kind) for d in space.decisions])

    def active_params(self, values: Mapping[str, Any]) -> list:
        return [p for p in self.params if p.is_active(values)]

    def complete(self, values: Mapping[str, Any], fill: Callable[[Param, dict], Any]) -> dict:
        """Walk params in order: keep the given value of each active param, ask ``fill(param, so_far)``
        for active params without one, drop inactive ones. Returns plain-typed values."""
        out: dict = {}
        for p in self.params:
            if not p.is_active(out):
                continue
            if p.name in values and self.is_valid(p, values[p.name]):
                out[p.name] = plain(values[p.name])
            else:
                out[p.name] = plain(fill(p, out))
        return out

    @staticmethod
    def is_valid(p: Param, value) -> bool:
        if p.continuous:
            if p.hp is None:
                return True
            try:
                lo, hi = p.hp.min_value, p.hp.max_value
                return lo - 1e-12 <= float(value) <= hi + 1e-12
            except (TypeError, ValueError, AttributeError):
                return False
        return value in p.options

    def key(self, values: Mapping[str, Any]) -> tuple:
        """Hashable identity of a proposal (active values only), for duplicate detection."""
        return tuple((p.name, _round(values[p.name])) for p in self.params if p.name in values)


def _decimals(*xs) -> int:
    """Decimal places of the numbers as written (0.05 -> 2, 1e-4 -> 4, 10.0 -> 1), at most 15."""
    return min(15, max(max(0, -decimal.Decimal(repr(float(x))).as_tuple().exponent) for x in xs))


def tidy_step_value(hp, v: float) -> float:
    """A stepped Float option without float noise: trial.json and results show 0.3, not 0.30000000000000004.
    Linear steps round to the decimals of min_value and step; log steps (products) to 12 significant digits."""
    if getattr(hp, "sampling", "linear") == "linear":
        return round(v, _decimals(hp.min_value, hp.step))
    return float(f"{v:.12g}")


def _round(v):
    return round(v, 12) if isinstance(v, float) and math.isfinite(v) else v
