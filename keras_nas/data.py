"""Datasets for search and retraining: three disjoint splits and tf.data pipelines.

Why three splits: the search selects architectures on ``val`` (search-validation), so
``val`` accuracy of the winner is optimistically biased; the accuracy we report is on
``test``, a held-out split that neither the search nor the retraining ever sees.

Sources (``load_dataset(name)``):

* ``"digits"`` (default) -- scikit-learn's bundled handwritten digits: 1797 real 8x8
  grayscale images, 10 classes, shipped inside the scikit-learn wheel, so it works
  offline. The 8x8 images are bilinearly upsampled to ``image_size`` (16x16 by default)
  because a NASNet network with two reduction cells needs a few pixels left at the end.
* a path to an ``.npz`` file with ``x_train``, ``y_train`` and optional ``x_val``/``y_val``,
  ``x_test``/``y_test``.
* ``keras.datasets`` names: ``cifar10``, ``cifar100``, ``mnist``, ``fashion_mnist``.
* any other name (or ``tfds:NAME``) through TensorFlow Datasets when it is installed.

Offline, the downloading sources fail within seconds with a message saying what to do,
instead of hanging in the libraries' own retry loops.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import warnings
import zipfile
from typing import Optional

import numpy as np

KERAS_DATASETS = {
    # name: (cache file under ~/.keras/datasets, download host)
    "cifar10": ("cifar-10-batches-py", "www.cs.toronto.edu"),
    "cifar100": ("cifar-100-python", "www.cs.toronto.edu"),
    "mnist": ("mnist.npz", "storage.googleapis.com"),
    "fashion_mnist": ("fashion-mnist", "storage.googleapis.com"),
}
DEFAULT_DATASET = "digits"
NETWORK_TIMEOUT_S = 5.0
SUSPICIOUS_MAX = 50.0  # non-uint8 pixels with 1 < max < this are probably not 0..255 data
TFDS_TIMEOUT_S = 60.0


class DataError(ValueError):
    """A dataset cannot be loaded or is malformed; the message names the problem and the fix."""


# Training-time augmentations (``keras-nas train --augment``), opt-in: none is applied unless named,
# because whether an augmentation keeps an image's meaning depends on the data (a flipped digit or
# letter is another symbol), and only the user knows their data.
AUGMENTATIONS = {
    "shift": "random translation by up to 1/8 of the side (pad with zeros, random crop)",
    "flip": "random left-right flip (only for data whose classes are mirror-symmetric: photos, not digits or text)",
}
AUGMENT_HELP = (
    "Training-time augmentation, opt-in: 'none' (default), or a comma-separated list of "
    + "; ".join(f"'{k}' ({v})" for k, v in AUGMENTATIONS.items())
    + ", e.g. 'shift,flip'."
)


def parse_augment(spec) -> tuple:
    """``'none'`` / ``''`` / None / False -> ``()``; ``'shift,flip'`` -> ``('shift', 'flip')``.

    Why strict: the old boolean ``augment=True`` flipped every dataset not named digits/mnist,
    including a user's own digits; ``True`` is refused rather than guessed.
    """
    if spec is None or spec is False:
        return ()
    if spec is True:
        raise DataError(
            "augment=True is ambiguous: name the augmentations, e.g. 'shift' or 'shift,flip' "
            f"(choices: {', '.join(AUGMENTATIONS)}; 'none' for none)."
        )
    if isinstance(spec, (list, tuple)):
        names = [str(a).strip().lower() for a in spec]
    else:
        names = [a.strip().lower() for a in str(spec).split(",")]
    names = [a for a in names if a and a != "none"]
    unknown = [a for a in names if a not in AUGMENTATIONS]
    if unknown:
        raise DataError(
            f"--augment: unknown augmentation {unknown[0]!r}; choose 'none' or a comma-separated list "
            f"of {', '.join(AUGMENTATIONS)} (e.g. --augment=shift,flip)."
        )
    return tuple(dict.fromkeys(names))


def describe_augment(spec) -> str:
    """One line for logs and summaries: which augmentations a training run used."""
    names = parse_augment(spec)
    return ", ".join(f"{a} ({AUGMENTATIONS[a]})" for a in names) if names else "none"


class DataScaleWarning(UserWarning):
    """Non-uint8 pixels were divided by 255 although their maximum suggests another range (e.g. 0..16)."""


# The .npz rule, also printed by `keras-nas search --help` (--data).
NPZ_HELP = (
    "An .npz file holds x_train and y_train (optional: x_val/y_val, x_test/y_test); images are "
    "(n, h, w) or (n, h, w, c), labels integer class ids. Pixels are divided by 255 when the images "
    "are uint8 or their maximum exceeds 1; float images already in [0, 1] are used as they are."
)


@dataclasses.dataclass
class Dataset:
    """Three disjoint splits as numpy arrays (raw pixel values) plus how to preprocess them.

    ``x_*`` have shape (n, h, w, c); ``y_*`` are int labels in ``[0, num_classes)``.
    ``scale`` maps raw pixels to [0, 1]; ``image_size`` is the (h, w) fed to the network.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    scale: float = 255.0
    image_size: Optional[tuple] = None

    @property
    def input_shape(self) -> tuple:
        h, w = self.image_size or self.x_train.shape[1:3]
        return (int(h), int(w), int(self.x_train.shape[-1]))

    def describe(self) -> str:
        h, w, c = self.input_shape
        raw = "x".join(str(s) for s in self.x_train.shape[1:3])
        resized = "" if (h, w) == tuple(self.x_train.shape[1:3]) else f" (upsampled from {raw})"
        return (
            f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} search-validation / "
            f"{len(self.x_test)} held-out test images, {h}x{w}x{c}{resized}, {self.num_classes} classes"
        )

    def pipeline(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: Optional[int] = None,
        augment=(),
    ):
        """A ``tf.data.Dataset`` of ``(image float32 in [0,1], label int32)`` batches for ``split``.

        Preprocessing (scale, resize) runs once and is cached in memory; ``shuffle`` and
        ``augment`` (augmentation names, see :data:`AUGMENTATIONS`; none by default) run after the cache, and
        ``prefetch`` overlaps input preparation with training.
        """
        import tensorflow as tf

        if split not in ("train", "val", "test"):
            raise DataError(f"split must be 'train', 'val' or 'test', got {split!r}.")
        x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
        if len(x) == 0:
            raise DataError(
                f"The {split} split of {self.name} is empty; use a larger dataset or subset."
            )
        h, w, _ = self.input_shape
        needs_resize = (h, w) != tuple(x.shape[1:3])
        scale = float(self.scale)

        def prep(xb, yb):
            xb = tf.cast(xb, tf.float32) / scale
            if needs_resize:
                xb = tf.image.resize(xb, (h, w), method="bilinear")
            return xb, tf.cast(yb, tf.int32)

        ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
        # Batch before mapping so the resize runs vectorised; unbatch so shuffling is per example.
        ds = ds.batch(256).map(prep, num_parallel_calls=tf.data.AUTOTUNE).unbatch().cache()
        if shuffle:
            ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
        augment = parse_augment(augment)
        if augment:
            pad = max(1, h // 8)

            def aug(xb, yb):
                if "flip" in augment:
                    xb = tf.image.random_flip_left_right(xb, seed=seed)
                if "shift" in augment:
                    xb = tf.image.resize_with_crop_or_pad(xb, h + 2 * pad, w + 2 * pad)
                    xb = tf.image.random_crop(
                        xb, tf.concat([[tf.shape(xb)[0]], [h, w, tf.shape(xb)[-1]]], 0), seed=seed
                    )
                return xb, yb

            ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)


