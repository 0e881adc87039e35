"""Search spaces and genotypes: pure Python, no TensorFlow."""

import json
import pickle
import random
from pathlib import Path

import pytest

from keras_nas import Genotype, GenotypeError, zoo
from keras_nas.space import (
    AMOEBANET_OPS,
    KIND_INPUT,
    KIND_OP,
    CellGenotype,
    Decision,
    MacroSpace,
    NASNetCellSpace,
    NB201Cell,
    NB201Space,
    SearchSpace,
    SpaceError,
    load_genotype,
)

DATA = Path(__file__).parent / "data"


# -- Genotype value semantics and serialisation ------------------------------------------


@pytest.mark.parametrize("name", sorted(zoo.GENOTYPES))
def test_zoo_genotypes_validate_and_round_trip(name):
    g = zoo.GENOTYPES[name]
    g.validate()
    assert Genotype.parse(str(g)) == g
    assert Genotype.from_json(g.to_json()) == g
    assert hash(Genotype.parse(str(g))) == hash(g)
    assert pickle.loads(pickle.dumps(g)) == g
    assert zoo.get(g.name) is g


def test_genotype_is_immutable_and_hashable():
    g = zoo.NASNET_A
    with pytest.raises(AttributeError):
        g.normal = g.reduce
    with pytest.raises(AttributeError):
        g.normal.concat = (1,)
    assert len({zoo.NASNET_A, Genotype.parse(str(zoo.NASNET_A)), zoo.AMOEBANET_A}) == 2


def test_name_is_a_label_not_identity():
    g = Genotype(zoo.NASNET_A.normal, zoo.NASNET_A.reduce, name="other")
    assert g == zoo.NASNET_A and hash(g) == hash(zoo.NASNET_A)


def test_reference_concat_rules_are_kept():
    # The reference code hard-codes these (REFERENCE.md); the paper's "unused states" rule differs.
    assert zoo.NASNET_A.normal.concat == (1, 2, 3, 4, 5, 6)
    assert zoo.NASNET_A.reduce.concat == (3, 4, 5, 6)
    assert zoo.NASNET_A.reduce.unused_states() == (4, 5, 6)
    assert zoo.AMOEBANET_A.normal.concat == (1, 3, 4, 6)
    assert zoo.AMOEBANET_A.reduce.concat == (2, 3, 4, 5, 6)


def test_nasnet_a_blocks_match_reference():
    n = zoo.NASNET_A.normal.blocks
    assert n[0].inputs == (0, 1) and n[0].ops == ("sep_conv_5x5", "sep_conv_3x3")
    assert n[4].inputs == (0, 0) and n[4].ops == ("sep_conv_3x3", "identity")
    r = zoo.NASNET_A.reduce.blocks
    assert r[3].inputs == (3, 2) and r[3].ops == ("identity", "avg_pool_3x3")


def test_darts_and_enas_index_convention_is_swapped():
    # DARTS's node 0 (first pair) reads s0 = cell k-2 -> our input 1, and s1 -> our input 0.
    b0 = zoo.DARTS_V2.normal.blocks[0]
    assert b0.inputs == (1, 0) and b0.ops == ("sep_conv_3x3", "sep_conv_3x3")
    assert zoo.DARTS_V2.normal.concat == (2, 3, 4, 5)
    assert zoo.DARTS_V2.normal.num_blocks == 4
    # ENAS concatenates every state no node reads (its reduce cell reads state 3).
    assert zoo.ENAS.normal.concat == (2, 3, 4, 5, 6)
    assert zoo.ENAS.reduce.concat == (2, 4, 5, 6)


def test_version_1_json_stays_readable():
    text = (DATA / "genotype_v1_nasnet_a.json").read_text()
    assert Genotype.from_json(text) == zoo.NASNET_A
    d = json.loads(text)
    del d["version"], d["format"]  # the earliest documents may carry neither field
    assert Genotype.from_dict(d) == zoo.NASNET_A


def test_future_version_is_refused_with_upgrade_hint():
    d = zoo.NASNET_A.to_dict()
    d["version"] = 99
    with pytest.raises(GenotypeError, match="Upgrade keras-nas"):
        Genotype.from_dict(d)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "Malformed genotype JSON"),
        ('{"format": "other"}', "Not a keras-nas genotype"),
        ('{"normal": {"blocks": []}}', "lacks the 'reduce' cell"),
        (
            '{"normal": {"blocks": [{"inputs": [0]}]}, "reduce": {"blocks": []}}',
            r"normal cell, block 0",
        ),
        ("normal=sep_conv_3x3~0/2", "should be 'op~input\\+op~input'"),
        ("normal=sep_conv_3x3~0+identity~x/2;reduce=identity~0+identity~1/2", "not an integer"),
        ("normal=sep_conv_3x3~0+identity~1/2", r"lacks the \['reduce'\]"),
        ("foo=bar", "unknown part 'foo'"),
        ("normal=sep_conv_3x3~0+identity~1", "lacks '/concat'"),
    ],
)
def test_malformed_input_names_the_problem(text, match):
    with pytest.raises(GenotypeError, match=match):
        Genotype.parse(text)


