"""Architecture parsers under fuzzed input: every malformed input is a ValueError naming the field.

Why: genotype strings and JSON come from users, result files and other tools. A parser that
lets a ``TypeError``/``KeyError``/``RecursionError`` escape gives a traceback instead of a
message, and one that coerces (``0.7 -> 0``, ``true -> 1``, ``"1" -> 1``, Arabic-Indic digits)
silently builds another architecture than the one written. Inputs are seeded mutations of
valid strings and JSON documents, so a failure is reproducible from its seed and index.
"""

import json
import random

import pytest

from keras_nas import zoo
from keras_nas.space import (
    Genotype,
    GenotypeError,
    MacroArchitecture,
    NB201Cell,
    SpaceError,
    load_genotype,
)
from keras_nas.space.ops import canonical_op

NB201_SEED = (
    "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"
)
MACRO_SEED = "24x3s1;36x5s2<0;48x3s1<0,1"
GENOTYPE_STRINGS = [str(g) for g in zoo.GENOTYPES.values()]
GENOTYPE_JSON = [g.to_json() for g in zoo.GENOTYPES.values()] + [zoo.NASNET_A.to_json(indent=1)]
MACRO_JSON = MacroArchitecture.parse(MACRO_SEED).to_json()

# Characters that break parsers: separators, signs, whitespace, NUL, and digits of other scripts
# that int() accepts (Arabic-Indic 3, fullwidth 1, Devanagari 7) or rejects (superscript 2).
ODD = list('|+~/;=,<xs{}[]":.-e ') + ["\x00", "\t", "\u0663", "\uff11", "\u096d", "\u00b2", "_"]
TYPE_SWAPS = [
    0.7,
    1.0,
    True,
    False,
    None,
    "1",
    "\u0663",
    -1,
    10**30,
    [],
    {},
    [[[]]],
    {"a": 1},
    "",
    5,
    "sep_conv_3x3",
]
HUGE_TEXT = ["1e400", "-1e400", "9" * 5000, "NaN", "Infinity", "1.5", "-0", "00", "0x1", "1_0"]


def _mutate_text(s: str, rng: random.Random) -> str:
    """1-3 character-level edits: deletions, insertions, swaps, digit replacements, huge numbers."""
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        i = rng.randrange(len(s) + 1)
        if op == 0 and s:  # delete a slice
            s = s[:i] + s[i + rng.randint(1, 4) :]
        elif op == 1:  # insert odd characters
            s = s[:i] + "".join(rng.choice(ODD) for _ in range(rng.randint(1, 3))) + s[i:]
        elif op == 2:  # replace an ASCII digit with another script's digit or a huge number
            digits = [k for k, c in enumerate(s) if c.isdigit()]
            if digits:
                k = rng.choice(digits)
                s = (
                    s[:k]
                    + rng.choice(["\u0660", "\u0661", "\u0663", "\uff11", "\u096d"] + HUGE_TEXT)
                    + s[k + 1 :]
                )
        elif op == 3 and s:  # duplicate a slice
            j = min(len(s), i + rng.randint(1, 12))
            s = s[:j] + s[i:j] + s[j:]
        elif op == 4 and len(s) > 1:  # swap two characters
            a, b = sorted(rng.sample(range(len(s)), 2))
            s = s[:a] + s[b] + s[a + 1 : b] + s[a] + s[b + 1 :]
        else:  # replace a token between separators with an odd literal
            s = (
                s[:i]
                + rng.choice(HUGE_TEXT + ["true", "null", '"1"', "[]", "{}"])
                + s[i + rng.randint(0, 3) :]
            )
    return s


