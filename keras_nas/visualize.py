"""Cells as text and as PNG pictures: Graphviz ``dot`` when installed, else Pillow.

Why two renderers: a cell of 3+ blocks is a DAG whose long edges must be routed around the
op boxes, which ``dot`` does well (DARTS's ``visualize.py`` and Keras's ``plot_model`` use it),
but ``dot`` is a system binary (``apt-get install graphviz`` plus the ``graphviz`` Python
package, both in ``keras-nas[viz]``'s reach). Without it, Pillow draws a layered layout in
which an edge that spans columns passes through reserved empty slots, so it never crosses a
box either. Text rendering needs nothing.

Works for the three architecture kinds: NASNet/AmoebaNet ``Genotype`` (normal and
reduction cell), NAS-Bench-201 ``NB201Cell`` and macro ``MacroArchitecture``.
"""

from __future__ import annotations

import io
import shutil

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
    lines = [
        f"{title} cell ({cell.num_blocks} blocks; output = concat of {', '.join(_state(c) for c in cell.concat)}):"
    ]
    for b, block in enumerate(cell.blocks):
        terms = " + ".join(f"{op}({_state(i)})" for i, op in zip(block.inputs, block.ops))
        lines.append(f"  b{b} = {terms}")
    return "\n".join(lines)


def architecture_text(arch) -> str:
    """A readable multi-line description of ``arch`` (any of the three kinds)."""
    if isinstance(arch, Genotype):
        head = f"NASNet-style genotype{' ' + arch.name if arch.name else ''}\n  {arch}\n"
        return (
            head
            + "\n".join(cell_text(arch.cell(w), w) for w in ("normal", "reduce"))
            + "\n(h[k-1] = previous cell's output, h[k-2] = the cell before it, bN = block N of this cell)"
        )
    if isinstance(arch, NB201Cell):
        lines = [f"NAS-Bench-201 cell {arch}"]
        for to in (1, 2, 3):
            terms = " + ".join(
                f"{arch.op(to, frm)}(node{frm})" for frm in range(to) if arch.op(to, frm) != "none"
            )
            lines.append(f"  node{to} = {terms or 'zero'}")
        lines.append("  (node0 = cell input, node3 = cell output)")
        return "\n".join(lines)
    if isinstance(arch, MacroArchitecture):
        lines = [f"Macro architecture ({len(arch)} conv layers) {arch}"]
        for i, l in enumerate(arch):
            skips = f", plus skip inputs from layers {list(l.skips)}" if l.skips else ""
            lines.append(
                f"  layer{i}: {l.filters} filters, {l.kernel_size}x{l.kernel_size}, stride {l.stride}{skips}"
            )
        return "\n".join(lines)
    raise TypeError(
        f"Cannot describe a {type(arch).__name__}; expected Genotype, NB201Cell or MacroArchitecture."
    )


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
            nodes[i] = (
                f"L{i}: {l.filters} {l.kernel_size}x{l.kernel_size}/s{l.stride}",
                i + 1,
                _tint(_COLORS["conv"]),
            )
            edges.append((prev, i))
            edges += [(j, i) for j in l.skips]
            prev = i
        panels.append(("macro network", nodes, edges))
    else:
        raise TypeError(
            f"Cannot draw a {type(arch).__name__}; expected Genotype, NB201Cell or MacroArchitecture."
        )
    return panels


# Edges leaving a node with several successors get that node's colour (and so does its box
# outline), so where lines cross one can still tell which state each op reads.
_EDGE_PALETTE = [
    (31, 88, 160),
    (200, 82, 0),
    (34, 130, 34),
    (180, 30, 40),
    (110, 60, 170),
    (120, 80, 40),
    (200, 50, 140),
    (0, 130, 140),
    (130, 130, 0),
    (70, 70, 70),
]
_GREY = (90, 90, 90)


def _edge_colors(nodes, edges) -> dict:
    """``{source node: colour}`` for every node with more than one outgoing edge."""
    outs: dict = {}
    for src, _ in edges:
        outs[src] = outs.get(src, 0) + 1
    fanning = [n for n in nodes if outs.get(n, 0) > 1]
    return {n: _EDGE_PALETTE[i % len(_EDGE_PALETTE)] for i, n in enumerate(fanning)}


