"""Cells as text and as PNG pictures, drawn with Pillow (no graphviz binaries needed).

Why Pillow: it is a small optional extra (``keras-nas[viz]``) that the TensorBoard image
summaries can reuse; graphviz would add a system dependency. Text rendering needs nothing.

Works for the three architecture kinds: NASNet/AmoebaNet ``Genotype`` (normal and
reduction cell), NAS-Bench-201 ``NB201Cell`` and macro ``MacroArchitecture``.
"""

from __future__ import annotations

import io
from typing import Sequence

from keras_nas.space import Genotype, MacroArchitecture, NB201Cell

STATE_NAMES = {0: "h[k-1]", 1: "h[k-2]"}

# Edge colours by op family, so similar ops read alike in the picture.
_COLORS = {
    "sep": (31, 119, 180),
    "dil": (148, 103, 189),
    "conv": (44, 160, 44),
    "avg": (255, 127, 14),
    "max": (214, 39, 40),
    "identity": (127, 127, 127),
    "skip": (127, 127, 127),
    "none": (200, 200, 200),
}


def _color(op: str):
    for prefix, c in _COLORS.items():
        if op.startswith(prefix) or prefix in op.split("_")[:1]:
            return c
    if "conv" in op:
        return _COLORS["conv"]
    return (23, 190, 207)


# -- text ---------------------------------------------------------------------------------

def _state(i: int) -> str:
    return STATE_NAMES.get(i, f"b{i - 2}")


def cell_text(cell, title: str) -> str:
    lines = [f"{title} cell ({cell.num_blocks} blocks; output = concat of {', '.join(_state(c) for c in cell.concat)}):"]
    for b, block in enumerate(cell.blocks):
        terms = " + ".join(f"{op}({_state(i)})" for i, op in zip(block.inputs, block.ops))
        lines.append(f"  b{b} = {terms}")
    return "\n".join(lines)


def architecture_text(arch) -> str:
    """A readable multi-line description of ``arch`` (any of the three kinds)."""
    if isinstance(arch, Genotype):
        head = f"NASNet-style genotype{' ' + arch.name if arch.name else ''}\n  {arch}\n"
        return head + "\n".join(cell_text(arch.cell(w), w) for w in ("normal", "reduce")) + \
            "\n(h[k-1] = previous cell's output, h[k-2] = the cell before it, bN = block N of this cell)"
    if isinstance(arch, NB201Cell):
        lines = [f"NAS-Bench-201 cell {arch}"]
        for to in (1, 2, 3):
            terms = " + ".join(f"{arch.op(to, frm)}(node{frm})" for frm in range(to) if arch.op(to, frm) != "none")
            lines.append(f"  node{to} = {terms or 'zero'}")
        lines.append("  (node0 = cell input, node3 = cell output)")
        return "\n".join(lines)
    if isinstance(arch, MacroArchitecture):
        lines = [f"Macro architecture ({len(arch)} conv layers) {arch}"]
        for i, l in enumerate(arch):
            skips = f", plus skip inputs from layers {list(l.skips)}" if l.skips else ""
            lines.append(f"  layer{i}: {l.filters} filters, {l.kernel_size}x{l.kernel_size}, stride {l.stride}{skips}")
        return "\n".join(lines)
    raise TypeError(f"Cannot describe a {type(arch).__name__}; expected Genotype, NB201Cell or MacroArchitecture.")


# -- pictures -----------------------------------------------------------------------------

