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


@pytest.mark.parametrize("arch", [zoo.NASNET_A, NB201Cell.parse(NB201), _macro()], ids=["nasnet", "nb201", "macro"])
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
