"""Bad input for every entry point: a clear error naming the problem, and nothing saved earlier changed.

Add a row to ``ROWS`` (pure calls), ``PROJECT_ROWS`` (damage to a saved project, then
reopening it), ``DATA_ROWS`` (a bad dataset, through ``load_dataset`` and the CLI's
``search``/``train``) or ``CLI_ROWS`` (``keras-nas`` arguments, run in-process through
``keras_nas.cli.main``). Every row runs with something saved beside it (the ``saved`` tuner
projects, the ``saved_run`` search directory) whose files are hashed before and after.
"""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

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
    ("genotype-string", lambda: Genotype.parse("hello"), GenotypeError, r"'hello' lacks 'normal=' or 'reduce='"),
    ("genotype-json-syntax", lambda: Genotype.from_json("{not json"), GenotypeError, r"Malformed genotype JSON"),
    ("genotype-json-missing-cell", lambda: Genotype.from_json('{"normal": []}'), GenotypeError, r"lacks the 'reduce'"),
    ("nb201-string", lambda: NB201Cell.parse("|x~0|"), SpaceError, r"must have 3 '\+'-separated nodes"),
    # search-space definitions
    ("nasnet-blocks", lambda: NASNetCellSpace(num_blocks=0), SpaceError, r"num_blocks must be a positive integer"),
    ("nasnet-ops", lambda: NASNetCellSpace(ops="nope"), ValueError, r"Unknown op vocabulary 'nope'"),
    ("nb201-ops", lambda: NB201Space(ops=[]), SpaceError, r"has no options"),
    ("macro-layers", lambda: MacroSpace(num_layers=0), SpaceError, r"num_layers must be a positive integer"),
    ("macro-filters", lambda: MacroSpace(filters=(0,)), SpaceError, r"filters must be positive integers"),
    ("decision-options", lambda: Decision("a", []), SpaceError, r"Decision 'a' has no options"),
    # network builder
    ("build-image-too-small", lambda: _build(input_shape=(2, 2, 3), stem="imagenet"), ValueError,
     r"input height 2 is too small"),
    ("build-N", lambda: _build(num_cells=0), ValueError, r"num_cells must be a positive integer"),
    ("build-F", lambda: _build(filters=-1), ValueError, r"filters must be a positive integer"),
    ("build-classes", lambda: _build(num_classes=0), ValueError, r"num_classes must be a positive integer"),
    ("build-genotype", lambda: _build(genotype="nonsense"), GenotypeError, r"'nonsense' lacks"),
    ("build-nb201-odd-size", lambda: __import__("keras_nas").build_nb201_network(
        "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", input_shape=(10, 10, 3)), ValueError,
     r"input height 10 must be divisible by 4"),
    # oracles and tuners
    ("population-size", lambda: AgingEvolutionOracle(objective=OBJ, population_size=1), ValueError,
     r"population_size must be an integer >= 2"),
    ("sample-size", lambda: AgingEvolutionOracle(objective=OBJ, population_size=4, sample_size=9), ValueError,
     r"sample_size \(9\) must not exceed population_size \(4\)"),
    ("identity-prob", lambda: AgingEvolutionOracle(objective=OBJ, identity_prob=2.0), ValueError,
     r"identity_prob must be in \[0, 1\)"),
    ("objective-type", lambda: AgingEvolutionOracle(objective=42), TypeError, r"`objective` not understood"),
    ("objective-direction", lambda: AgingEvolutionOracle(objective="score"), ValueError,
     r"Could not infer optimization direction"),
    ("max-trials", lambda: AgingEvolutionOracle(objective=OBJ, max_trials=0), ValueError,
     r"max_trials must be a positive int"),
    ("max-consecutive-failed", lambda: AgingEvolutionOracle(objective=OBJ, max_consecutive_failed_trials=0),
     ValueError, r"max_consecutive_failed_trials must be a positive int"),
    ("max-retries", lambda: AgingEvolutionOracle(objective=OBJ, max_retries_per_trial=-1), ValueError,
     r"max_retries_per_trial must be an int >= 0"),
    ("cost-target", lambda: AgingEvolutionOracle(objective=OBJ, cost_metric="params", cost_target=-1), ValueError,
     r"cost_target must be positive"),
    ("cost-both", lambda: AgingEvolutionOracle(objective=OBJ, cost_metric="params", cost_fn=len), ValueError,
     r"either cost_metric .* or cost_fn"),
    ("heartbeat-timeout", lambda: AgingEvolutionOracle(objective=OBJ, heartbeat_timeout_s=0), ValueError,
     r"heartbeat_timeout_s must be a positive number"),
    ("controller-type", lambda: ControllerOracle(controller=object(), objective=OBJ), TypeError,
     r"controller must be a keras_nas Controller, got object"),
    ("reinforce-units", lambda: ReinforceSearch(objective=OBJ, units=-3, directory="/nonexistent-never-made"),
     ValueError, r"units must be a positive integer, got -3"),
    ("reinforce-unknown-arg", lambda: ReinforceSearch(objective=OBJ, not_an_arg=1), TypeError,
     r"unexpected keyword argument 'not_an_arg'"),
    ("tuner-unknown-arg", lambda: AgingEvolution(objective=OBJ, bogus=1), ValueError,
     r"Unrecognized arguments \['bogus'\]"),
    ("tuner-heartbeat-interval", lambda: AgingEvolution(objective=OBJ, heartbeat_interval_s=-1), ValueError,
     r"heartbeat_interval_s must be positive"),
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
    return cls(objective=OBJ, max_trials=4, hyperparameters=_space(), seed=1, directory=str(path.parent),
               project_name=path.name, overwrite=False, **extra, **kw)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    for cls, name in ((_Quick, "evo"), (_QuickRL, "rl")):
        t = _open(root / name, cls)
        t.search(verbose=0)
    return root