def _graph_for(arch) -> list:
    """Panels as (title, nodes {id: (label, column, fill colour)}, edges [(src, dst)]).

    Every op is drawn as its own coloured box between the state it reads and the block
    that adds it, so labels never sit on crossing lines.
    """
    state_fill, add_fill, out_fill = (245, 245, 220), (230, 240, 255), (235, 235, 235)
    panels = []
    if isinstance(arch, Genotype):
        for which in ("normal", "reduce"):
            cell = arch.cell(which)
            depth = {0: 0, 1: 0}
            nodes = {0: (STATE_NAMES[0], 0, state_fill), 1: (STATE_NAMES[1], 0, state_fill)}
            edges = []
            for b, block in enumerate(cell.blocks):
                s = b + 2
                depth[s] = 1 + max(depth[i] for i in block.inputs)
                for j, (i, op) in enumerate(zip(block.inputs, block.ops)):
                    nodes[(s, j)] = (op, 2 * depth[s] - 1, _tint(_color(op)))
                    edges += [(i, (s, j)), ((s, j), s)]
                nodes[s] = (f"b{b} (+)", 2 * depth[s], add_fill)
            nodes["out"] = ("concat", 2 + 2 * max(depth[c] for c in cell.concat), out_fill)
            edges += [(c, "out") for c in cell.concat]
            panels.append((f"{which} cell", nodes, edges))
    elif isinstance(arch, NB201Cell):
        nodes = {i: (f"node{i}", 2 * i, state_fill if i in (0, 3) else add_fill) for i in range(4)}
        edges = []
        for to in (1, 2, 3):
            for frm in range(to):
                op = arch.op(to, frm)
                if op != "none":
                    nodes[(to, frm)] = (op, 2 * to - 1, _tint(_color(op)))
                    edges += [(frm, (to, frm)), ((to, frm), to)]
        panels.append(("NB201 cell (none edges omitted)", nodes, edges))
    elif isinstance(arch, MacroArchitecture):
        nodes = {"in": ("input", 0, state_fill)}
        edges = []
        prev = "in"
        for i, l in enumerate(arch):
            nodes[i] = (f"L{i}: {l.filters} {l.kernel_size}x{l.kernel_size}/s{l.stride}", i + 1, _tint(_COLORS["conv"]))
            edges.append((prev, i))
            edges += [(j, i) for j in l.skips]
            prev = i
        panels.append(("macro network", nodes, edges))
    else:
        raise TypeError(f"Cannot draw a {type(arch).__name__}; expected Genotype, NB201Cell or MacroArchitecture.")
    return panels


def _tint(c, a=0.35):
    return tuple(int(255 - a * (255 - v)) for v in c)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _draw_panel(title, nodes, edges, row_h=44, margin=20, gap=36):
    from PIL import Image, ImageDraw

    font = _font(13)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    box_w = {nid: max(70, probe.textlength(lbl, font=font) + 14) for nid, (lbl, _, _) in nodes.items()}
    cols: dict = {}
    for nid, (_, c, _) in nodes.items():
        cols.setdefault(c, []).append(nid)
    col_w = {c: max(box_w[n] for n in ids) for c, ids in cols.items()}
    x_of, x = {}, margin
    for c in sorted(cols):
        x_of[c] = x + col_w[c] / 2
        x += col_w[c] + gap
    n_rows = max(len(v) for v in cols.values())
    width, height = int(x - gap + margin), int(margin * 2 + 22 + row_h * n_rows)
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((margin, 6), title, fill="black", font=_font(15))
    pos = {}
    for c, ids in cols.items():
        top = margin + 22 + (n_rows - len(ids)) * row_h / 2
        for r, nid in enumerate(ids):
            pos[nid] = (x_of[c], top + r * row_h + row_h / 2)
    for src, dst in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        xa, xb = x0 + box_w[src] / 2, x1 - box_w[dst] / 2
        d.line([(xa, y0), (xb, y1)], fill=(90, 90, 90), width=1)
        d.polygon([(xb, y1), (xb - 6, y1 - 3), (xb - 6, y1 + 3)], fill=(90, 90, 90))
    for nid, (label, _, fill) in nodes.items():
        x, y = pos[nid]
        hw = box_w[nid] / 2
        d.rounded_rectangle([x - hw, y - 12, x + hw, y + 12], radius=6, fill=fill, outline=(60, 60, 60))
        tw = d.textlength(label, font=font)
        d.text((x - tw / 2, y - 7), label, fill="black", font=font)
    return img


def architecture_image(arch):
    """A ``PIL.Image`` of ``arch``: one panel per cell, stacked vertically."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("Drawing cells needs Pillow: pip install 'keras-nas[viz]' (text output works without it).") from None
    panels = [_draw_panel(*p) for p in _graph_for(arch)]
    w = max(p.width for p in panels)
    img = Image.new("RGB", (w, sum(p.height for p in panels)), "white")
    y = 0
    for p in panels:
        img.paste(p, (0, y))
        y += p.height
    return img


def architecture_png(arch) -> bytes:
    """PNG bytes of :func:`architecture_image` (for files and TensorBoard image summaries)."""
    buf = io.BytesIO()
    architecture_image(arch).save(buf, format="PNG")
    return buf.getvalue()


def save_png(arch, path: str) -> str:
    with open(path, "wb") as f:
        f.write(architecture_png(arch))
    return path