def test_validate_names_block_and_field():
    bad_index = zoo.NASNET_A.replace(normal=zoo.NASNET_A.normal.replace_block(2, inputs=(0, 7)))
    with pytest.raises(
        GenotypeError, match=r"normal cell, block 2, input 1: index 7 out of range.*0\.\.3"
    ):
        bad_index.validate()
    bad_op = zoo.NASNET_A.replace(
        reduce=zoo.NASNET_A.reduce.replace_block(1, ops=("max_pool_3x3", "conv_9x9"))
    )
    with pytest.raises(
        GenotypeError, match=r"reduce cell, block 1, op 1: unknown op 'conv_9x9'.*sep_conv_3x3"
    ):
        bad_op.validate()
    with pytest.raises(GenotypeError, match="concat index 9 out of range"):
        Genotype(CellGenotype(zoo.NASNET_A.normal.blocks, [9]), zoo.NASNET_A.reduce).validate()
    with pytest.raises(GenotypeError, match="unknown op 'conv_1x1'"):
        zoo.NASNET_A.replace(
            normal=zoo.NASNET_A.normal.replace_block(0, ops=("conv_1x1", "identity"))
        ).validate(AMOEBANET_OPS)


def test_load_genotype_from_string_json_zoo_file_and_results_wrapper(tmp_path):
    g = zoo.AMOEBANET_A
    assert load_genotype(str(g)) == g
    assert load_genotype(g.to_json()) == g
    p = tmp_path / "g.json"
    p.write_text(g.to_json())
    assert load_genotype(str(p)) == g
    p2 = tmp_path / "best.json"
    p2.write_text(json.dumps({"genotype": g.to_dict(), "score": 0.9}))
    assert load_genotype(str(p2)) == g


def test_aliases_from_other_tools_are_canonicalised():
    c = CellGenotype.parse("skip_connect~0+sep3~1/2")
    assert c.blocks[0].ops == ("identity", "sep_conv_3x3")


# -- Spaces ----------------------------------------------------------------------------


def test_decision_rejects_numpy_and_mixed_types():
    np = pytest.importorskip("numpy")
    with pytest.raises(SpaceError, match="plain Python"):
        Decision("x", (np.int64(1), np.int64(2)))
    with pytest.raises(SpaceError, match="plain Python"):
        Decision("x", (1, "a"))
    with pytest.raises(SpaceError, match="no options"):
        Decision("x", ())
    with pytest.raises(SpaceError, match="duplicate options"):
        Decision("x", (1, 1))


def test_space_rejects_duplicate_names():
    with pytest.raises(SpaceError, match="duplicate decision names"):
        SearchSpace([Decision("a", (1,)), Decision("a", (2,))])


@pytest.mark.parametrize("ops, n_ops", [("amoebanet", 8), ("nasnet", 13)])
def test_nasnet_space_decisions_and_round_trip(ops, n_ops):
    space = NASNetCellSpace(num_blocks=5, ops=ops)
    assert len(space) == 2 * 5 * 4
    assert space["normal/b0_in0"].options == (0, 1) and space["normal/b0_in0"].kind == KIND_INPUT
    assert space["reduce/b4_in1"].options == (0, 1, 2, 3, 4, 5)
    assert len(space["normal/b3_op1"].options) == n_ops and space["normal/b3_op1"].kind == KIND_OP
    rng = random.Random(0)
    for _ in range(50):
        values = space.sample(rng)
        g = space.decode(values)
        g.validate()
        assert space.encode(g) == values
        assert g.normal.concat == g.normal.unused_states()