def _tint(c, a=0.35):
    return tuple(int(255 - a * (255 - v)) for v in c)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _layers(nodes, edges):
    """Columns of node ids and dummy slots, ordered to reduce crossings, plus each edge's path.

    An edge spanning columns ``c0 < c < c1`` gets a dummy slot in every column between, so it
    is drawn through empty space (the Sugiyama construction); order within a column comes
    from barycenter sweeps.
    """
    col = {n: c for n, (_, c, _) in nodes.items()}
    layers: dict = {}
    for n in nodes:
        layers.setdefault(col[n], []).append(n)
    paths, links = [], []  # paths: [src, dummies..., dst]; links: consecutive pairs
    for k, (src, dst) in enumerate(edges):
        path = [src] + [("~", k, c) for c in range(col[src] + 1, col[dst])] + [dst]
        for d in path[1:-1]:
            layers.setdefault(d[2], []).append(d)
        paths.append(path)
        links += list(zip(path, path[1:]))
    pred, succ = {}, {}
    for a, b in links:
        pred.setdefault(b, []).append(a)
        succ.setdefault(a, []).append(b)
    cols = sorted(layers)
    for sweep in range(8):
        pos = {n: i for c in cols for i, n in enumerate(layers[c])}
        order, nbrs = (cols[1:], pred) if sweep % 2 == 0 else (cols[-2::-1], succ)
        for c in order:

            def key(n, c=c):
                ns = nbrs.get(n, [])  # noqa: B023 (called within this iteration)
                return sum(pos[m] for m in ns) / len(ns) if ns else pos[n]  # noqa: B023 (called within this iteration)

            layers[c].sort(key=key)
            pos.update({n: i for i, n in enumerate(layers[c])})
    return cols, layers, paths


def _pillow_layout(nodes, edges, row_h=40, dummy_h=14, margin=20, gap=40, pad=8, box_h=24):
    """Geometry of a Pillow panel: ``(size, boxes {node: (x0, y0, x1, y1)}, [(src, dst, points)])``.

    A column spans its widest box plus ``pad`` either side; an edge leaves its box with a
    horizontal stub to the column's edge, runs straight across gaps (which hold no boxes)
    and horizontally through its dummy slots, and enters its target by another stub.
    """
    from PIL import Image, ImageDraw

    font = _font(13)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    box_w = {
        nid: max(70, probe.textlength(lbl, font=font) + 14) for nid, (lbl, _, _) in nodes.items()
    }
    cols, layers, paths = _layers(nodes, edges)
    col_w = {c: max([box_w[n] for n in layers[c] if n in nodes] or [20]) for c in cols}
    x_of, x = {}, margin
    for c in cols:
        x_of[c] = x + pad + col_w[c] / 2
        x += col_w[c] + 2 * pad + gap
    slot = {n: (row_h if n in nodes else dummy_h) for c in cols for n in layers[c]}
    col_h = {c: sum(slot[n] for n in layers[c]) for c in cols}
    top0 = margin + 24
    size = (int(x - gap + margin), int(top0 + max(col_h.values()) + margin))
    pos = {}
    for c in cols:
        y = top0 + (max(col_h.values()) - col_h[c]) / 2
        for n in layers[c]:
            pos[n] = (x_of[c], y + slot[n] / 2)
            y += slot[n]

    def col_edge(n, side):
        c = nodes[n][1] if n in nodes else n[2]
        return x_of[c] + side * (col_w[c] / 2 + pad)

    boxes = {
        n: (
            pos[n][0] - box_w[n] / 2,
            pos[n][1] - box_h / 2,
            pos[n][0] + box_w[n] / 2,
            pos[n][1] + box_h / 2,
        )
        for n in nodes
    }
    routes = []
    for path in paths:
        src, dst = path[0], path[-1]
        ys, yt = pos[src][1], pos[dst][1]
        pts = [(boxes[src][2], ys), (col_edge(src, 1), ys)]
        for dm in path[1:-1]:
            pts += [(col_edge(dm, -1), pos[dm][1]), (col_edge(dm, 1), pos[dm][1])]
        pts += [(col_edge(dst, -1), yt), (boxes[dst][0], yt)]
        routes.append((src, dst, pts))
    return size, boxes, routes


