"""Chain-structured macro space (Zoph & Le 2017 style; the classic CNN example).

Each of ``num_layers`` conv layers picks its filters, kernel size and stride, and,
optionally, which earlier layers feed it through skip connections (anchor points).
"""

from __future__ import annotations

import json
import numbers
import re
from typing import Mapping, NamedTuple, Sequence

from keras_nas.space.base import KIND_GENERIC, Decision, SearchSpace, SpaceError, short_repr


class MacroLayer(NamedTuple):
    filters: int
    kernel_size: int
    stride: int
    skips: tuple = ()  # indices of earlier layers concatenated into this layer's input


class MacroArchitecture(tuple):
    """A tuple of :class:`MacroLayer`; hashable and comparable by value.

    Checked when made (positive integer sizes, skips only from earlier layers), so a bad
    string, JSON or list fails here with the layer named rather than later in Keras.
    """

    def __new__(cls, layers):
        if isinstance(layers, (str, bytes, dict)) or not hasattr(layers, "__iter__"):
            raise SpaceError(
                f"A macro architecture is a sequence of layers, got {type(layers).__name__}."
            )
        out = tuple(_check_layer(l, i) for i, l in enumerate(layers))
        if not out:
            raise SpaceError("A macro architecture needs at least one layer.")
        return super().__new__(cls, out)

    def __str__(self):
        return ";".join(
            f"{l.filters}x{l.kernel_size}s{l.stride}"
            + (f"<{','.join(map(str, l.skips))}" if l.skips else "")
            for l in self
        )

    @classmethod
    def parse(cls, s: str) -> "MacroArchitecture":
        """Inverse of ``str()``: ``FILTERSxKERNELsSTRIDE[<SKIP,...]`` per layer, ``;``-separated."""
        if not isinstance(s, str):
            raise SpaceError(
                f"A macro architecture string must be a string, got {type(s).__name__}."
            )
        layers = []
        for i, part in enumerate(s.strip().split(";")):
            m = _LAYER_RE.fullmatch(part.strip())
            if not m:
                raise SpaceError(
                    f"macro layer {i} {part[:60]!r} is not FILTERSxKERNELsSTRIDE[<SKIP,...], e.g. "
                    "'24x3s1' or '36x5s2<0' (ASCII digits)."
                )
            f, k, st, skips = m.groups()
            layers.append(
                (int(f), int(k), int(st), tuple(int(j) for j in skips.split(",")) if skips else ())
            )
        return cls(layers)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": "keras-nas/macro",
                "version": 1,
                "layers": [l._asdict() | {"skips": list(l.skips)} for l in self],
            }
        )

    @classmethod
    def from_json(cls, s: str) -> "MacroArchitecture":
        try:
            d = json.loads(s)
        except RecursionError:
            raise SpaceError("Malformed macro architecture JSON: nested too deeply.") from None
        except (TypeError, ValueError) as e:  # JSONDecodeError is a ValueError
            raise SpaceError(f"Malformed macro architecture JSON: {e}") from None
        if not isinstance(d, dict) or not isinstance(d.get("layers"), list):
            raise SpaceError("Macro architecture JSON must be an object with a 'layers' list.")
        if (
            d.get("format", "keras-nas/macro") != "keras-nas/macro"
            or type(d.get("version", 1)) is not int
            or d.get("version", 1) != 1
        ):
            raise SpaceError(
                f"Not a keras-nas macro architecture (format {short_repr(d.get('format'))}, version "
                f"{short_repr(d.get('version'))}); expected format 'keras-nas/macro', version 1."
            )
        layers = []
        for i, l in enumerate(d["layers"]):
            if not isinstance(l, dict) or not {"filters", "kernel_size", "stride"} <= set(l) <= set(
                MacroLayer._fields
            ):
                raise SpaceError(
                    f"macro layer {i}: expected an object with filters, kernel_size, stride (and "
                    f"optional skips), got {short_repr(l)}."
                )
            skips = l.get("skips", [])
            if not isinstance(skips, list):
                raise SpaceError(
                    f"macro layer {i}: skips must be a list of layer indices, got {short_repr(skips)}."
                )
            layers.append(MacroLayer(l["filters"], l["kernel_size"], l["stride"], tuple(skips)))
        return cls(layers)