def test_nasnet_space_encodes_published_cells_and_rejects_other_vocab():
    space = NASNetCellSpace(ops="nasnet")
    values = space.encode(zoo.NASNET_A)
    assert space.decode(values).normal.blocks == zoo.NASNET_A.normal.blocks
    with pytest.raises(GenotypeError, match="unknown op 'dil_sep_conv_3x3'"):
        NASNetCellSpace(ops="nasnet").encode(
            zoo.AMOEBANET_A.replace(
                normal=zoo.AMOEBANET_A.normal.replace_block(0, ops=("dil_sep_conv_3x3", "identity"))
            )
        )
    with pytest.raises(ValueError, match="Unknown op vocabulary"):
        NASNetCellSpace(ops="resnet")
    with pytest.raises(ValueError, match="Unknown ops"):
        NASNetCellSpace(ops=["sep_conv_3x3", "warp_drive"])
    with pytest.raises(SpaceError, match="'none'"):
        NASNetCellSpace(ops="darts")


def test_block_count_mismatch_is_named():
    space = NASNetCellSpace(
        num_blocks=5, ops=["sep_conv_3x3", "max_pool_3x3", "identity", "dil_conv_3x3"]
    )
    with pytest.raises(SpaceError, match="has 4 blocks but this space has 5"):
        space.encode(zoo.DARTS_V2)


def test_hp_registration_matches_decisions():
    kt = pytest.importorskip("keras_tuner")
    space = NASNetCellSpace(num_blocks=2)
    hp = kt.HyperParameters()
    values = space.register(hp)
    assert set(values) == {d.name for d in space.decisions}
    assert [h.name for h in hp.space] == [d.name for d in space.decisions]
    g = space.decode(hp.values)
    g.validate()


def test_check_values_reports_missing_and_bad():
    space = NASNetCellSpace(num_blocks=1)
    v = space.sample(random.Random(1))
    del v["reduce/b0_op1"]
    with pytest.raises(SpaceError, match="missing decisions"):
        space.decode(v)
    v = space.sample(random.Random(1))
    v["normal/b0_in0"] = 5
    with pytest.raises(SpaceError, match="value 5 is not one of its options"):
        space.decode(v)


def test_nb201_string_round_trip_and_space():
    s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    cell = NB201Cell.parse(s)
    assert str(cell) == s
    assert cell.op(3, 2) == "nor_conv_1x1"
    space = NB201Space()
    assert len(space) == 6 and space.size == 5**6
    assert space.decode(space.encode(cell)) == cell
    with pytest.raises(SpaceError, match="unknown op 'conv_9x9'"):
        NB201Cell.parse(s.replace("nor_conv_1x1", "conv_9x9"))
    with pytest.raises(SpaceError, match="3 '\\+'-separated nodes"):
        NB201Cell.parse("|none~0|")


def test_macro_space():
    space = MacroSpace(num_layers=4, skip_connections=True)
    assert space["layer0/filters"].options == (24, 36, 48, 64)
    assert space["layer0/kernel_size"].options == (3, 5, 7)
    assert space["layer0/stride"].options == (1, 2)
    assert "layer3/skip_from2" in [d.name for d in space.decisions]
    rng = random.Random(3)
    for _ in range(20):
        v = space.sample(rng)
        arch = space.decode(v)
        assert space.encode(arch) == v
        assert all(j < i for i, layer in enumerate(arch) for j in layer.skips)
    with pytest.raises(SpaceError, match="positive integers"):
        MacroSpace(filters=(0, 8))


@pytest.mark.parametrize(
    "blocks, match",
    [
        ([5], r"block 0: expected \(inputs, ops\)"),
        ([((0, "x"), ("identity", "identity"))], r"block 0: expected \(inputs, ops\)"),
        ([((0, 1), ("identity", 3))], "op names must be strings"),
    ],
)
def test_malformed_blocks_name_the_block(blocks, match):
    with pytest.raises(GenotypeError, match=match):
        CellGenotype(blocks)
    with pytest.raises(GenotypeError, match="concat must be a list of integers"):
        CellGenotype([((0, 1), ("identity", "identity"))], concat=["a"])


def test_unknown_op_is_rejected_when_parsing():
    text = zoo.NASNET_A.to_json().replace("sep_conv_7x7", "sep_conv_9x9")
    with pytest.raises(
        GenotypeError, match=r"reduce cell, block 0, op 1: unknown op 'sep_conv_9x9'.*register_op"
    ):
        Genotype.from_json(text)
    with pytest.raises(GenotypeError, match="unknown op 'sep_conv_9x9'"):
        Genotype.parse(str(zoo.NASNET_A).replace("sep_conv_7x7", "sep_conv_9x9"))
    bad = json.loads(zoo.NASNET_A.to_json())
    bad["normal"]["blocks"][1]["inputs"] = 3
    with pytest.raises(GenotypeError, match=r"normal cell, block 1: expected"):
        Genotype.from_dict(bad)