def _digest(path):
    h = {}
    for r, _, names in os.walk(path):
        for n in names:
            p = os.path.join(r, n)
            with open(p, "rb") as f:
                h[os.path.relpath(p, path)] = hashlib.sha256(f.read()).hexdigest()
    return h


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
    ("oracle-json-truncated", "evo", _truncate("oracle.json"), StateFileError, r"{file} is corrupted or truncated"),
    ("oracle-json-empty", "evo", _truncate("oracle.json", 0), StateFileError, r"{file} is empty"),
    ("oracle-json-garbage", "evo", _garbage("oracle.json"), StateFileError, r"{file} is corrupted"),
    ("oracle-json-missing", "evo", _delete("oracle.json"), StateFileError, r"Cannot read the oracle state file {file}"),
    ("oracle-json-not-object", "evo", _garbage("oracle.json", b"[1, 2]"), StateFileError,
     r"{file} does not hold a JSON object"),
    ("oracle-json-key-missing", "evo", _edit_json("oracle.json", lambda s: {k: v for k, v in s.items() if k != "seed"}),
     StateFileError, r"{file} lacks or garbles keras-tuner's entry 'seed'"),
    ("trial-json-truncated", "evo", _truncate("trial_1/trial.json"), StateFileError,
     r"trial file {file} is corrupted or truncated"),
    ("trial-json-not-a-trial", "evo", _garbage("trial_1/trial.json", b'{"a": 1}'), StateFileError,
     r"{file} is not a keras-tuner trial file"),
    ("trial-json-missing", "evo", _delete("trial_2/trial.json"), StateFileError,
     r"records 4 trials but the trial files of trial number\(s\) \[2\]"),
    ("tuner-json-garbage", "evo", _garbage("tuner0.json"), StateFileError, r"tuner state file {file} is corrupted"),
    ("npz-truncated", "rl", _truncate("oracle_arrays.npz"), StateFileError,
     r"Controller arrays do not match .*{file} \(unreadable"),
    # issue #10.8: damaged fields are named, never silently accepted or raised as raw Python errors
    ("controller-state-empty", "evo", _edit_json("oracle.json", lambda s: {**s, "keras_nas": {**s["keras_nas"],
     "controller": {}}}), StateFileError, r"{file} field 'keras_nas.controller' must be the controller's state"),
    ("controller-state-wrong-type", "evo", _edit_json("oracle.json", lambda s: {**s, "keras_nas": {
        **s["keras_nas"], "controller": 5}}), StateFileError, r"{file} field 'keras_nas.controller'"),
    ("pending-wrong-type", "evo", _edit_json("oracle.json", lambda s: {**s, "keras_nas": {**s["keras_nas"],
     "pending": 3}}), StateFileError, r"{file} field 'keras_nas.pending'"),
    ("step-wrong-type", "evo", _edit_json("oracle.json", lambda s: {**s, "keras_nas": {**s["keras_nas"],
     "step": "x"}}), StateFileError, r"{file} field 'keras_nas.step' must be an int"),
    ("retry-queue-unknown", "evo", _edit_json("oracle.json", lambda s: {**s, "retry_queue": ["77"]}),
     StateFileError, r"{file} field 'retry_queue' must be ids of existing trials"),
    ("finished-trial-running", "evo", _edit_json("trial_1/trial.json", lambda s: {**s, "status": "RUNNING"}),
     StateFileError, r"{file}: the trial ended .* but its 'status' is RUNNING"),
    ("trial-status-bogus", "evo", _edit_json("trial_1/trial.json", lambda s: {**s, "status": "BOGUS"}),
     StateFileError, r"{file} field 'status' must be one of"),
    ("trial-extra-wrong-type", "evo", _edit_json("trial_1/trial.json", lambda s: {**s, "keras_nas": [1]}),
     StateFileError, r"{file} field 'keras_nas' must be an object"),
    ("npz-missing", "rl", lambda proj: [(proj / f).unlink(missing_ok=True) for f in ("oracle_arrays.npz", "oracle_arrays.prev.npz")]
     and proj / "oracle_arrays.npz", StateFileError, r"{file} is missing"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_row(row, saved, tmp_path, monkeypatch):
    _, call, exc, pattern = row
    monkeypatch.chdir(tmp_path)  # anything written by mistake lands here, not in the repo
    before = _digest(saved)
    with pytest.raises(exc, match=pattern):
        call()
    assert _digest(saved) == before, "a saved project changed"
    assert not os.listdir(tmp_path), f"files were written: {os.listdir(tmp_path)}"


@pytest.mark.parametrize("row", PROJECT_ROWS, ids=[r[0] for r in PROJECT_ROWS])
def test_corrupted_project_row(row, saved, tmp_path):
    _, name, damage, exc, pattern = row
    proj = tmp_path / name
    shutil.copytree(saved / name, proj)
    damaged = damage(proj)
    before = _digest(proj)
    with pytest.raises(exc, match=pattern.replace("{file}", _re_escape(str(damaged)))) as info:
        _open(proj, _Quick if name == "evo" else _QuickRL)
    msg = str(info.value)
    assert "overwrite=True" in msg or "delete" in msg  # says how to recover
    assert _digest(proj) == before  # no silent fresh start, nothing overwritten


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


# -- datasets ------------------------------------------------------------------------------------
# Each row: (id, what --data gets (a function of the folder holding the bad files), regex). Every row
# is checked three ways: load_dataset, `keras-nas search --data=...` into a new directory (which must
# not be created) and `keras-nas train --run_dir=<saved run> --data=...` (the run must not change).
def _npz(**arrays):
    def make(d):
        path = d / (_key(arrays) + ".npz")
        if not path.exists():
            np.savez(path, **arrays)
        return str(path)
    return make


def _key(arrays):
    h = hashlib.sha256()
    for k in sorted(arrays):
        v = np.asarray(arrays[k])
        h.update(f"{k}{v.dtype}{v.shape}".encode() + v.tobytes())
    return h.hexdigest()[:16]


def _file(name, content):
    def make(d):
        (d / name).write_bytes(content)
        return str(d / name)
    return make


X = np.random.default_rng(0).random((40, 8, 8, 1)).astype("float32")
Y = np.arange(40) % 4
XNAN = X.copy()
XNAN[3, 2, 2, 0] = np.nan
XINF = X.copy()
XINF[5, 0, 0, 0] = np.inf

DATA_ROWS = [
    ("x-2d", _npz(x_train=X.reshape(40, 64), y_train=Y), r"x_train/y_train: images must have shape \(n, height, width\).*got \(40, 64\)"),
    ("x-5d", _npz(x_train=X[..., None], y_train=Y), r"images must have shape .*got \(40, 8, 8, 1, 1\)"),
    ("x-channels-first", _npz(x_train=X.reshape(40, 1, 8, 8).repeat(3, 1), y_train=Y), r"images look channels-first"),
    ("x-strings", _npz(x_train=np.array(["a"] * 40), y_train=Y), r"images must be numeric arrays, got dtype <U1"),
    ("x-nan", _npz(x_train=XNAN, y_train=Y), r"x_train/y_train: images contain NaN or infinite values"),
    ("x-inf", _npz(x_train=XINF, y_train=Y), r"images contain NaN or infinite values"),
    ("x-empty", _npz(x_train=X[:0], y_train=Y[:0]), r"x_train/y_train: the split is empty"),
    ("y-float", _npz(x_train=X, y_train=Y + 0.5), r"labels must be integer class ids, got dtype float64"),
    ("y-nan", _npz(x_train=X, y_train=np.where(Y == 2, np.nan, Y)), r"labels must be integer class ids"),
    ("y-bool", _npz(x_train=X, y_train=Y % 2 == 0), r"labels must be integer class ids, got dtype bool"),
    ("y-negative", _npz(x_train=X, y_train=Y - 1), r"labels must be >= 0, found -1"),
    ("y-one-hot", _npz(x_train=X, y_train=np.eye(4)[Y]), r"labels look one-hot \(40, 4\)"),
    ("y-2d", _npz(x_train=X, y_train=Y.reshape(20, 2, 1)), r"labels must be a 1-D array of class ids"),
    ("y-length", _npz(x_train=X, y_train=Y[:30]), r"40 images but 30 labels"),
    ("y-single-class", _npz(x_train=X, y_train=Y * 0), r"y_train has a single class"),
    ("y-test-out-of-range", _npz(x_train=X, y_train=Y, x_test=X[:4], y_test=np.array([0, 1, 2, 9])),
     r"x_test/y_test: label 9 is out of range for 4 classes"),
    ("y-val-out-of-range", _npz(x_train=X, y_train=Y, x_val=X[:2], y_val=np.array([0, 4])),
     r"x_val/y_val: label 4 is out of range for 4 classes"),
    ("val-shape", _npz(x_train=X, y_train=Y, x_val=X[:4, :6, :6], y_val=Y[:4]),
     r"x_val images have shape \(6, 6, 1\) but x_train has \(8, 8, 1\)"),
    ("val-without-labels", _npz(x_train=X, y_train=Y, x_val=X[:4]), r"has x_val but not y_val"),
    ("keys-missing", _npz(images=X, labels=Y), r"missing key\(s\) \['x_train', 'y_train'\]; found \['images', 'labels'\]"),
    ("too-few-to-split", _npz(x_train=X[:4], y_train=Y[:4]), r"too few images to split off a non-empty (val|test) split"),
    ("not-an-npz", _file("fake.npz", b"hello, not a zip"), r"Cannot read '.*fake.npz': not an .npz file \(not a zip archive\)"),
    ("text-file", _file("data.txt", b"1,2,3\n"), r"Cannot read '.*data.txt': not an .npz file"),
    ("missing-file", lambda d: str(d / "missing.npz"), r"Dataset file '.*missing.npz' does not exist"),
    ("unknown-name", lambda d: "imagenet_but_not_really", r"Unknown dataset 'imagenet_but_not_really'"),
    ("directory", lambda d: str(d), r"is a directory; pass an .npz file"),
    ("empty-name", lambda d: "", r"Dataset name must be a non-empty string"),
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return tmp_path_factory.mktemp("bad_data")


@pytest.mark.parametrize("row", DATA_ROWS, ids=[r[0] for r in DATA_ROWS])
def test_bad_dataset_row(row, bad_files, saved_run, tmp_path, monkeypatch, capsys):
    from keras_nas import cli
    from keras_nas.data import DataError, load_dataset

    _, make, pattern = row
    monkeypatch.chdir(tmp_path)
    spec = make(bad_files)
    before = _digest(saved_run)
    with pytest.raises(DataError, match=pattern):
        load_dataset(spec)
    out = tmp_path / "new_run"
    assert cli.main(["search", f"--data={spec}", f"--output_dir={out}"]) == 1
    _clear_error(capsys.readouterr().err, "keras-nas search: error: ", pattern)
    assert not out.exists(), "search created its output directory before rejecting the data"
    if spec:  # an empty --data means "the run's dataset" for train
        assert cli.main(["train", f"--run_dir={saved_run}", f"--data={spec}"]) == 1
        _clear_error(capsys.readouterr().err, "keras-nas train: error: ", pattern)
    assert _digest(saved_run) == before, "the saved run changed"
    assert not os.listdir(tmp_path), f"files were written: {os.listdir(tmp_path)}"


def _clear_error(err, prefix, pattern):
    import re

    assert "Traceback" not in err, err
    assert err.startswith(prefix), err
    assert re.search(pattern, err), (pattern, err)


# -- the command line ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A tiny real search run directory (the thing no bad command may change), made once per test
    session: pytest-xdist workers share it through a lock instead of each running a search."""
    import fcntl

    from keras_nas import cli

    root = tmp_path_factory.getbasetemp().parent  # shared by the xdist workers of one session
    run = root / "bad_input_saved_run"
    with open(root / "bad_input_saved_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run / "run.json").exists():
            shutil.rmtree(run, ignore_errors=True)
            assert cli.main(["search", f"--output_dir={run}", *RUN_FLAGS]) == 0
    return run


RUN_FLAGS = ["--subset=60", "--image_size=8", "--max_trials=1", "--epochs=1", "--num_cells=1", "--filters=4",
             "--num_blocks=1", "--batch_size=32", "--population_size=2", "--run_eagerly", "--seed=3",
             "--notensorboard"]
NB201 = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"

# (id, argv, exit code, regex the error must match). In argv, {run} is the saved run directory,
# {tmp} an empty directory, {file} a regular file in it, {tiny} an .npz of 2x2 images.
CLI_ROWS = [
    # flags the parser rejects (exit 2), some aimed at the saved run
    ("search-negative-epochs", ["search", "--output_dir={run}", "--epochs=-1"], 2, r"flag --epochs=-1: -1 is not a positive integer"),
    ("search-zero-trials", ["search", "--output_dir={run}", "--max_trials=0"], 2, r"flag --max_trials=0"),
    ("search-trials-not-int", ["search", "--max_trials=many"], 2, r"flag --max_trials=many: invalid literal"),
    ("search-unknown-space", ["search", "--output_dir={run}", "--space=resnet"], 2, r"flag --space=resnet: value should be one of <nasnet\|nb201\|macro>"),
    ("search-unknown-controller", ["search", "--output_dir={run}", "--controller=bayes"], 2, r"flag --controller=bayes: value should be one of"),
    ("search-unknown-flag", ["search", "--output_dir={run}", "--bogus=1"], 2, r"Unknown command line flag 'bogus'"),
    ("search-bad-boolean", ["search", "--output_dir={run}", "--overwrite=maybe"], 2, r"flag --overwrite=maybe: .*Non-boolean"),
    ("search-missing-value", ["search", "--epochs"], 2, r"Missing value for flag --epochs"),
    ("search-negative-subset", ["search", "--subset=-5"], 2, r"flag --subset=-5: -5 is not a non-negative integer"),
    ("search-val-fraction", ["search", "--val_fraction=2"], 2, r"flag --val_fraction=2: 2.0 is not a number in the range"),
    ("search-image-size", ["search", "--image_size=2"], 2, r"flag --image_size=2"),
    ("search-strategy", ["search", "--strategy=cpu:x"], 2, r"flag --strategy=cpu:x: must be auto, default, mirrored, tpu or cpu:N"),
    ("search-missing-flagfile", ["search", "--flagfile={tmp}/missing.cfg"], 2, r"Unable to open flagfile.*missing.cfg"),
    ("search-positional", ["search", "{run}"], 2, r"takes no positional arguments"),
    ("train-negative-epochs", ["train", "--run_dir={run}", "--epochs=-3"], 2, r"flag --epochs=-3: -3 is not a positive integer"),
    ("train-drop-path", ["train", "--run_dir={run}", "--drop_path=1.5"], 2, r"flag --drop_path=1.5"),
    ("train-image-size", ["train", "--run_dir={run}", "--image_size=2"], 2, r"flag --image_size=2"),
    ("export-foreign-flag", ["export", "--run_dir={run}", "--num_cells=2"], 2, r"Unknown command line flag 'num_cells'"),
    ("export-bad-boolean", ["export", "--run_dir={run}", "--saved_model=perhaps"], 2, r"flag --saved_model=perhaps"),
    ("show-no-argument", ["show"], 2, r"needs exactly one GENOTYPE_OR_RUN argument, got 0"),
    ("show-two-arguments", ["show", "nasnet_a", "{run}"], 2, r"needs exactly one GENOTYPE_OR_RUN argument, got 2"),
    ("unknown-subcommand", ["frobnicate", "--output_dir={run}"], 2, r"unknown subcommand 'frobnicate'"),
    # out-of-range values the parser used to accept (they failed late, or never), rejected naming the range
    ("search-num-blocks-huge", ["search", "--output_dir={run}", "--num_blocks=1000000000"], 2,
     r"flag --num_blocks=1000000000: must be an integer in \[1, 32\]"),
    ("search-max-trials-huge", ["search", "--output_dir={run}", "--max_trials=99999999999999999999"], 2,
     r"flag --max_trials=99999999999999999999: must be an integer in \[1, 1000000\]"),
    ("search-learning-rate-inf", ["search", "--output_dir={run}", "--learning_rate=inf"], 2,
     r"flag --learning_rate=inf: must be a finite number"),
    ("search-learning-rate-zero", ["search", "--output_dir={tmp}/o", "--learning_rate=0"], 2,
     r"flag --learning_rate=0.0: must be a number in \(0, 10\]"),
    ("search-fraction-nan", ["search", "--output_dir={tmp}/o", "--val_fraction=nan"], 2,
     r"flag --val_fraction=nan: must be a finite number"),
    ("search-fractions-sum", ["search", "--output_dir={run}", "--val_fraction=0.8", "--test_fraction=0.8"], 2,
     r"val_fraction=0.8, test_fraction=0.8: --val_fraction \+ --test_fraction must be below 1"),
    ("search-image-size-huge", ["search", "--output_dir={tmp}/o", "--image_size=2147483648"], 2,
     r"flag --image_size=2147483648: must be an integer in \[4, 4096\]"),
    ("search-seed-negative", ["search", "--output_dir={tmp}/o", "--seed=-1"], 2,
     r"flag --seed=-1: must be an integer in \[0, 4294967295\]"),
    ("search-seed-huge", ["search", "--output_dir={tmp}/o", "--seed=1099511627776"], 2,
     r"flag --seed=1099511627776: must be an integer in \[0, 4294967295\]"),
    ("search-output-nul", ["search", "--output_dir={tmp}/o\x00p"], 2, r"flag --output_dir=.*: must not contain a NUL byte"),
    ("train-seed-huge", ["train", "--run_dir={run}", "--seed=1099511627776"], 2, r"flag --seed=1099511627776: must be an integer in"),
    ("train-learning-rate-inf", ["train", "--run_dir={run}", "--learning_rate=inf"], 2, r"flag --learning_rate=inf: must be a finite"),
    ("train-epochs-huge", ["train", "--run_dir={run}", "--epochs=10000000"], 2, r"flag --epochs=10000000: must be an integer in \[1, 100000\]"),
    ("train-output-nul", ["train", "--run_dir={run}", "--output_dir={tmp}/f\x00"], 2, r"flag --output_dir=.*: must not contain a NUL"),
    # values only the job can check (exit 1)
    ("search-output-is-file", ["search", "--output_dir={file}"], 1, r"--output_dir '.*afile' is a file, not a directory"),
    ("search-output-under-file", ["search", "--output_dir={file}/run"], 1, r"--output_dir '.*afile/run' cannot be made: '.*afile' is a file"),
    ("search-output-empty", ["search", "--output_dir="], 1, r"--output_dir must not be empty"),
    ("search-output-read-only", ["search", "--output_dir={ro}/run"], 1, r"--output_dir '.*ro/run': '.*ro' is not writable"),
    ("search-unknown-op", ["search", "--output_dir={tmp}/o", "--ops=sep_conv_3x3,warp_drive"], 1, r"--ops=sep_conv_3x3,warp_drive: .*warp_drive"),
    ("search-empty-ops", ["search", "--output_dir={tmp}/o", "--ops="], 1, r"--ops=: Unknown op vocabulary ''"),
    ("search-population-1", ["search", "--output_dir={tmp}/o", "--population_size=1"], 1, r"--population_size must be 0 .* or >= 2"),
    ("search-sample-gt-population", ["search", "--output_dir={tmp}/o", "--population_size=2", "--sample_size=5"], 1,
     r"--sample_size \(5\) must not exceed --population_size \(2\)"),
    ("search-images-too-small", ["search", "--output_dir={tmp}/o", "--data={tiny}"], 1, r"--image_size: 2x2 images are too small for the nasnet network's two reductions"),
    ("search-nb201-odd-size", ["search", "--output_dir={tmp}/o", "--space=nb201", "--image_size=10"], 1, r"nb201 network's .* divisible by 4, got 10x10"),
    ("resume-other-space", ["search", "--output_dir={run}", *RUN_FLAGS, "--space=macro"], 1,
     r"holds a search run with other settings: --space='macro' \(saved run: 'nasnet'\).*--overwrite"),
    ("resume-other-controller", ["search", "--output_dir={run}", *RUN_FLAGS, "--controller=reinforce"], 1, r"--controller='reinforce' \(saved run: 'evolution'\)"),
    ("resume-other-blocks", ["search", "--output_dir={run}", *RUN_FLAGS, "--num_blocks=2"], 1, r"--num_blocks=2 \(saved run: 1\)"),
    ("resume-other-data", ["search", "--output_dir={run}", *RUN_FLAGS, "--data={tiny}"], 1, r"--data='.*tiny.npz' \(saved run: 'digits'\)"),
    ("train-no-run", ["train", "--run_dir={tmp}/nothing"], 1, r"--run_dir '.*nothing' has no best_genotype.json"),
    ("train-output-is-file", ["train", "--run_dir={run}", "--output_dir={file}"], 1, r"--output_dir '.*afile' is a file"),
    ("train-run-dir-is-file", ["train", "--run_dir={file}", "--genotype=nasnet_a"], 1, r"--run_dir '.*afile' is a file, not a directory"),
    ("train-genotype-no-concat", ["train", "--run_dir={run}", "--genotype=normal=foo~0"], 1, r"Cannot read architecture 'normal=foo~0': .*lacks '/concat'"),
    ("train-genotype-bad-index", ["train", "--run_dir={run}", "--genotype=normal=sep_conv_3x3~0+identity~7/2;reduce=max_pool_3x3~0+identity~1/2"], 1,
     r"normal cell, block 0, input 1: index 7 out of range"),
    ("train-genotype-unknown-op", ["train", "--run_dir={run}", "--genotype=normal=warp~0+identity~1/2;reduce=max_pool_3x3~0+identity~1/2"], 1, r"warp"),
    ("train-genotype-garbage", ["train", "--run_dir={run}", "--genotype=garbage"], 1, r"Cannot read architecture 'garbage': not a run directory, file, zoo name"),
    ("train-genotype-json", ["train", "--run_dir={run}", '--genotype={"normal": 3}'], 1, r"Genotype JSON lacks the 'reduce' cell"),
    ("train-genotype-bad-json", ["train", "--run_dir={run}", '--genotype={"normal": '], 1, r"Cannot read architecture"),
    ("train-genotype-nb201", ["train", "--run_dir={run}", "--genotype=|bad~0|"], 1, r"NB201 string '\|bad~0\|' must have 3"),
    ("train-genotype-macro", ["train", "--run_dir={run}", "--genotype=24x3"], 1, r"macro layer 0 '24x3' is not FILTERSxKERNELsSTRIDE"),
    ("train-genotype-empty-dir", ["train", "--run_dir={run}", "--genotype={tmp}"], 1, r"is a directory without best_genotype.json"),
    ("train-nb201-odd-size", ["train", "--run_dir={run}", f"--genotype={NB201}", "--image_size=6"], 1, r"nb201 network's .* divisible by 4, got 6x6"),
    ("export-no-run", ["export", "--run_dir={tmp}/nothing"], 1, r"--run_dir '.*nothing' has neither final/train.json nor a finished search"),
    ("export-model-dir", ["export", "--run_dir={run}", "--model_dir={tmp}"], 1, r"--model_dir '.*' has no train.json"),
    ("export-dir-is-file", ["export", "--run_dir={run}", "--export_dir={file}", "--nosaved_model"], 1, r"--export_dir '.*afile' is a file"),
    ("show-garbage", ["show", "garbage"], 1, r"Cannot read architecture 'garbage'"),
    ("show-dir-without-genotype", ["show", "{tmp}"], 1, r"is a directory without best_genotype.json"),
    ("show-macro-skip-missing-layer", ["show", "--text_only", "24x3s1;36x5s2<3"], 1,
     r"macro layer 1: skip from layer 3 is invalid; skips must name earlier layers 0..0"),
    ("show-macro-zero-filters", ["show", "--text_only", "0x3s1"], 1, r"macro layer 0: filters must be a positive integer"),
    ("show-genotype-json-name", ["show", "--text_only", '{"normal": {"blocks": []}, "reduce": {"blocks": []}, "name": 3.5}'],
     1, r"'name' must be a string, got float 3.5"),
    ("show-bad-index", ["show", "--text_only", "normal=sep_conv_3x3~0+identity~9/2;reduce=max_pool_3x3~0+identity~1/2"], 1, r"index 9 out of range"),
    ("show-png-in-missing-dir", ["show", "nasnet_a", "--png={tmp}/nodir/cells.png"], 2, r"cannot write the picture '.*nodir/cells.png'.*--png"),
]


def _fill(arg, fmt):
    for k, v in fmt.items():
        arg = arg.replace("{" + k + "}", v)
    return arg


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_bad_command_line_row(row, saved_run, tmp_path, monkeypatch, capsys):
    """`python -m keras_nas.cli ...` in-process (cli.main(argv)): exit code, one clear error line
    naming the flag/value, no traceback, the saved run unchanged and nothing else written."""
    from keras_nas import cli

    _, argv, code, pattern = row
    if "{ro}" in " ".join(argv) and os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # anything written by mistake into the cwd shows up here
    (tmp_path / "afile").write_text("not a directory\n")
    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, x_train=np.zeros((30, 2, 2, 1), np.float32), y_train=np.arange(30) % 3)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    fmt = {"run": str(saved_run), "tmp": str(work), "file": str(tmp_path / "afile"), "tiny": str(tiny), "ro": str(ro)}
    before = _digest(saved_run)
    try:
        rc = cli.main([_fill(a, fmt) for a in argv])
    except SystemExit as e:  # absl may exit by itself; it must still say why
        rc = e.code
    err = capsys.readouterr().err
    assert rc == code, err
    _clear_error(err, "keras-nas", pattern)
    assert len(err.strip().splitlines()) <= 15, err
    assert _digest(saved_run) == before, "the saved run changed"
    assert not os.listdir(work), f"files were written: {os.listdir(work)}"
    assert sorted(os.listdir(ro)) == [] and sorted(os.listdir(tmp_path)) == ["afile", "ro", "tiny.npz", "work"]
