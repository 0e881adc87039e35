"""Argument checks of ``keras_nas.oneshot.search``: every bad value is refused before anything is
built or written, with a message naming the argument and the fix."""

from __future__ import annotations

import hashlib

import numpy as np

# settings newer than some checkpoints: an old checkpoint without them ran with this value
SETTING_ADDED_LATER = {"warmup_epochs": 0, "enas_controller": "micro"}


class OneShotError(ValueError):
    """A one-shot search cannot run with these arguments; the message names the argument and the fix."""


def fail(msg):
    raise OneShotError(msg)


def check_data(x_train, y_train, x_val, y_val, batch_size, distribute):
    arrays = []
    for name, x, y in (("train", x_train, y_train), ("val", x_val, y_val)):
        if x is None or y is None:
            fail(
                f"x_{name} and y_{name} are required: pass the images (N, H, W, C) and integer labels (N,) of the "
                f"{'training' if name == 'train' else 'validation'} split."
            )
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 4:
            fail(
                f"x_{name} must be images shaped (N, height, width, channels), got shape {x.shape}; add a channel "
                "axis to grey images (x[..., None])."
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or len(y) != len(x):
            fail(
                f"y_{name} must hold one integer label per image ({len(x)}), got shape {y.shape}; one-hot labels "
                "must be turned into indices (y.argmax(-1))."
            )
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.equal(np.mod(y, 1), 0)):
                fail(
                    f"y_{name} must hold integer class indices, got {y.dtype} values like {y[:3]}."
                )
            y = y.astype(np.int64)
        if len(y) and y.min() < 0:
            fail(f"y_{name} has negative labels; classes must be 0..num_classes-1.")
        if not np.all(np.isfinite(x)):
            fail(f"x_{name} holds NaN or infinite values; clean or drop those images.")
        arrays += [x.astype(np.float32), y.astype(np.int32)]
    xt, yt, xv, yv = arrays
    if xt.shape[1:] != xv.shape[1:]:
        fail(
            f"x_train images are {xt.shape[1:]} but x_val images are {xv.shape[1:]}; give both the same shape."
        )
    if len(xt) < batch_size:
        fail(
            f"batch_size {batch_size} is larger than the training split ({len(xt)} images): an epoch would have "
            f"no step. Lower batch_size to at most {len(xt)}."
        )
    if len(xv) == 0:
        fail(
            "x_val is empty; the architecture is learnt and chosen on validation data: hold some images out."
        )
    replicas = distribute.num_replicas_in_sync if distribute is not None else 1
    if batch_size < replicas or len(xv) < replicas:
        fail(
            f"batch_size ({batch_size}) and the validation split ({len(xv)}) must hold at least one image per "
            f"replica of the distribution strategy ({replicas})."
        )
    return xt, yt, xv, yv


def positive_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        fail(f"{name} must be an integer >= {lo}, got {v!r}.")
    return int(v)


def positive_float(name, v, allow_zero=False):
    try:
        f = float(v)
    except (TypeError, ValueError):
        fail(f"{name} must be a number, got {v!r}.")
    if not np.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        fail(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite number, got {v!r}."
        )
    return f


def fingerprint(arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