def _nodes(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            yield from _nodes(v, path + (k,))


def _set(doc, path, value):
    if not path:
        return value
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return doc


def _mutate_json(text: str, rng: random.Random) -> str:
    """Type swaps, deleted/added keys, deep nesting and huge numbers at a random node, as JSON text."""
    doc = json.loads(text)
    path = rng.choice(list(_nodes(doc)))
    op = rng.randrange(5)
    if op == 0:
        doc = _set(doc, path, rng.choice(TYPE_SWAPS))
    elif op == 1 and path:  # delete the node
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        del parent[path[-1]]
    elif op == 2:  # nest it deeply (as text: json.dumps itself recurses)
        value = doc
        for k in path:
            value = value[k]
        depth = rng.choice([3, 50, 900, 5000])
        deep = "[" * depth + json.dumps(value) + "]" * depth
        return json.dumps(_set(doc, path, "__DEEP__")).replace('"__DEEP__"', deep, 1)
    elif op == 3:  # add a key / element
        value = doc
        for k in path:
            value = value[k]
        if isinstance(value, dict):
            value[rng.choice(["extra", "version", "name", "concat", "blocks"])] = rng.choice(
                TYPE_SWAPS
            )
        elif isinstance(value, list):
            value.append(rng.choice(TYPE_SWAPS))
    out = json.dumps(doc)
    if op == 4:  # literals Python values cannot make: 1e400, a 5000-digit integer, broken syntax
        out = _mutate_text(out, rng)
    return out


def _strict_equal(a, b) -> bool:
    """Equality that also compares types, so True != 1 and 1.0 != 1 (coercion shows up)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
    return a == b


def _check_genotype_json(text, g):
    """An accepted document must hold exactly what the genotype holds: nothing was coerced."""
    doc = json.loads(text)
    for cell in ("normal", "reduce"):
        got = g.to_dict()[cell]
        blocks = [
            {
                "inputs": b["inputs"],
                "ops": [canonical_op(o) if isinstance(o, str) else o for o in b["ops"]],
            }
            for b in doc[cell]["blocks"]
        ]
        assert _strict_equal(blocks, got["blocks"]), (text[:300], got)
        if "concat" in doc[cell]:
            assert _strict_equal(doc[cell]["concat"], got["concat"]), (text[:300], got)
    assert doc.get("name") is None or _strict_equal(doc["name"], g.name)


def _cases():
    rng = random.Random(20240514)
    out = []
    for k in range(800):
        out.append(("genotype-string", _mutate_text(rng.choice(GENOTYPE_STRINGS), rng)))
    for k in range(1200):
        out.append(("genotype-json", _mutate_json(rng.choice(GENOTYPE_JSON), rng)))
    for k in range(400):
        out.append(("nb201", _mutate_text(NB201_SEED, rng)))
    for k in range(300):
        out.append(("macro", _mutate_text(MACRO_SEED, rng)))
    for k in range(300):
        out.append(("macro-json", _mutate_json(MACRO_JSON, rng)))
    return out


def _call(kind, text):
    if kind == "genotype-string":
        g = Genotype.parse(text)
        assert text.isascii(), f"accepted non-ASCII (coerced digits?): {text!r}"
        return g
    if kind == "genotype-json":
        g = Genotype.from_json(text)
        _check_genotype_json(text, g)
        assert Genotype.parse(text) == g and load_genotype(text) == g
        return g
    if kind == "nb201":
        c = NB201Cell.parse(text)
        assert text.isascii() and NB201Cell.parse(str(c)) == c, text
        return c
    if kind == "macro":
        a = MacroArchitecture.parse(text)
        assert text.isascii() and MacroArchitecture.parse(str(a)) == a, text
        return a
    a = MacroArchitecture.from_json(text)
    doc = json.loads(text)
    want = [
        {
            "filters": l["filters"],
            "kernel_size": l["kernel_size"],
            "stride": l["stride"],
            "skips": l.get("skips", []),
        }
        for l in doc["layers"]
    ]
    assert _strict_equal(want, json.loads(a.to_json())["layers"]), text[:300]
    return a


def test_fuzzed_architectures_raise_only_value_errors(tmp_path, monkeypatch):
    """3,000 seeded mutations: each is accepted unchanged or rejected with a ValueError subclass."""
    monkeypatch.chdir(tmp_path)  # load_genotype treats some strings as paths: none exist here
    cases = _cases()
    assert len(cases) == 3000 and len({t for _, t in cases}) > 2500
    bad, accepted = [], 0
    for n, (kind, text) in enumerate(cases):
        try:
            _call(kind, text)
            accepted += 1
        except (GenotypeError, SpaceError) as e:
            if not str(e).strip():
                bad.append((n, kind, text[:120], "empty message"))
        except Exception as e:  # noqa: BLE001 -- the point of the test
            bad.append((n, kind, text[:120], f"{type(e).__name__}: {str(e)[:120]}"))
    assert not bad, (
        f"{len(bad)} of {len(cases)} inputs escaped as non-ValueError or coerced:\n"
        + "\n".join(map(str, bad[:25]))
    )
    assert 0 < accepted < len(cases) // 2  # the mutations are mostly, not all, malformed


DEEP = "[" * 100_000 + "]" * 100_000


def _doc(**cell_changes):
    d = json.loads(zoo.NASNET_A.to_json())
    for key, value in cell_changes.items():
        if key == "top":
            d.update(value)
        else:
            cell, field = key.split("__")
            d[cell][field] = value
    return json.dumps(d)


def _block_inputs(value):
    d = json.loads(zoo.NASNET_A.to_json())
    d["normal"]["blocks"][0]["inputs"] = value
    return json.dumps(d)


NASNET = str(zoo.NASNET_A)
ARABIC = NASNET.replace(
    "sep_conv_5x5~0+sep_conv_3x3~1", "sep_conv_5x5~\u0660+sep_conv_3x3~\u0661", 1
)

# (id, call, exception type, regex): every case named in the issue, each once.
TABLE = [
    (
        "json-deep-nesting",
        lambda: Genotype.from_json('{"normal": ' + DEEP + "}"),
        GenotypeError,
        r"nested too deeply",
    ),
    (
        "json-deep-nesting-parse",
        lambda: Genotype.parse('{"normal": ' + DEEP + "}"),
        GenotypeError,
        r"nested too deeply",
    ),
    (
        "json-blocks-int",
        lambda: Genotype.from_json(_doc(normal__blocks=5)),
        GenotypeError,
        r"normal cell: 'blocks' must be a list, got int 5",
    ),
    (
        "json-blocks-null",
        lambda: Genotype.from_json(_doc(reduce__blocks=None)),
        GenotypeError,
        r"reduce cell: 'blocks' must be a list, got NoneType",
    ),
    (
        "json-index-1e400",
        lambda: Genotype.from_json(_block_inputs([0, 1]).replace("[0, 1]", "[1e400, 1]", 1)),
        GenotypeError,
        r"normal cell, block 0: .*input must be an integer, got float inf",
    ),
    (
        "json-version-0",
        lambda: Genotype.from_json(_doc(top={"version": 0})),
        GenotypeError,
        r"'version' must be an integer from 1 to 1, got 0",
    ),
    (
        "json-version-true",
        lambda: Genotype.from_json(_doc(top={"version": True})),
        GenotypeError,
        r"'version'",
    ),
    (
        "json-index-float",
        lambda: Genotype.from_json(_block_inputs([0.7, 1])),
        GenotypeError,
        r"normal cell, block 0: .*input must be an integer, got float 0.7",
    ),
    (
        "json-index-bool",
        lambda: Genotype.from_json(_block_inputs([True, False])),
        GenotypeError,
        r"normal cell, block 0: .*input must be an integer, got the boolean True",
    ),
    (
        "json-index-string",
        lambda: Genotype.from_json(_block_inputs(["1", "0"])),
        GenotypeError,
        r"normal cell, block 0: .*input must be an integer, got str '1'",
    ),
    (
        "json-index-arabic",
        lambda: Genotype.from_json(_block_inputs(["\u0661", 0])),
        GenotypeError,
        r"normal cell, block 0: .*input must be an integer, got str",
    ),
    (
        "json-concat-float",
        lambda: Genotype.from_json(_doc(normal__concat=[2.0, 3])),
        GenotypeError,
        r"normal cell, concat must be a list of integers; concat entry must be an integer, got float 2.0",
    ),
    (
        "json-concat-null",
        lambda: Genotype.from_json(_doc(normal__concat=None)),
        GenotypeError,
        r"normal cell: 'concat' must be a list of integers \(omit it for the default\), got NoneType",
    ),
    (
        "json-name-float",
        lambda: Genotype.from_json(_doc(top={"name": 3.5})),
        GenotypeError,
        r"'name' must be a string, got float 3.5",
    ),
    (
        "json-unknown-cell-field",
        lambda: Genotype.from_json(_doc(normal__concta=[2])),
        GenotypeError,
        r"normal cell: unknown field\(s\) \['concta'\]",
    ),
    (
        "json-huge-int-literal",
        lambda: Genotype.from_json(
            _block_inputs([0, 1]).replace("[0, 1]", "[" + "9" * 5000 + ", 1]", 1)
        ),
        GenotypeError,
        r"Malformed genotype JSON",
    ),
    (
        "python-name-float",
        lambda: Genotype(zoo.NASNET_A.normal, zoo.NASNET_A.reduce, name=3.5),
        GenotypeError,
        r"Genotype name must be a string, got float 3.5",
    ),
    (
        "string-index-arabic",
        lambda: Genotype.parse(ARABIC),
        GenotypeError,
        r"normal cell, block 0: input '\u0660' in 'sep_conv_5x5~\u0660' is not an integer \(ASCII digits",
    ),
    (
        "string-index-space-sign",
        lambda: Genotype.parse(NASNET.replace("~1|", "~ -1|", 1)),
        GenotypeError,
        r"input ' -1' .* is not an integer",
    ),
    (
        "string-concat-fullwidth",
        lambda: Genotype.parse(NASNET.replace("/1,2,", "/1,\uff12,", 1)),
        GenotypeError,
        r"normal cell: concat .* must be comma-separated integers",
    ),
    (
        "string-concat-empty-entry",
        lambda: Genotype.parse(NASNET.replace("/1,2,", "/1,,2,", 1)),
        GenotypeError,
        r"must be comma-separated integers",
    ),
    (
        "string-cell-twice",
        lambda: Genotype.parse(NASNET + ";normal=" + str(zoo.NASNET_A.normal.to_string())),
        GenotypeError,
        r"gives the 'normal' cell twice",
    ),
    (
        "nb201-arabic-digit",
        lambda: NB201Cell.parse(NB201_SEED.replace("~1|", "~\u0661|", 1)),
        SpaceError,
        r"node 2 input '\u0661' .* must be a node index 0..1",
    ),
    (
        "nb201-input-out-of-range",
        lambda: NB201Cell.parse(NB201_SEED.replace("avg_pool_3x3~1", "avg_pool_3x3~7")),
        SpaceError,
        r"node 2 input '7' .* must be a node index 0..1",
    ),
    (
        "nb201-repeated-input",
        lambda: NB201Cell.parse(NB201_SEED.replace("avg_pool_3x3~1", "avg_pool_3x3~0")),
        SpaceError,
        r"node 2 lists input 0 twice",
    ),
    (
        "nb201-not-a-string",
        lambda: NB201Cell.parse(5),
        SpaceError,
        r"NB201 string must be a string",
    ),
    (
        "macro-skip-missing-layer",
        lambda: MacroArchitecture.parse("24x3s1;36x5s2<4"),
        SpaceError,
        r"macro layer 1: skip from layer 4 is invalid; skips must name earlier layers 0..0",
    ),
    (
        "macro-skip-on-layer-0",
        lambda: MacroArchitecture([(8, 3, 1, (0,))]),
        SpaceError,
        r"macro layer 0: skip from layer 0 is invalid; .*layer 0 has none",
    ),
    (
        "macro-arabic-digit",
        lambda: MacroArchitecture.parse("24x\u0663s1"),
        SpaceError,
        r"macro layer 0 .* is not FILTERSxKERNELsSTRIDE",
    ),
    (
        "macro-zero-filters",
        lambda: MacroArchitecture.parse("0x3s1"),
        SpaceError,
        r"macro layer 0: filters must be a positive integer, got 0",
    ),
    (
        "macro-json-float",
        lambda: MacroArchitecture.from_json(MACRO_JSON.replace('"filters": 24', '"filters": 24.5')),
        SpaceError,
        r"macro layer 0: filters must be a positive integer, got 24.5",
    ),
    (
        "macro-json-bool",
        lambda: MacroArchitecture.from_json(MACRO_JSON.replace('"stride": 1', '"stride": true', 1)),
        SpaceError,
        r"macro layer 0: stride must be a positive integer, got True",
    ),
    (
        "macro-json-version-0",
        lambda: MacroArchitecture.from_json(MACRO_JSON.replace('"version": 1', '"version": 0')),
        SpaceError,
        r"expected format 'keras-nas/macro', version 1",
    ),
    (
        "macro-json-deep",
        lambda: MacroArchitecture.from_json('{"layers": ' + DEEP + "}"),
        SpaceError,
        r"nested too deeply",
    ),
    (
        "macro-json-no-layers",
        lambda: MacroArchitecture.from_json("{}"),
        SpaceError,
        r"with a 'layers' list",
    ),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_named_malformed_input(row):
    _, call, exc, pattern = row
    with pytest.raises(exc, match=pattern):
        call()


def test_load_genotype_file_errors_are_genotype_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"normal": ')
    with pytest.raises(GenotypeError, match=r"Malformed genotype JSON in .*bad.json"):
        load_genotype(str(bad))
    deep = tmp_path / "deep.json"
    deep.write_text('{"genotype": ' + DEEP + "}")
    with pytest.raises(GenotypeError, match="nested too deeply"):
        load_genotype(str(deep))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GenotypeError, match=r"Cannot read the genotype file"):
        load_genotype(str(binary))
    with pytest.raises(GenotypeError, match="needs a string or path, got int"):
        load_genotype(5)


def test_valid_inputs_still_round_trip():
    for g in zoo.GENOTYPES.values():
        assert Genotype.parse(str(g)) == g and Genotype.from_json(g.to_json()) == g
    assert str(NB201Cell.parse(NB201_SEED)) == NB201_SEED
    arch = MacroArchitecture.parse(MACRO_SEED)
    assert str(arch) == MACRO_SEED and MacroArchitecture.from_json(arch.to_json()) == arch
