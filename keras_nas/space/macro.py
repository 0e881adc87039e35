"""Chain-structured macro space (Zoph & Le 2017 style; the classic CNN example).

Each of ``num_layers`` conv layers picks its filters, kernel size and stride, and,
optionally, which earlier layers feed it through skip connections (anchor points).
"""

from __future__ import annotations

import json
from typing import Mapping, NamedTuple, Sequence

from keras_nas.space.base import KIND_GENERIC, Decision, SearchSpace, SpaceError


class MacroLayer(NamedTuple):
    filters: int
    kernel_size: int
    stride: int
    skips: tuple = ()  # indices of earlier layers concatenated into this layer's input


class MacroArchitecture(tuple):
    """A tuple of :class:`MacroLayer`; hashable and comparable by value."""

    def __new__(cls, layers):
        return super().__new__(cls, tuple(MacroLayer(*l) if not isinstance(l, MacroLayer) else l for l in layers))

    def __str__(self):
        return ";".join(
            f"{l.filters}x{l.kernel_size}s{l.stride}" + (f"<{','.join(map(str, l.skips))}" if l.skips else "")
            for l in self
        )

    def to_json(self) -> str:
        return json.dumps({"format": "keras-nas/macro", "version": 1, "layers": [l._asdict() | {"skips": list(l.skips)} for l in self]})

    @classmethod
    def from_json(cls, s: str) -> "MacroArchitecture":
        d = json.loads(s)
        return cls(MacroLayer(l["filters"], l["kernel_size"], l["stride"], tuple(l.get("skips", ()))) for l in d["layers"])


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
        for label, vals in (("filters", filters), ("kernel_sizes", kernel_sizes), ("strides", strides)):
            if not vals or any(not isinstance(v, int) or v < 1 for v in vals):
                raise SpaceError(f"MacroSpace {label} must be positive integers, got {list(vals)!r}.")
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
                decisions += [Decision(f"layer{i}/skip_from{j}", (0, 1), KIND_GENERIC) for j in range(i)]
        super().__init__(decisions)

    def decode(self, values: Mapping) -> MacroArchitecture:
        v = self.check_values(values)
        layers = []
        for i in range(self.num_layers):
            skips = tuple(j for j in range(i) if self.skip_connections and v[f"layer{i}/skip_from{j}"])
            layers.append(MacroLayer(v[f"layer{i}/filters"], v[f"layer{i}/kernel_size"], v[f"layer{i}/stride"], skips))
        return MacroArchitecture(layers)

    def encode(self, arch) -> dict:
        out = {}
        for i, l in enumerate(arch):
            out[f"layer{i}/filters"], out[f"layer{i}/kernel_size"], out[f"layer{i}/stride"] = l.filters, l.kernel_size, l.stride
            if self.skip_connections:
                for j in range(i):
                    out[f"layer{i}/skip_from{j}"] = int(j in l.skips)
        return self.check_values(out)