_LAYER_RE = re.compile(r"([0-9]{1,6})x([0-9]{1,6})s([0-9]{1,6})(?:<([0-9]{1,6}(?:,[0-9]{1,6})*))?")


def _positive(v, what: str, i: int) -> int:
    """A positive int; floats, bools and strings are refused rather than coerced."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise SpaceError(
            f"macro layer {i}: {what} must be a positive integer, got {short_repr(v)}."
        )
    return int(v)


def _check_layer(l, i: int) -> MacroLayer:
    if not isinstance(l, MacroLayer):
        if isinstance(l, (str, bytes, dict)) or not isinstance(l, Sequence) or len(l) not in (3, 4):
            raise SpaceError(
                f"macro layer {i}: expected (filters, kernel_size, stride[, skips]), got {short_repr(l)}."
            )
        l = MacroLayer(*l)
    skips = l.skips
    if isinstance(skips, (str, bytes, dict)) or not isinstance(skips, Sequence):
        raise SpaceError(
            f"macro layer {i}: skips must be a sequence of layer indices, got {short_repr(skips)}."
        )
    earlier = f"earlier layers 0..{i - 1}" if i else "earlier layers, and layer 0 has none"
    for j in skips:
        if isinstance(j, bool) or not isinstance(j, numbers.Integral) or not 0 <= j < i:
            raise SpaceError(
                f"macro layer {i}: skip from layer {short_repr(j)} is invalid; skips must name {earlier}."
            )
    if len(set(skips)) != len(skips):
        raise SpaceError(f"macro layer {i}: skips {list(skips)} repeat a layer.")
    return MacroLayer(
        _positive(l.filters, "filters", i),
        _positive(l.kernel_size, "kernel_size", i),
        _positive(l.stride, "stride", i),
        tuple(int(j) for j in skips),
    )


class MacroSpace(SearchSpace):
    name = "macro"

    def __init__(
        self,
        num_layers: int = 6,
        filters: Sequence[int] = (24, 36, 48, 64),
        kernel_sizes: Sequence[int] = (3, 5, 7),
        strides: Sequence[int] = (1, 2),
        skip_connections: bool = False,
    ):
        if not isinstance(num_layers, int) or num_layers < 1:
            raise SpaceError(f"num_layers must be a positive integer, got {num_layers!r}.")
        for label, vals in (
            ("filters", filters),
            ("kernel_sizes", kernel_sizes),
            ("strides", strides),
        ):
            if not vals or any(not isinstance(v, int) or v < 1 for v in vals):
                raise SpaceError(
                    f"MacroSpace {label} must be positive integers, got {list(vals)!r}."
                )
        self.num_layers = num_layers
        self.skip_connections = skip_connections
        decisions = []
        for i in range(num_layers):
            decisions += [
                Decision(f"layer{i}/filters", tuple(filters)),
                Decision(f"layer{i}/kernel_size", tuple(kernel_sizes)),
                Decision(f"layer{i}/stride", tuple(strides)),
            ]
            if skip_connections:
                decisions += [
                    Decision(f"layer{i}/skip_from{j}", (0, 1), KIND_GENERIC) for j in range(i)
                ]
        super().__init__(decisions)

    def decode(self, values: Mapping) -> MacroArchitecture:
        v = self.check_values(values)
        layers = []
        for i in range(self.num_layers):
            skips = tuple(
                j for j in range(i) if self.skip_connections and v[f"layer{i}/skip_from{j}"]
            )
            layers.append(
                MacroLayer(
                    v[f"layer{i}/filters"], v[f"layer{i}/kernel_size"], v[f"layer{i}/stride"], skips
                )
            )
        return MacroArchitecture(layers)

    def encode(self, arch) -> dict:
        out = {}
        for i, l in enumerate(arch):
            out[f"layer{i}/filters"], out[f"layer{i}/kernel_size"], out[f"layer{i}/stride"] = (
                l.filters,
                l.kernel_size,
                l.stride,
            )
            if self.skip_connections:
                for j in range(i):
                    out[f"layer{i}/skip_from{j}"] = int(j in l.skips)
        return self.check_values(out)
