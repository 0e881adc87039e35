"""Cells as text and PNG; architecture loading from every accepted form; `keras-nas show`."""

import io
import json
import random

import pytest

from keras_nas import cli, zoo
from keras_nas.families import arch_to_json
from keras_nas.rundir import JobError, load_architecture
from keras_nas.space import MacroSpace, NB201Cell
from keras_nas.visualize import architecture_image, architecture_png, architecture_text

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


def _macro():
    s = MacroSpace(num_layers=3, skip_connections=True)
    return s.decode(s.sample(random.Random(0)))


def test_text_lists_every_block_of_both_cells():
    t = architecture_text(zoo.AMOEBANET_A)
    assert "normal cell (5 blocks" in t and "reduce cell (5 blocks" in t
    for cell in (zoo.AMOEBANET_A.normal, zoo.AMOEBANET_A.reduce):
        for b, block in enumerate(cell.blocks):
            assert f"  b{b} = {block.ops[0]}(" in t
    assert "avg_pool_3x3(b3)" in t  # block 4 of the normal cell reads block 3 (state 5)


def test_text_nb201_and_macro():
    t = architecture_text(NB201Cell.parse(NB201))
    assert "node3 = skip_connect(node0) + nor_conv_1x1(node2)" in t  # 'none' edges dropped
    m = _macro()
    assert f"layer0: {m[0].filters} filters" in architecture_text(m)


@pytest.mark.parametrize(
    "arch", [zoo.NASNET_A, NB201Cell.parse(NB201), _macro()], ids=["nasnet", "nb201", "macro"]
)
def test_png_is_a_real_picture(arch):
    from PIL import Image

    png = architecture_png(arch)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(png))
    assert img.width > 200 and img.height > 80
    # not blank: some pixels are neither white nor a single colour
    assert len(set(img.convert("RGB").getdata())) > 5


def test_two_panels_for_nasnet():
    one = architecture_image(NB201Cell.parse(NB201))
    two = architecture_image(zoo.NASNET_A)
    assert two.height > one.height


def test_load_architecture_every_form(tmp_path):
    g = zoo.DARTS_V2
    assert load_architecture("darts_v2") == g
    assert load_architecture("DARTS-V2") == g
    assert load_architecture(str(g)) == g
    assert load_architecture(g.to_json()) == g
    f = tmp_path / "g.json"
    f.write_text(g.to_json())
    assert load_architecture(str(f)) == g
    run = tmp_path / "run"
    run.mkdir()
    (run / "best_genotype.json").write_text(arch_to_json(g))
    assert load_architecture(str(run)) == g
    nb = NB201Cell.parse(NB201)
    assert load_architecture(NB201) == nb
    (tmp_path / "nb.json").write_text(arch_to_json(nb))
    assert load_architecture(str(tmp_path / "nb.json")) == nb
    m = _macro()
    assert load_architecture(str(m)) == m
    assert load_architecture(arch_to_json(m)) == m


def test_load_architecture_errors(tmp_path):
    with pytest.raises(JobError, match="zoo name"):
        load_architecture("not an architecture")
    with pytest.raises(JobError, match="without best_genotype.json"):
        load_architecture(str(tmp_path))
    with pytest.raises(JobError, match="normal cell, block 0, input 1: index 7 out of range"):
        load_architecture("normal=identity~0+identity~7/2;reduce=identity~0+identity~1/2")


def test_cli_show_zoo_name_and_run_dir(tmp_path, capsys):
    png = tmp_path / "c.png"
    assert cli.main(["show", "nasnet_a", f"--png={png}"]) == 0
    out = capsys.readouterr().out
    assert "NASNet-A" in out and "reduce cell" in out and str(png) in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    run = tmp_path / "run"
    run.mkdir()
    (run / "best_genotype.json").write_text(json.dumps(zoo.ENAS.to_dict()))
    assert cli.main(["show", str(run)]) == 0
    assert (run / "cells.png").exists()
    assert cli.main(["show", "enas", "--text_only"]) == 0
    assert "normal cell" in capsys.readouterr().out


def test_cli_show_bad_argument(capsys):
    assert cli.main(["show", "no_such_thing"]) == 1
    assert "Cannot read architecture 'no_such_thing'" in capsys.readouterr().err
    assert cli.main(["show"]) == 2
    assert "needs exactly one GENOTYPE_OR_RUN" in capsys.readouterr().err


# -- layout: no edge may pass through a box other than its two endpoints -----------------------
# (the straight-line drawing did: in NASNet-A's reduce cell an h[k-2] edge crossed b1's box).


def _crossings(boxes, routes, shrink=1.0):
    """``[(src, dst, node)]`` for every route sampled inside a box that is not its endpoint."""
    hits = []
    for src, dst, pts in routes:
        samples = []
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            n = max(2, int(max(abs(x1 - x0), abs(y1 - y0)) * 2))
            samples += [(x0 + (x1 - x0) * t / n, y0 + (y1 - y0) * t / n) for t in range(n + 1)]
        for node, (bx0, by0, bx1, by1) in boxes.items():
            if node in (src, dst):
                continue
            if any(
                bx0 + shrink < x < bx1 - shrink and by0 + shrink < y < by1 - shrink
                for x, y in samples
            ):
                hits.append((src, dst, node))
    return hits


