"""keras_nas.data: embedded default, npz validation, offline failures, disjoint splits, pipelines."""

import time

import numpy as np
import pytest

from keras_nas import data as data_lib
from keras_nas.data import DataError, load_dataset


def test_digits_default_is_offline_real_data_with_three_disjoint_splits():
    ds = load_dataset("digits", seed=0)
    n = len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
    assert n == 1797  # all of scikit-learn's digits, nothing dropped or duplicated
    assert ds.num_classes == 10 and ds.input_shape == (16, 16, 1)  # 8x8 upsampled to 16x16
    assert len(ds.x_test) >= 300 and len(ds.x_val) >= 250
    # disjoint: no image appears in two splits
    key = lambda x: {a.tobytes() for a in x}
    train, val, test = key(ds.x_train), key(ds.x_val), key(ds.x_test)
    # (digits has a few exact duplicate images; require near-disjointness of the index sets instead)
    assert len(train & test) <= 5 and len(train & val) <= 5
    assert set(np.unique(ds.y_test)) == set(range(10))  # stratified


def test_pipeline_batches_scaled_resized_and_prefetched():
    import tensorflow as tf

    ds = load_dataset("digits", subset=100, image_size=12)
    p = ds.pipeline("train", 32, shuffle=True, seed=1, augment="shift,flip")
    x, y = next(iter(p))
    assert x.shape == (32, 12, 12, 1) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0 + 1e-6
    assert "Prefetch" in type(p).__name__
    total = sum(int(b[1].shape[0]) for b in ds.pipeline("test", 16))
    assert total == len(ds.y_test)


def test_subset_limits_every_split():
    ds = load_dataset("digits", subset=60)
    assert len(ds.x_train) == 60 and len(ds.x_val) == 30 and len(ds.x_test) == 30


def _npz(tmp_path, **arrays):
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    return str(p)


def test_npz_with_given_val_split_and_uint8_scaling(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    path = _npz(tmp_path, x_train=x, y_train=y, x_val=x[:8], y_val=y[:8])
    ds = load_dataset(path)
    assert len(ds.x_val) == 8 and ds.num_classes == 4 and ds.scale == 255.0
    assert len(ds.x_train) + len(ds.x_test) == 40  # test carved from train, val taken as given
    assert ds.input_shape == (8, 8, 3)


def test_small_range_float_pixels_divided_by_255_warn(tmp_path):
    """0..16 floats (digits-like) follow the /255 rule but land in [0, 0.063]: say so and how to fix."""
    y = np.arange(40) % 4
    x16 = np.random.default_rng(0).integers(0, 17, (40, 8, 8)).astype(np.float32)
    x16[0, 0, 0] = 16.0
    with pytest.warns(
        data_lib.DataScaleWarning,
        match=r"maximum 16 are divided by 255.*\[0, 0.0627\].*x_train / 16",
    ):
        ds = load_dataset(_npz(tmp_path, x_train=x16, y_train=y))
    assert ds.scale == 255.0  # the documented rule still holds; only the warning is new
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", data_lib.DataScaleWarning)
        load_dataset(_npz(tmp_path, x_train=x16 * 15, y_train=y))  # 0..240: real 0..255 pixels
        load_dataset(_npz(tmp_path, x_train=x16 / 16, y_train=y))  # already in [0, 1]
        load_dataset(
            _npz(tmp_path, x_train=x16.astype(np.uint8), y_train=y)
        )  # uint8 is always /255


def test_check_source_reads_no_arrays(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data_lib.check_source(str(tmp_path / "missing.npz"))
    (tmp_path / "fake.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not an .npz file"):
        data_lib.check_source(str(tmp_path / "fake.npz"))
    with pytest.raises(DataError, match="is a directory"):
        data_lib.check_source(str(tmp_path))
    data_lib.check_source("digits")
    data_lib.check_source("cifar10")  # resolved (and downloaded) only when loaded


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        ({"x_train": np.zeros((4, 8, 8))}, "missing key(s) ['y_train']"),
        ({"x_train": np.zeros((4, 8)), "y_train": np.zeros(4, int)}, "shape (n, height, width)"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.zeros(5, int)}, "4 images but 5 labels"),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.eye(4)}, "one-hot"),
        (
            {"x_train": np.zeros((4, 8, 8)), "y_train": np.array([0, 1, 0.5, 1])},
            "integer class ids",
        ),
        ({"x_train": np.zeros((4, 8, 8)), "y_train": np.array([0, 1, -1, 1])}, ">= 0"),
        (
            {
                "x_train": np.zeros((4, 8, 8)),
                "y_train": np.array([0, 1, 0, 1]),
                "x_val": np.zeros((2, 8, 8)),
            },
            "x_val but not y_val",
        ),
        (
            {
                "x_train": np.zeros((4, 8, 8)),
                "y_train": np.array([0, 1, 0, 1]),
                "x_val": np.zeros((2, 8, 8)),
                "y_val": np.array([0, 2]),
            },
            "label 2 is out of range for 2 classes",
        ),
        (
            {
                "x_train": np.zeros((4, 8, 8)),
                "y_train": np.array([0, 1, 0, 1]),
                "x_test": np.zeros((2, 9, 9)),
                "y_test": np.array([0, 1]),
            },
            "x_test images have shape",
        ),
        ({"x_train": np.array([["a"] * 8] * 4), "y_train": np.array([0, 1, 0, 1])}, "numeric"),
    ],
)
def test_npz_errors_name_the_problem(tmp_path, arrays, fragment):
    with pytest.raises(DataError) as e:
        load_dataset(_npz(tmp_path, **arrays))
    assert fragment in str(e.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.npz"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="Cannot read"):
        load_dataset(str(bad))


def test_keras_dataset_offline_fails_within_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # empty cache
    monkeypatch.setattr(data_lib, "_network_reachable", lambda host, timeout=5.0: False)
    t = time.time()
    with pytest.raises(DataError, match="not in the Keras cache.*cannot be reached"):
        load_dataset("cifar10")
    assert time.time() - t < 5


def test_network_probe_is_bounded():
    t = time.time()
    data_lib._network_reachable(
        "10.255.255.1", timeout=1.0
    )  # unroutable: must give up after the timeout
    assert time.time() - t < 3


def test_unknown_name_without_tfds_or_unprepared_tfds_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(data_lib, "_network_reachable", lambda host, timeout=5.0: False)
    t = time.time()
    with pytest.raises(DataError, match="tensorflow-datasets|not prepared"):
        load_dataset("imagenette/160px", data_dir=str(tmp_path))
    assert time.time() - t < 30


def test_bad_arguments():
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.5)
    with pytest.raises(DataError, match="image_size"):
        load_dataset("digits", image_size=2)
