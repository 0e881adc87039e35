"""Bad datasets: a clear error naming the problem, and nothing saved earlier changed.

Add a row to ``DATA_ROWS``: a bad dataset, checked through ``load_dataset`` and the CLI's
``search``/``train`` beside the ``saved_run`` search directory (tests/_bad_input.py), whose files
are hashed before and after. The other entry points: test_bad_input.py, test_bad_command_line.py.
"""

import hashlib
import os

import numpy as np
import pytest
from _bad_input import clear_error, digest, make_saved_run

pytest.importorskip("keras_tuner")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    return make_saved_run(tmp_path_factory)  # built once per session, shared by the xdist workers


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
    (
        "x-2d",
        _npz(x_train=X.reshape(40, 64), y_train=Y),
        r"x_train/y_train: images must have shape \(n, height, width\).*got \(40, 64\)",
    ),
    (
        "x-5d",
        _npz(x_train=X[..., None], y_train=Y),
        r"images must have shape .*got \(40, 8, 8, 1, 1\)",
    ),
    (
        "x-channels-first",
        _npz(x_train=X.reshape(40, 1, 8, 8).repeat(3, 1), y_train=Y),
        r"images look channels-first",
    ),
    (
        "x-strings",
        _npz(x_train=np.array(["a"] * 40), y_train=Y),
        r"images must be numeric arrays, got dtype <U1",
    ),
    (
        "x-nan",
        _npz(x_train=XNAN, y_train=Y),
        r"x_train/y_train: images contain NaN or infinite values",
    ),
    ("x-inf", _npz(x_train=XINF, y_train=Y), r"images contain NaN or infinite values"),
    ("x-empty", _npz(x_train=X[:0], y_train=Y[:0]), r"x_train/y_train: the split is empty"),
    (
        "y-float",
        _npz(x_train=X, y_train=Y + 0.5),
        r"labels must be integer class ids, got dtype float64",
    ),
    (
        "y-nan",
        _npz(x_train=X, y_train=np.where(Y == 2, np.nan, Y)),
        r"labels must be integer class ids",
    ),
    (
        "y-bool",
        _npz(x_train=X, y_train=Y % 2 == 0),
        r"labels must be integer class ids, got dtype bool",
    ),
    ("y-negative", _npz(x_train=X, y_train=Y - 1), r"labels must be >= 0, found -1"),
    ("y-one-hot", _npz(x_train=X, y_train=np.eye(4)[Y]), r"labels look one-hot \(40, 4\)"),
    (
        "y-2d",
        _npz(x_train=X, y_train=Y.reshape(20, 2, 1)),
        r"labels must be a 1-D array of class ids",
    ),
    ("y-length", _npz(x_train=X, y_train=Y[:30]), r"40 images but 30 labels"),
    ("y-single-class", _npz(x_train=X, y_train=Y * 0), r"y_train has a single class"),
    (
        "y-test-out-of-range",
        _npz(x_train=X, y_train=Y, x_test=X[:4], y_test=np.array([0, 1, 2, 9])),
        r"x_test/y_test: label 9 is out of range for 4 classes",
    ),
    (
        "y-val-out-of-range",
        _npz(x_train=X, y_train=Y, x_val=X[:2], y_val=np.array([0, 4])),
        r"x_val/y_val: label 4 is out of range for 4 classes",
    ),
    (
        "val-shape",
        _npz(x_train=X, y_train=Y, x_val=X[:4, :6, :6], y_val=Y[:4]),
        r"x_val images have shape \(6, 6, 1\) but x_train has \(8, 8, 1\)",
    ),
    ("val-without-labels", _npz(x_train=X, y_train=Y, x_val=X[:4]), r"has x_val but not y_val"),
    (
        "keys-missing",
        _npz(images=X, labels=Y),
        r"missing key\(s\) \['x_train', 'y_train'\]; found \['images', 'labels'\]",
    ),
    (
        "too-few-to-split",
        _npz(x_train=X[:4], y_train=Y[:4]),
        r"too few images to split off a non-empty (val|test) split",
    ),
    (
        "not-an-npz",
        _file("fake.npz", b"hello, not a zip"),
        r"Cannot read '.*fake.npz': not an .npz file \(not a zip archive\)",
    ),
    ("text-file", _file("data.txt", b"1,2,3\n"), r"Cannot read '.*data.txt': not an .npz file"),
    (
        "missing-file",
        lambda d: str(d / "missing.npz"),
        r"Dataset file '.*missing.npz' does not exist",
    ),
    (
        "unknown-name",
        lambda d: "imagenet_but_not_really",
        r"Unknown dataset 'imagenet_but_not_really'",
    ),
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
    before = digest(saved_run)
    with pytest.raises(DataError, match=pattern):
        load_dataset(spec)
    out = tmp_path / "new_run"
    assert cli.main(["search", f"--data={spec}", f"--output_dir={out}"]) == 1
    clear_error(capsys.readouterr().err, "keras-nas search: error: ", pattern)
    assert not out.exists(), "search created its output directory before rejecting the data"
    if spec:  # an empty --data means "the run's dataset" for train
        assert cli.main(["train", f"--run_dir={saved_run}", f"--data={spec}"]) == 1
        clear_error(capsys.readouterr().err, "keras-nas train: error: ", pattern)
    assert digest(saved_run) == before, "the saved run changed"
    assert not os.listdir(tmp_path), f"files were written: {os.listdir(tmp_path)}"