# -- validation -----------------------------------------------------------------------


def _check_xy(x, y, label: str, num_classes: Optional[int] = None):
    """Normalise one split to (n, h, w, c) images and int labels, or raise DataError naming the split."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{label}: images must be numeric arrays, got dtype {x.dtype}.")
    if x.ndim == 3:
        x = x[..., None]  # (n, h, w) grayscale
    if x.ndim != 4:
        raise DataError(
            f"{label}: images must have shape (n, height, width) or (n, height, width, channels), got {x.shape}."
        )
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        raise DataError(
            f"{label}: images look channels-first {x.shape}; transpose to (n, h, w, c)."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(
            f"{label}: labels look one-hot {y.shape}; pass integer class ids (np.argmax(y, 1))."
        )
    if y.ndim != 1:
        raise DataError(f"{label}: labels must be a 1-D array of class ids, got shape {y.shape}.")
    if len(x) != len(y):
        raise DataError(f"{label}: {len(x)} images but {len(y)} labels; they must match.")
    if len(y) == 0:
        raise DataError(f"{label}: the split is empty.")
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{label}: labels must be integer class ids, got dtype {y.dtype}.")
    if y.min() < 0:
        raise DataError(f"{label}: labels must be >= 0, found {int(y.min())}.")
    if num_classes is not None and y.max() >= num_classes:
        raise DataError(
            f"{label}: label {int(y.max())} is out of range for {num_classes} classes (from y_train); "
            "every class must appear in y_train."
        )
    if not np.all(np.isfinite(x)):
        raise DataError(f"{label}: images contain NaN or infinite values.")
    return x, y.astype(np.int64)


def _stratified_split(x, y, fraction: float, rng: np.random.Generator):
    """Split off ``fraction`` of the examples per class (at least one where a class has 2+)."""
    take = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        k = int(round(fraction * len(idx)))
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        take.extend(idx[:k])
    mask = np.zeros(len(y), bool)
    mask[np.asarray(take, dtype=np.int64)] = True
    return x[~mask], y[~mask], x[mask], y[mask]


def _subset(x, y, n: int, rng):
    if n is None or n <= 0 or n >= len(y):
        return x, y
    idx = rng.permutation(len(y))[:n]
    return x[idx], y[idx]


# -- sources ----------------------------------------------------------------------------


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "The default dataset 'digits' needs scikit-learn (it ships the images): pip install 'keras-nas[data]', "
            "or pass --data=PATH.npz."
        ) from None
    d = load_digits()
    x = d.images.astype(np.float32)[..., None]  # (1797, 8, 8, 1), values 0..16
    return {"x_train": x, "y_train": d.target.astype(np.int64)}, 16.0


def _check_npz_file(path: str):
    """The cheap checks of an .npz path (exists, is a zip archive), without reading its arrays."""
    if not os.path.exists(path):
        raise DataError(f"Dataset file {path!r} does not exist.")
    if not zipfile.is_zipfile(path):  # np.load would try it as a pickle and blame allow_pickle
        raise DataError(
            f"Cannot read {path!r}: not an .npz file (not a zip archive); save the dataset with "
            "np.savez(path, x_train=..., y_train=...)."
        )


def check_source(name: str):
    """Reject a dataset name or path that cannot load, reading no arrays and importing no TensorFlow.

    Why: the CLI calls this before TensorFlow is imported, so a missing file fails in a second.
    """
    if not isinstance(name, str) or not name:
        raise DataError(f"Dataset name must be a non-empty string, got {name!r}.")
    if os.path.isdir(name):
        raise DataError(
            f"Dataset {name!r} is a directory; pass an .npz file inside it, 'digits' or a dataset name."
        )
    if name.lower() != "digits" and (name.lower().endswith(".npz") or os.path.isfile(name)):
        _check_npz_file(name)


def _load_npz(path: str):
    _check_npz_file(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # zip/pickle/format errors
        raise DataError(
            f"Cannot read {path!r} as an .npz file: {e}. Save it with np.savez(path, x_train=..., y_train=...)."
        ) from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing key(s) {missing}; found {sorted(arrays)}. An .npz dataset needs x_train and y_train "
            "(optional: x_val/y_val, x_test/y_test)."
        )
    for a, b in (("x_val", "y_val"), ("x_test", "y_test")):
        if (a in arrays) != (b in arrays):
            raise DataError(
                f"{path}: has {a if a in arrays else b} but not {b if a in arrays else a}; give both or neither."
            )
    return {
        k: v for k, v in arrays.items() if k[:2] in ("x_", "y_")
    }, None  # scale: decided after validation


def _network_reachable(host: str, timeout: float = NETWORK_TIMEOUT_S) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_keras(name: str):
    import keras

    cache_name, host = KERAS_DATASETS[name]
    cache_dir = os.path.join(
        os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "datasets"
    )
    cached = (
        any(f.startswith(cache_name) for f in os.listdir(cache_dir))
        if os.path.isdir(cache_dir)
        else False
    )
    if not cached and not _network_reachable(host):
        raise DataError(
            f"Dataset {name!r} is not in the Keras cache ({cache_dir}) and {host} cannot be reached (no network?). "
            f"Download it on a machine with network (keras.datasets.{name}.load_data()) and copy {cache_dir}, "
            "or pass an .npz file, or use the embedded default --data=digits."
        )
    (xt, yt), (xs, ys) = getattr(keras.datasets, name).load_data()
    return {"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys}, 255.0


def _load_tfds(name: str, data_dir: Optional[str] = None):
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(
            f"Unknown dataset {name!r}: not 'digits', an .npz path, or one of {sorted(KERAS_DATASETS)}; "
            "TensorFlow Datasets names need `pip install tensorflow-datasets`."
        ) from None
    data_dir = data_dir or os.environ.get(
        "TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")
    )
    local = os.path.isdir(os.path.join(data_dir, name.split("/")[0].split(":")[0]))
    if not local and not _network_reachable("storage.googleapis.com"):
        raise DataError(
            f"TensorFlow Datasets {name!r} is not prepared in {data_dir} and the network is unreachable. "
            f"Run `tfds build {name}` (or tfds.load) where there is network and copy {data_dir}, or pass --data=PATH.npz."
        )
    # tfds retries for minutes on network trouble; bound it with a thread and a timeout.
    result: dict = {}

    def work():
        try:
            result["v"] = tfds.as_numpy(
                tfds.load(
                    name,
                    split=["train", "test"],
                    batch_size=-1,
                    as_supervised=True,
                    data_dir=data_dir,
                )
            )
        except Exception as e:  # reported below
            result["e"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(TFDS_TIMEOUT_S)
    if t.is_alive():
        raise DataError(
            f"Loading TensorFlow Datasets {name!r} did not finish in {TFDS_TIMEOUT_S:.0f} s (download stuck?)."
        )
    if "e" in result:
        raise DataError(f"TensorFlow Datasets could not load {name!r}: {result['e']}") from None
    (xt, yt), (xs, ys) = result["v"]
    return {"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys}, 255.0


def load_dataset(
    name: str = DEFAULT_DATASET,
    *,
    image_size: Optional[int] = None,
    subset: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    data_dir: Optional[str] = None,
) -> Dataset:
    """Load ``name`` and return disjoint train / search-validation / held-out test splits.

    Args:
      name: 'digits', a ``.npz`` path, a keras.datasets name, or a TensorFlow Datasets name.
      image_size: side of the square images fed to the network (None keeps the native size;
        'digits' defaults to 16, i.e. 8x8 upsampled x2).
      subset: if > 0, keep at most this many training examples (after splitting), and at
        most ``subset // 2`` validation and test examples -- for fast proxy searches.
      val_fraction: fraction of the training data held out as search-validation when the
        source has no validation split.
      test_fraction: fraction held out as the test split when the source has no test split.
      seed: seeds the splits and the subset.
    """
    check_source(name)
    for label, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < frac < 1.0:
            raise DataError(f"{label} must be in (0, 1), got {frac!r}.")
    if image_size is not None and (int(image_size) != image_size or image_size < 4):
        raise DataError(f"image_size must be an integer >= 4, got {image_size!r}.")
    key = name.lower()
    if key == "digits":
        arrays, scale = _load_digits()
        image_size = image_size or 16
    elif key.endswith(".npz") or os.path.isfile(name):
        arrays, scale = _load_npz(name)
    elif key in KERAS_DATASETS:
        arrays, scale = _load_keras(key)
    else:
        arrays, scale = _load_tfds(name[5:] if key.startswith("tfds:") else name, data_dir)

    x, y = _check_xy(arrays["x_train"], arrays["y_train"], f"{name} x_train/y_train")
    num_classes = int(y.max()) + 1
    if scale is None:  # npz: uint8 or 0..255 floats -> /255, floats already in [0, 1] -> as is
        top = float(np.max(x))
        scale = 255.0 if (x.dtype == np.uint8 or top > 1.0) else 1.0
        if scale == 255.0 and x.dtype != np.uint8 and top < SUSPICIOUS_MAX:
            warnings.warn(
                f"{name}: {x.dtype} images with maximum {top:g} are divided by 255 (the rule for pixels above 1), so "
                f"they train in [0, {top / 255:.3g}]. If their range is 0..{top:g} (e.g. scikit-learn digits, 0..16), "
                f"pre-scale them to [0, 1] (x_train / {top:g}) before np.savez.",
                DataScaleWarning,
                stacklevel=2,
            )
    if num_classes < 2:
        raise DataError(f"{name}: y_train has a single class; classification needs at least 2.")
    rng = np.random.default_rng(seed)
    if "x_test" in arrays:
        xs, ys = _check_xy(arrays["x_test"], arrays["y_test"], f"{name} x_test/y_test", num_classes)
    else:
        x, y, xs, ys = _stratified_split(x, y, test_fraction, rng)
    if "x_val" in arrays:
        xv, yv = _check_xy(arrays["x_val"], arrays["y_val"], f"{name} x_val/y_val", num_classes)
    else:
        x, y, xv, yv = _stratified_split(x, y, val_fraction, rng)
    for label, arr in (("x_train", x), ("x_val", xv), ("x_test", xs)):
        if len(arr) == 0:
            raise DataError(
                f"{name}: too few images to split off a non-empty {label[2:]} split ({len(y) + len(yv) + len(ys)} "
                "in all); every class needs 3 or more examples, or give x_val/y_val and x_test/y_test."
            )
        if arr.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{name}: {label} images have shape {arr.shape[1:]} but x_train has {x.shape[1:]}."
            )
    if subset and subset > 0:
        x, y = _subset(x, y, subset, rng)
        xv, yv = _subset(xv, yv, max(subset // 2, num_classes), rng)
        xs, ys = _subset(xs, ys, max(subset // 2, num_classes), rng)
    size = (int(image_size), int(image_size)) if image_size else None
    return Dataset(name, x, y, xv, yv, xs, ys, num_classes, scale=scale, image_size=size)