def test_the_crossing_check_finds_a_crossing():
    boxes = {"a": (0, 0, 10, 10), "b": (40, 0, 50, 10), "c": (20, -5, 30, 5)}
    assert _crossings(boxes, [("a", "b", [(10, 2), (40, 2)])]) == [("a", "b", "c")]
    assert _crossings(boxes, [("a", "b", [(10, 8), (40, 8)])]) == []


@pytest.mark.parametrize("name", ["nasnet_a", "amoebanet_a", "darts_v2", "enas"])
def test_pillow_fallback_routes_edges_around_boxes(name):
    from keras_nas.visualize import _graph_for, _pillow_layout

    for title, nodes, edges in _graph_for(zoo.get(name)):
        _, boxes, routes = _pillow_layout(nodes, edges)
        assert len(routes) == len(edges)
        assert _crossings(boxes, routes) == [], (name, title)
    _, boxes, routes = _pillow_layout(*_graph_for(_macro())[0][1:])
    assert _crossings(boxes, routes) == []


def test_edges_from_a_fanning_node_share_its_own_colour():
    from keras_nas.visualize import _edge_colors, _graph_for

    _, nodes, edges = _graph_for(zoo.NASNET_A)[1]  # reduce cell
    colors = _edge_colors(nodes, edges)
    # h[k-1], h[k-2], b0 and b1 each feed several ops: four different colours
    assert {0, 1, 2, 3} <= set(colors) and len({colors[n] for n in (0, 1, 2, 3)}) == 4
    assert all(sum(s == n for s, _ in edges) > 1 for n in colors)


def _dot_geometry(src):
    """Node boxes and sampled edge splines of ``dot -Tjson0`` output, in points."""
    import graphviz

    g = json.loads(graphviz.Source(src).pipe(format="json0").decode())
    boxes, names = {}, {}
    for o in g["objects"]:
        if "pos" in o and "width" in o:
            x, y = (float(v) for v in o["pos"].split(","))
            w, h = float(o["width"]) * 72 / 2, float(o["height"]) * 72 / 2
            boxes[o["_gvid"]] = (x - w, y - h, x + w, y + h)
            names[o["_gvid"]] = o["name"]
    routes = []
    for e in g["edges"]:
        parts = e["pos"].split()
        tip = [tuple(map(float, p[2:].split(","))) for p in parts if p.startswith("e,")]
        ctrl = [tuple(map(float, p.split(","))) for p in parts if not p.startswith(("e,", "s,"))]
        pts = []
        for i in range(0, len(ctrl) - 3, 3):  # cubic Bezier pieces
            p0, p1, p2, p3 = ctrl[i : i + 4]
            for k in range(21):
                t = k / 20
                pts.append(
                    tuple(
                        (1 - t) ** 3 * a
                        + 3 * (1 - t) ** 2 * t * b
                        + 3 * (1 - t) * t**2 * c
                        + t**3 * d
                        for a, b, c, d in zip(p0, p1, p2, p3)
                    )
                )
        routes.append((e["tail"], e["head"], pts + tip))
    return boxes, routes, names


needs_dot = pytest.mark.skipif(
    not __import__("keras_nas.visualize").visualize.graphviz_available(),
    reason="Graphviz not installed (apt-get install graphviz; pip install graphviz)",
)


@needs_dot
@pytest.mark.parametrize("name", ["nasnet_a", "amoebanet_a", "darts_v2"])
def test_graphviz_layout_no_edge_through_a_box(name):
    from keras_nas.visualize import architecture_dot

    for src in architecture_dot(zoo.get(name)):
        boxes, routes, names = _dot_geometry(src)
        assert len(routes) == src.count("->") and len(boxes) > 10
        hits = _crossings(boxes, routes)
        assert hits == [], [(names[a], names[b], names[c]) for a, b, c in hits]


@needs_dot
def test_auto_engine_uses_graphviz_and_falls_back_to_pillow(monkeypatch):
    from keras_nas import visualize

    g = zoo.NASNET_A
    assert architecture_png(g) == architecture_png(g, "graphviz") != architecture_png(g, "pillow")

    def broken(src):
        raise OSError("dot crashed")

    monkeypatch.setattr(visualize, "_dot_png", broken)
    assert architecture_png(g) == architecture_png(
        g, "pillow"
    )  # a failing dot never breaks a search
    with pytest.raises(OSError, match="dot crashed"):
        architecture_png(g, "graphviz")


def test_without_graphviz_auto_draws_with_pillow(monkeypatch):
    from keras_nas import visualize

    monkeypatch.setattr(visualize.shutil, "which", lambda name: None)
    assert not visualize.graphviz_available()
    assert architecture_png(zoo.NASNET_A) == architecture_png(zoo.NASNET_A, "pillow")
    with pytest.raises(ValueError, match="engine must be one of"):
        architecture_png(zoo.NASNET_A, "ascii")
