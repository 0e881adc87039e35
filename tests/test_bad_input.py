"""Bad input for every entry point: a clear error naming the problem, and nothing saved earlier changed.

Here: add a row to ``ROWS`` (pure calls) or ``PROJECT_ROWS`` (damage to a saved project, then
reopening it). Bad datasets are test_bad_data.py's ``DATA_ROWS``, bad ``keras-nas`` arguments
test_bad_command_line.py's ``CLI_ROWS``. Every row runs with something saved beside it (here the
``saved`` tuner projects; there the ``saved_run`` search directory of tests/_bad_input.py) whose
files are hashed before and after.
"""

import json
import os
import shutil

import pytest
from _bad_input import digest

kt = pytest.importorskip("keras_tuner")

from keras_nas import zoo  # noqa: E402
from keras_nas.space import (  # noqa: E402
    Decision,
    Genotype,
    GenotypeError,
    MacroSpace,
    NASNetCellSpace,
    NB201Cell,
    NB201Space,
    SpaceError,
)
from keras_nas.tuning.oracle import AgingEvolutionOracle, ControllerOracle, StateFileError  # noqa: E402
from keras_nas.tuning.tuners import AgingEvolution, ReinforceSearch  # noqa: E402

OBJ = kt.Objective("score", "max")


def _build(**kw):
    from keras_nas.blocks.network import build_network

    args = dict(input_shape=(32, 32, 3), num_classes=10, num_cells=3, filters=8)
    args.update(kw)
    return build_network(args.pop("genotype", zoo.NASNET_A), **args)


ROWS = [
    # genotypes: strings and JSON
    (
        "genotype-string",
        lambda: Genotype.parse("hello"),
        GenotypeError,
        r"'hello' lacks 'normal=' or 'reduce='",
    ),
    (
        "genotype-json-syntax",
        lambda: Genotype.from_json("{not json"),
        GenotypeError,
        r"Malformed genotype JSON",
    ),
    (
        "genotype-json-missing-cell",
        lambda: Genotype.from_json('{"normal": []}'),
        GenotypeError,
        r"lacks the 'reduce'",
    ),
    (
        "nb201-string",
        lambda: NB201Cell.parse("|x~0|"),
        SpaceError,
        r"must have 3 '\+'-separated nodes",
    ),
    # search-space definitions
    (
        "nasnet-blocks",
        lambda: NASNetCellSpace(num_blocks=0),
        SpaceError,
        r"num_blocks must be a positive integer",
    ),
    (
        "nasnet-ops",
        lambda: NASNetCellSpace(ops="nope"),
        ValueError,
        r"Unknown op vocabulary 'nope'",
    ),
    ("nb201-ops", lambda: NB201Space(ops=[]), SpaceError, r"has no options"),
    (
        "macro-layers",
        lambda: MacroSpace(num_layers=0),
        SpaceError,
        r"num_layers must be a positive integer",
    ),
    (
        "macro-filters",
        lambda: MacroSpace(filters=(0,)),
        SpaceError,
        r"filters must be positive integers",
    ),
    ("decision-options", lambda: Decision("a", []), SpaceError, r"Decision 'a' has no options"),
    # network builder
    (
        "build-image-too-small",
        lambda: _build(input_shape=(2, 2, 3), stem="imagenet"),
        ValueError,
        r"input height 2 is too small",
    ),
    ("build-N", lambda: _build(num_cells=0), ValueError, r"num_cells must be a positive integer"),
    ("build-F", lambda: _build(filters=-1), ValueError, r"filters must be a positive integer"),
    (
        "build-classes",
        lambda: _build(num_classes=0),
        ValueError,
        r"num_classes must be a positive integer",
    ),
    ("build-genotype", lambda: _build(genotype="nonsense"), GenotypeError, r"'nonsense' lacks"),
    (
        "build-nb201-odd-size",
        lambda: __import__("keras_nas").build_nb201_network(
            "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", input_shape=(10, 10, 3)
        ),
        ValueError,
        r"input height 10 must be divisible by 4",
    ),
    # oracles and tuners
    (
        "population-size",
        lambda: AgingEvolutionOracle(objective=OBJ, population_size=1),
        ValueError,
        r"population_size must be an integer >= 2",
    ),
    (
        "sample-size",
        lambda: AgingEvolutionOracle(objective=OBJ, population_size=4, sample_size=9),
        ValueError,
        r"sample_size \(9\) must not exceed population_size \(4\)",
    ),
    (
        "identity-prob",
        lambda: AgingEvolutionOracle(objective=OBJ, identity_prob=2.0),
        ValueError,
        r"identity_prob must be in \[0, 1\)",
    ),
    (
        "objective-type",
        lambda: AgingEvolutionOracle(objective=42),
        TypeError,
        r"`objective` not understood",
    ),
    (
        "objective-direction",
        lambda: AgingEvolutionOracle(objective="score"),
        ValueError,
        r"Could not infer optimization direction",
    ),
    (
        "max-trials",
        lambda: AgingEvolutionOracle(objective=OBJ, max_trials=0),
        ValueError,
        r"max_trials must be a positive int",
    ),
    (
        "max-consecutive-failed",
        lambda: AgingEvolutionOracle(objective=OBJ, max_consecutive_failed_trials=0),
        ValueError,
        r"max_consecutive_failed_trials must be a positive int",
    ),
    (
        "max-retries",
        lambda: AgingEvolutionOracle(objective=OBJ, max_retries_per_trial=-1),
        ValueError,
        r"max_retries_per_trial must be an int >= 0",
    ),
    (
        "cost-target",
        lambda: AgingEvolutionOracle(objective=OBJ, cost_metric="params", cost_target=-1),
        ValueError,
        r"cost_target must be positive",
    ),
    (
        "cost-both",
        lambda: AgingEvolutionOracle(objective=OBJ, cost_metric="params", cost_fn=len),
        ValueError,
        r"either cost_metric .* or cost_fn",
    ),
    (
        "heartbeat-timeout",
        lambda: AgingEvolutionOracle(objective=OBJ, heartbeat_timeout_s=0),
        ValueError,
        r"heartbeat_timeout_s must be a positive number",
    ),
    (
        "controller-type",
        lambda: ControllerOracle(controller=object(), objective=OBJ),
        TypeError,
        r"controller must be a keras_nas Controller, got object",
    ),
    (
        "reinforce-units",
        lambda: ReinforceSearch(objective=OBJ, units=-3, directory="/nonexistent-never-made"),
        ValueError,
        r"units must be a positive integer, got -3",
    ),
    (
        "reinforce-unknown-arg",
        lambda: ReinforceSearch(objective=OBJ, not_an_arg=1),
        TypeError,
        r"unexpected keyword argument 'not_an_arg'",
    ),
    (
        "tuner-unknown-arg",
        lambda: AgingEvolution(objective=OBJ, bogus=1),
        ValueError,
        r"Unrecognized arguments \['bogus'\]",
    ),
    (
        "tuner-heartbeat-interval",
        lambda: AgingEvolution(objective=OBJ, heartbeat_interval_s=-1),
        ValueError,
        r"heartbeat_interval_s must be positive",
    ),
]


