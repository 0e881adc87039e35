"""Architecture families as values: one object per family knows its space, architecture type,
network builder, JSON form, string parser and input-size rule.

Why: the jobs, the CLI, export and the HyperModels all need "what kind of architecture is
this and how is it built". Asking one :class:`Family` replaces if-ladders over
``"nasnet" | "nb201" | "macro"`` scattered through the code; a new family is one more
entry in :data:`FAMILIES` (see ``docs/CONTRIBUTING.md``). Pure Python: the network
builders are imported only when a model is built.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Optional

from keras_nas.space import (
    Genotype,
    MacroArchitecture,
    MacroSpace,
    NASNetCellSpace,
    NB201Cell,
    NB201Space,
)

# macro search networks: small, so searches run on CPUs too
MACRO_KWARGS = {"filters": (8, 16, 24, 32), "skip_connections": True}


class FamilyError(ValueError):
    """An architecture or setting does not fit its family; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class Family:
    """One architecture family.

    ``space(**settings)`` makes its search space; ``builder`` names the function of
    ``keras_nas.blocks.network`` that builds a network; ``build_settings(settings)`` maps
    run settings (``num_cells``, ``filters``, ...) to that builder's keyword arguments.
    """

    name: str
    arch_type: type
    make_space: Callable[..., Any]
    builder: str
    build_settings: Callable[[dict], dict]
    to_json: Callable[[Any], str]
    from_json: Callable[[dict, str], Any]
    parse: Callable[[str], Any]
    looks_like: Callable[[str], bool]
    min_size: int = 1  # smallest image side the network takes
    size_multiple: int = 1  # image sides must be multiples of this

    def space(self, *, num_blocks: int = 5, ops="amoebanet", macro_layers: int = 6):
        return self.make_space(num_blocks=num_blocks, ops=ops, macro_layers=macro_layers)

    def check_input_size(self, input_shape, flag: str = "--image_size") -> None:
        """Raise :class:`FamilyError` when the family's network cannot take ``input_shape``."""
        h, w = int(input_shape[0]), int(input_shape[1])
        if min(h, w) < self.min_size:
            raise FamilyError(
                f"{flag}: {h}x{w} images are too small for the {self.name} network's two "
                f"reductions; it needs height and width >= {self.min_size} (set {flag}=8 or more)."
            )
        if self.size_multiple > 1 and (h % self.size_multiple or w % self.size_multiple):
            raise FamilyError(
                f"{flag}: the {self.name} network's two stride-2 residual blocks need a height and "
                f"width divisible by {self.size_multiple}, got {h}x{w}; set {flag} to a multiple of "
                f"{self.size_multiple} (e.g. 8, 16, 32)."
            )

    def builder_call(self, arch, *, input_shape, num_classes, **settings) -> tuple:
        """``(builder name, keyword arguments)``: the one place run settings become builder
        arguments, so a search, ``keras-nas train`` and an exported file build the same network."""
        base = {"input_shape": [int(d) for d in input_shape], "num_classes": int(num_classes)}
        return self.builder, {**base, **self.build_settings(settings)}

    def build(self, arch, **build_kwargs):
        """A Keras model (softmax output; with ``aux_head`` a second, auxiliary output)."""
        from keras_nas.blocks import network

        name, kwargs = self.builder_call(arch, **build_kwargs)
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
        return getattr(network, name)(arch, **kwargs)


def _nasnet_space(num_blocks, ops, macro_layers):
    return NASNetCellSpace(
        num_blocks=num_blocks, ops=ops.split(",") if isinstance(ops, str) and "," in ops else ops
    )


def _nasnet_settings(s):
    return {
        "num_cells": s.get("num_cells", 1),
        "filters": s.get("filters", 8),
        "stem": s.get("stem", "cifar"),
        "drop_path": float(s.get("drop_path", 0.0)),
        "drop_path_total_steps": s.get("drop_path_total_steps"),
        "aux_head": bool(s.get("aux_head", False)),
    }


def _nb201_json(cell) -> str:
    return json.dumps({"format": "keras-nas/nb201", "version": 1, "cell": str(cell)}, indent=1)


FAMILIES = {
    "nasnet": Family(
        name="nasnet",
        arch_type=Genotype,
        make_space=_nasnet_space,
        builder="build_network",
        build_settings=_nasnet_settings,
        to_json=lambda g: g.to_json(indent=1),
        from_json=lambda d, text: Genotype.from_json(text),
        parse=lambda s: Genotype.parse(s).validate(),
        looks_like=lambda s: "normal=" in s or "reduce=" in s,
        min_size=4,
    ),
    "nb201": Family(
        name="nb201",
        arch_type=NB201Cell,
        make_space=lambda **_: NB201Space(),
        builder="build_nb201_network",
        build_settings=lambda s: {
            "channels": s.get("filters", 8),
            "num_cells": s.get("num_cells", 1),
        },
        to_json=_nb201_json,
        from_json=lambda d, text: NB201Cell.parse(d["cell"]),
        parse=NB201Cell.parse,
        looks_like=lambda s: s.startswith("|"),
        min_size=4,
        size_multiple=4,
    ),
    "macro": Family(
        name="macro",
        arch_type=MacroArchitecture,
        make_space=lambda macro_layers=6, **_: MacroSpace(num_layers=macro_layers, **MACRO_KWARGS),
        builder="build_macro_network",
        build_settings=lambda s: {},
        to_json=lambda a: a.to_json(),
        from_json=lambda d, text: MacroArchitecture.from_json(text),
        parse=MacroArchitecture.parse,
        looks_like=lambda s: s[:1].isdigit() and "x" in s,
    ),
}
JSON_FORMATS = {"keras-nas/nb201": "nb201", "keras-nas/macro": "macro"}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise FamilyError(f"space must be one of {list(FAMILIES)}, got {name!r}.")
    return FAMILIES[name]


def family_of(arch) -> Family:
    for fam in FAMILIES.values():
        if isinstance(arch, fam.arch_type):
            return fam
    raise FamilyError(f"Not an architecture: {type(arch).__name__}.")


def arch_to_json(arch) -> str:
    """JSON of any architecture (genotypes use keras-nas's versioned genotype format)."""
    return family_of(arch).to_json(arch)


def parse_architecture(text: str) -> Optional[Any]:
    """An architecture from a string or JSON of any family; None when no family claims it.
    Malformed text of a claimed family raises ``ValueError`` naming the problem."""
    text = text.strip()
    if text.startswith("{"):
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise FamilyError(f"invalid JSON ({e})") from None
        fmt = d.get("format", "") if isinstance(d, dict) else ""
        return get_family(JSON_FORMATS.get(fmt, "nasnet")).from_json(d, text)
    for fam in FAMILIES.values():
        if fam.looks_like(text):
            return fam.parse(text)
    return None
