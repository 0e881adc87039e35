"""ImageNet-size networks from searched cells: the N@P notation and compound scaling.

Why: a cell is searched on a small proxy (CIFAR, N=2..6, F=16..32) and then transferred
by stacking more and wider cells at a higher resolution. NASNet (Zoph et al. 2018) names
the result "N@P": N normal cells per stack, P filters in the penultimate layer
(P = 4F * len(normal concat); 24F for NASNet-A). EfficientNet (Tan & Le 2019) scales
depth, width and resolution together: d = alpha**phi, w = beta**phi, r = gamma**phi with
alpha 1.2, beta 1.1, gamma 1.15 (alpha * beta**2 * gamma**2 ~ 2, so each phi step about
doubles the mult-adds).

The ImageNet layout (stride-2 3x3 stem conv, two reduction cells, then three stacks) is
built by ``keras_nas.blocks.network.build_network(stem="imagenet")``.
"""

from __future__ import annotations

import dataclasses
import math
import re

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # EfficientNet depth / width / resolution bases
IMAGENET_RESOLUTIONS = (224, 299, 331)

# Published NASNet-A ImageNet configurations (Zoph et al. 2018, Table 2; keras.applications).
NASNET_MOBILE = "4@1056"  # at 224: 5.3M params, 564M mult-adds
NASNET_LARGE = "6@4032"  # at 331: 88.9M params, 23.8B mult-adds (stem_multiplier 3, skip_reduction)


@dataclasses.dataclass(frozen=True)
class NetworkSize:
    """N normal cells per stack, P penultimate filters, input resolution (ImageNet layout by default)."""

    num_cells: int
    penultimate_filters: int
    resolution: int = 224
    stem: str = "imagenet"

    @property
    def notation(self) -> str:
        return f"{self.num_cells}@{self.penultimate_filters}"

    def filters(self, concat_width: int = 6) -> int:
        """F of the first stack: P / (4 * len(normal concat))."""
        return self.penultimate_filters // (4 * concat_width)

    def __str__(self):
        return f"{self.notation} at {self.resolution}px ({self.stem} stem)"


def parse_notation(text: str, resolution: int = 224, stem: str = "imagenet") -> NetworkSize:
    """Parse ``"N@P"`` (e.g. ``"4@1056"``) into a :class:`NetworkSize`."""
    m = re.fullmatch(r"\s*(\d+)\s*@\s*(\d+)\s*", str(text))
    if not m:
        raise ValueError(
            f"{text!r} is not N@P notation; write e.g. '4@1056' (N normal cells per stack, P penultimate filters)."
        )
    n, p = int(m.group(1)), int(m.group(2))
    if n < 1 or p < 1:
        raise ValueError(f"{text!r}: N and P must be positive.")
    return NetworkSize(n, p, int(resolution), stem)


def _as_size(size, resolution=None) -> NetworkSize:
    if isinstance(size, NetworkSize):
        return size if resolution is None else dataclasses.replace(size, resolution=int(resolution))
    return parse_notation(size, 224 if resolution is None else resolution)


def build_imagenet_network(genotype, size="4@1056", resolution=None, num_classes=1000, **kwargs):
    """Build the N@P network of ``genotype`` at ``resolution`` with the ImageNet stem.

    224/299/331 are the published resolutions; any size >= 32 builds.

    ``size``: ``"N@P"`` or a :class:`NetworkSize`. Extra ``kwargs`` go to
    ``build_network`` (e.g. ``stem_multiplier=3, skip_reduction=True`` for NASNet-Large,
    ``dropout``, ``aux_head``, ``drop_path``).
    """
    from keras_nas.blocks.network import build_network, resolve_genotype

    s = _as_size(size, resolution)
    g = resolve_genotype(genotype)
    width = 4 * len(g.normal.concat)
    if s.penultimate_filters % width:
        lo = s.penultimate_filters // width * width
        raise ValueError(
            f"{s.notation}: P must be a multiple of 4 * len(normal concat) = {width} for {g.name or 'this genotype'}; "
            f"try {max(lo, width)} or {lo + width}."
        )
    return build_network(
        g,
        input_shape=(s.resolution, s.resolution, 3),
        num_classes=num_classes,
        num_cells=s.num_cells,
        penultimate_filters=s.penultimate_filters,
        stem=s.stem,
        **kwargs,
    )


def compound_scale(
    base,
    phi: float,
    concat_width: int = 6,
    alpha=ALPHA,
    beta=BETA,
    gamma=GAMMA,
    resolution_multiple: int = 8,
    resolution: int | None = None,
    stem: str | None = None,
) -> NetworkSize:
    """Scale ``base`` by EfficientNet's compound coefficient ``phi``.

    Depth: N' = ceil(N * alpha**phi). Width: F' = round(F * beta**phi) (at least 1), then
    P' = 4 * concat_width * F' so that P' stays a valid penultimate width for the cell.
    Resolution: round(R * gamma**phi) to a multiple of ``resolution_multiple``.
    ``resolution``/``stem`` replace the base's before scaling, to move a search-size
    (CIFAR, 32px) network onto ImageNet's stem and 224px.
    """
    b = _as_size(base)
    b = dataclasses.replace(b, resolution=int(resolution or b.resolution), stem=stem or b.stem)
    f = b.filters(concat_width)
    if f < 1:
        raise ValueError(f"{b.notation}: P is smaller than 4 * concat_width = {4 * concat_width}.")
    n = max(1, math.ceil(b.num_cells * alpha**phi - 1e-9))
    f2 = max(1, round(f * beta**phi))
    r = max(
        resolution_multiple,
        int(round(b.resolution * gamma**phi / resolution_multiple)) * resolution_multiple,
    )
    return NetworkSize(n, 4 * concat_width * f2, r, b.stem)


def scaling_family(base, phis=(0, 1, 2, 3), concat_width: int = 6, **kwargs) -> list:
    """A family of sizes from one (e.g. search-size) network: ``[compound_scale(base, phi) for phi in phis]``."""
    return [compound_scale(base, phi, concat_width, **kwargs) for phi in phis]


def flops_multiplier(phi: float, alpha=ALPHA, beta=BETA, gamma=GAMMA) -> float:
    """Expected mult-add growth ``(alpha * beta**2 * gamma**2) ** phi`` (about 2**phi)."""
    return (alpha * beta**2 * gamma**2) ** phi