# -- a saved project, and damage done to a copy of it ------------------------------------------
def _space():
    hp = kt.HyperParameters()
    NASNetCellSpace(num_blocks=2).register(hp)
    return hp


class _Quick(AgingEvolution):
    def run_trial(self, trial, *a, **k):
        v = trial.hyperparameters.values
        return {"score": float(sum(o == "sep_conv_3x3" for o in v.values()))}


class _QuickRL(ReinforceSearch):
    def run_trial(self, trial, *a, **k):
        v = trial.hyperparameters.values
        return {"score": float(sum(o == "sep_conv_3x3" for o in v.values()))}


def _open(path, cls=_Quick, **kw):
    extra = {"population_size": 2, "sample_size": 2} if cls is _Quick else {"units": 8}
    return cls(
        objective=OBJ,
        max_trials=4,
        hyperparameters=_space(),
        seed=1,
        directory=str(path.parent),
        project_name=path.name,
        overwrite=False,
        **extra,
        **kw,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    for cls, name in ((_Quick, "evo"), (_QuickRL, "rl")):
        t = _open(root / name, cls)
        t.search(verbose=0)
    return root


def _truncate(rel, keep=0.5):
    def damage(proj):
        p = proj / rel
        data = p.read_bytes()
        p.write_bytes(data[: int(len(data) * keep)])
        return p

    return damage


def _garbage(rel, text=b"\x00\x01garbage"):
    def damage(proj):
        p = proj / rel
        p.write_bytes(text)
        return p

    return damage


def _delete(rel):
    def damage(proj):
        p = proj / rel
        p.unlink()
        return p

    return damage


def _edit_json(rel, fn):
    def damage(proj):
        p = proj / rel
        p.write_text(json.dumps(fn(json.loads(p.read_text()))))
        return p

    return damage


PROJECT_ROWS = [
    # (id, project, damage, exception, regex; "{file}" is replaced by the damaged file's path)
    (
        "oracle-json-truncated",
        "evo",
        _truncate("oracle.json"),
        StateFileError,
        r"{file} is corrupted or truncated",
    ),
    ("oracle-json-empty", "evo", _truncate("oracle.json", 0), StateFileError, r"{file} is empty"),
    ("oracle-json-garbage", "evo", _garbage("oracle.json"), StateFileError, r"{file} is corrupted"),
    (
        "oracle-json-missing",
        "evo",
        _delete("oracle.json"),
        StateFileError,
        r"Cannot read the oracle state file {file}",
    ),
    (
        "oracle-json-not-object",
        "evo",
        _garbage("oracle.json", b"[1, 2]"),
        StateFileError,
        r"{file} does not hold a JSON object",
    ),
    (
        "oracle-json-key-missing",
        "evo",
        _edit_json("oracle.json", lambda s: {k: v for k, v in s.items() if k != "seed"}),
        StateFileError,
        r"{file} lacks or garbles keras-tuner's entry 'seed'",
    ),
    (
        "trial-json-truncated",
        "evo",
        _truncate("trial_1/trial.json"),
        StateFileError,
        r"trial file {file} is corrupted or truncated",
    ),
    (
        "trial-json-not-a-trial",
        "evo",
        _garbage("trial_1/trial.json", b'{"a": 1}'),
        StateFileError,
        r"{file} is not a keras-tuner trial file",
    ),
    (
        "trial-json-missing",
        "evo",
        _delete("trial_2/trial.json"),
        StateFileError,
        r"records 4 trials but the trial files of trial number\(s\) \[2\]",
    ),
    (
        "tuner-json-garbage",
        "evo",
        _garbage("tuner0.json"),
        StateFileError,
        r"tuner state file {file} is corrupted",
    ),
    (
        "npz-truncated",
        "rl",
        _truncate("oracle_arrays.npz"),
        StateFileError,
        r"Controller arrays do not match .*{file} \(unreadable",
    ),
    # issue #10.8: damaged fields are named, never silently accepted or raised as raw Python errors
    (
        "controller-state-empty",
        "evo",
        _edit_json(
            "oracle.json", lambda s: {**s, "keras_nas": {**s["keras_nas"], "controller": {}}}
        ),
        StateFileError,
        r"{file} field 'keras_nas.controller' must be the controller's state",
    ),
    (
        "controller-state-wrong-type",
        "evo",
        _edit_json(
            "oracle.json", lambda s: {**s, "keras_nas": {**s["keras_nas"], "controller": 5}}
        ),
        StateFileError,
        r"{file} field 'keras_nas.controller'",
    ),
    (
        "pending-wrong-type",
        "evo",
        _edit_json("oracle.json", lambda s: {**s, "keras_nas": {**s["keras_nas"], "pending": 3}}),
        StateFileError,
        r"{file} field 'keras_nas.pending'",
    ),
    (
        "step-wrong-type",
        "evo",
        _edit_json("oracle.json", lambda s: {**s, "keras_nas": {**s["keras_nas"], "step": "x"}}),
        StateFileError,
        r"{file} field 'keras_nas.step' must be an int",
    ),
    (
        "retry-queue-unknown",
        "evo",
        _edit_json("oracle.json", lambda s: {**s, "retry_queue": ["77"]}),
        StateFileError,
        r"{file} field 'retry_queue' must be ids of existing trials",
    ),
    (
        "finished-trial-running",
        "evo",
        _edit_json("trial_1/trial.json", lambda s: {**s, "status": "RUNNING"}),
        StateFileError,
        r"{file}: the trial ended .* but its 'status' is RUNNING",
    ),
    (
        "trial-status-bogus",
        "evo",
        _edit_json("trial_1/trial.json", lambda s: {**s, "status": "BOGUS"}),
        StateFileError,
        r"{file} field 'status' must be one of",
    ),
    (
        "trial-extra-wrong-type",
        "evo",
        _edit_json("trial_1/trial.json", lambda s: {**s, "keras_nas": [1]}),
        StateFileError,
        r"{file} field 'keras_nas' must be an object",
    ),
    (
        "npz-missing",
        "rl",
        lambda proj: (
            [
                (proj / f).unlink(missing_ok=True)
                for f in ("oracle_arrays.npz", "oracle_arrays.prev.npz")
            ]
            and proj / "oracle_arrays.npz"
        ),
        StateFileError,
        r"{file} is missing",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_row(row, saved, tmp_path, monkeypatch):
    _, call, exc, pattern = row
    monkeypatch.chdir(tmp_path)  # anything written by mistake lands here, not in the repo
    before = digest(saved)
    with pytest.raises(exc, match=pattern):
        call()
    assert digest(saved) == before, "a saved project changed"
    assert not os.listdir(tmp_path), f"files were written: {os.listdir(tmp_path)}"


@pytest.mark.parametrize("row", PROJECT_ROWS, ids=[r[0] for r in PROJECT_ROWS])
def test_corrupted_project_row(row, saved, tmp_path):
    _, name, damage, exc, pattern = row
    proj = tmp_path / name
    shutil.copytree(saved / name, proj)
    damaged = damage(proj)
    before = digest(proj)
    with pytest.raises(exc, match=pattern.replace("{file}", _re_escape(str(damaged)))) as info:
        _open(proj, _Quick if name == "evo" else _QuickRL)
    msg = str(info.value)
    assert "overwrite=True" in msg or "delete" in msg  # says how to recover
    assert digest(proj) == before  # no silent fresh start, nothing overwritten


def _re_escape(s):
    import re

    return re.escape(s)


def test_missing_tuner_json_still_resumes(saved, tmp_path):
    """keras-tuner would silently start afresh (and overwrite trial_0...) without <tuner_id>.json."""
    proj = tmp_path / "evo"
    shutil.copytree(saved / "evo", proj)
    (proj / "tuner0.json").unlink()
    t = _open(proj)
    assert len(t.oracle.trials) == 4 and t.oracle.remaining_trials() == 0
    assert all(tr.status == "COMPLETED" for tr in t.oracle.trials.values())
