"""Operation names and the published op vocabularies.

Only names live here (no Keras), so genotypes can be validated without importing a
backend. ``keras_nas.blocks.ops`` maps each name to a Keras layer builder; user ops are
added with ``keras_nas.blocks.register_op`` which also calls :func:`add_op_name`.
"""

from __future__ import annotations

# Canonical op names. Index convention of genotypes: see keras_nas.space.genotype.
IDENTITY = "identity"
NONE = "none"  # DARTS "zero" op: contributes nothing (used only by DARTS-style genotypes)

# AmoebaNet (Real et al. 2019), 8 ops. AmoebaNet's "none" means identity.
AMOEBANET_OPS = (
    "identity",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "avg_pool_3x3",
    "max_pool_3x3",
    "dil_sep_conv_3x3",
    "conv_1x7_7x1",
)

# NASNet (Zoph et al. 2018), 13 ops, in the order of the paper's list.
NASNET_OPS = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)

# DARTS (Liu et al. 2019) ops, used by the DARTS and ENAS zoo genotypes.
DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "identity",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

# ENAS micro space (Pham et al. 2018), 5 ops.
ENAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")

VOCABULARIES = {
    "amoebanet": AMOEBANET_OPS,
    "nasnet": NASNET_OPS,
    "darts": DARTS_OPS,
    "enas": ENAS_OPS,
}

# Aliases accepted when reading genotypes written by other tools.
ALIASES = {
    "skip_connect": "identity",
    "skip": "identity",
    "id": "identity",
    "sep3": "sep_conv_3x3",
    "sep5": "sep_conv_5x5",
    "sep7": "sep_conv_7x7",
    "avg3": "avg_pool_3x3",
    "max3": "max_pool_3x3",
    "separable_3x3_2": "sep_conv_3x3",
    "separable_5x5_2": "sep_conv_5x5",
    "separable_7x7_2": "sep_conv_7x7",
    "1x7_7x1": "conv_1x7_7x1",
    "dil_3x3": "dil_sep_conv_3x3",
}

_KNOWN = set(AMOEBANET_OPS) | set(NASNET_OPS) | set(DARTS_OPS) | set(ENAS_OPS)


def known_ops() -> tuple:
    """All op names a genotype may use (built-ins plus user-registered ones), sorted."""
    return tuple(sorted(_KNOWN))


def add_op_name(name: str) -> None:
    """Make ``name`` a valid op in genotypes and spaces (called by ``blocks.register_op``)."""
    if not isinstance(name, str) or not name or any(c in name for c in "~+|/;,= "):
        raise ValueError(
            f"Op name {name!r} is not allowed: use a non-empty string without '~+|/;,=' or spaces."
        )
    _KNOWN.add(name)


def canonical_op(name: str) -> str:
    return ALIASES.get(name, name)


def resolve_vocabulary(ops) -> tuple:
    """``ops`` is a vocabulary name ('amoebanet', 'nasnet', ...) or a sequence of op names."""
    if isinstance(ops, str):
        try:
            return VOCABULARIES[ops.lower()]
        except KeyError:
            raise ValueError(
                f"Unknown op vocabulary {ops!r}; choose one of {sorted(VOCABULARIES)} or pass a list of op names."
            ) from None
    ops = tuple(canonical_op(o) for o in ops)
    if not ops:
        raise ValueError("An op vocabulary needs at least one op.")
    unknown = [o for o in ops if o not in _KNOWN]
    if unknown:
        raise ValueError(
            f"Unknown ops {unknown}; known ops are {list(known_ops())}. "
            "Register a new op with keras_nas.blocks.register_op(name, builder)."
        )
    if len(set(ops)) != len(ops):
        raise ValueError(f"Op vocabulary has duplicates: {list(ops)}.")
    return ops