def _draw_panel(title, nodes, edges):
    from PIL import Image, ImageDraw

    (width, height), boxes, routes = _pillow_layout(nodes, edges)
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 6), title, fill="black", font=_font(15))
    colors = _edge_colors(nodes, edges)
    for src, _, pts in routes:
        color = colors.get(src, _GREY)
        d.line(pts, fill=color, width=2 if src in colors else 1, joint="curve")
        xb, yt = pts[-1]
        d.polygon([(xb, yt), (xb - 7, yt - 4), (xb - 7, yt + 4)], fill=color)
    font = _font(13)
    for nid, (label, _, fill) in nodes.items():
        x0, y0, x1, y1 = boxes[nid]
        d.rounded_rectangle(
            [x0, y0, x1, y1],
            radius=6,
            fill=fill,
            outline=colors.get(nid, (60, 60, 60)),
            width=2 if nid in colors else 1,
        )
        tw = d.textlength(label, font=font)
        d.text(((x0 + x1 - tw) / 2, (y0 + y1) / 2 - 7), label, fill="black", font=font)
    return img


# -- Graphviz -------------------------------------------------------------------------------


def graphviz_available() -> bool:
    """True when the ``graphviz`` Python package and the ``dot`` binary are both installed."""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def _dot_id(nid) -> str:
    return "n_" + "_".join(str(p) for p in (nid if isinstance(nid, tuple) else (nid,)))


def _dot_quote(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def panel_dot(title, nodes, edges) -> str:
    """DOT source of one panel; columns become ``rank=same`` groups so ops sit by their block."""
    hexc = lambda c: "#%02x%02x%02x" % tuple(c)  # noqa: E731
    lines = [
        "digraph cell {",
        f'  graph [rankdir=LR, label={_dot_quote(title)}, labelloc=t, labeljust=l, fontname="Helvetica", '
        "fontsize=14, nodesep=0.12, ranksep=0.4, pad=0.2, bgcolor=white, splines=spline];",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, height=0.3, '
        'margin="0.1,0.04", color="#3c3c3c"];',
        '  edge [color="#5a5a5a", arrowsize=0.6];',
    ]
    colors = _edge_colors(nodes, edges)
    cols: dict = {}
    for nid, (label, c, fill) in nodes.items():
        pen = f", color={_dot_quote(hexc(colors[nid]))}, penwidth=1.8" if nid in colors else ""
        lines.append(
            f"  {_dot_id(nid)} [label={_dot_quote(label)}, fillcolor={_dot_quote(hexc(fill))}{pen}];"
        )
        cols.setdefault(c, []).append(nid)
    for c in sorted(cols):
        lines.append("  {rank=same; " + " ".join(_dot_id(n) + ";" for n in cols[c]) + "}")
    for src, dst in edges:
        pen = f" [color={_dot_quote(hexc(colors[src]))}, penwidth=1.4]" if src in colors else ""
        lines.append(f"  {_dot_id(src)} -> {_dot_id(dst)}{pen};")
    lines.append("}")
    return "\n".join(lines)


def architecture_dot(arch) -> list:
    """DOT sources, one per panel (normal and reduce cell for a genotype)."""
    return [panel_dot(*p) for p in _graph_for(arch)]


def _dot_png(src: str) -> bytes:
    import graphviz

    return graphviz.Source(src).pipe(format="png")


ENGINES = ("auto", "graphviz", "pillow")


def architecture_image(arch, engine: str = "auto"):
    """A ``PIL.Image`` of ``arch``: one panel per cell, stacked vertically.

    ``engine``: ``"graphviz"`` (needs ``dot``), ``"pillow"``, or ``"auto"`` (Graphviz when
    available; a ``dot`` that fails falls back to Pillow, so pictures never break a search).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}.")
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            "Drawing cells needs Pillow: pip install 'keras-nas[viz]' (text output works without it)."
        ) from None
    graph = _graph_for(arch)
    panels = None
    if engine == "graphviz" or (engine == "auto" and graphviz_available()):
        try:
            panels = [Image.open(io.BytesIO(_dot_png(panel_dot(*p)))).convert("RGB") for p in graph]
        except Exception:  # ExecutableNotFound, a failing dot, an unreadable PNG
            if engine == "graphviz":
                raise
    if panels is None:
        panels = [_draw_panel(*p) for p in graph]
    w = max(p.width for p in panels)
    img = Image.new("RGB", (w, sum(p.height for p in panels)), "white")
    y = 0
    for p in panels:
        img.paste(p, (0, y))
        y += p.height
    return img


def architecture_png(arch, engine: str = "auto") -> bytes:
    """PNG bytes of :func:`architecture_image` (for files and TensorBoard image summaries)."""
    buf = io.BytesIO()
    architecture_image(arch, engine).save(buf, format="PNG")
    return buf.getvalue()


def save_png(arch, path: str, engine: str = "auto") -> str:
    with open(path, "wb") as f:
        f.write(architecture_png(arch, engine))
    return path
