"""The digits ground-truth protocol: its parameters, the data splits and the NB201 cell masks.

Why a module of its own: the protocol (:class:`Protocol`) and the data it fixes are shared by the
table's trainer (``digits_nb201``), the proxy checks and the weight-sharing benchmarks, none of
which should need the trainer to read the data. Pure numpy at import.

The harder task (``canvas``, ``noise``, ``*_copies``): scikit-learn's 8x8 digits saturate (~97% test
accuracy for most cells), and at saturation two training seeds disagree about which few test images a
cell gets wrong, so the cells' ranking is noise. Placing each digit at a random offset on a larger
zero canvas ("translated digits") and adding pixel noise makes the task depend on the cell's
translation invariance and capacity; several placed copies of each test image make the held-out
estimate less noisy. Every placement and noise sample is fixed by ``split_seed`` (a dataset, not an
augmentation): the same images for every cell and every training seed.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_nas.space.base import SpaceError
from keras_nas.space.nb201 import EDGES, NB201_OPS, NB201Cell

__all__ = [
    "Protocol",
    "PROTOCOL",
    "parse_cell",
    "cell_mask",
    "load_data",
    "shifted",
    "steps_per_epoch",
    "batch_order",
    "NUM_OPS",
    "input_size",
]

NUM_OPS = len(NB201_OPS)  # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
_OP_INDEX = {op: i for i, op in enumerate(NB201_OPS)}


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Everything that determines a trained accuracy besides the cell and the seed."""

    image_size: int = 8  # digits are 8x8; 16 = bilinear upsampling x2 (keras_nas.data's default)
    test_fraction: float = 0.5  # stratified held-out test split (reported ``accuracy``)
    val_fraction: float = 0.3  # of the rest: validation split (``val_accuracy``, for searches)
    split_seed: int = 0  # seeds keras_nas.data.load_dataset's splits
    train_images: int = (
        0  # > 0: keep only this many training images (first of a seeded permutation)
    )
    channels: int = 8  # NB201 C
    num_cells: int = 1  # NB201 N (cells per stage)
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 0.01  # Adam, cosine decay to 0 over all steps
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7  # Keras' Adam default
    bn_momentum: float = 0.9  # NB201 (PyTorch defaults)
    bn_epsilon: float = 1e-5
    eval_shift: int = (
        0  # > 0: shift_accuracy on the test images shifted by this many pixels up/down/left/right
    )
    canvas: int = (
        16  # > image_size: each image placed at a random offset on a canvas x canvas field
    )
    noise: float = 0.0  # std of Gaussian pixel noise added to every image (after placement)
    train_copies: int = 1  # placed/noisy copies of each training image
    test_copies: int = 4  # placed/noisy copies of each val and test image

    def __post_init__(self):
        for name in (
            "image_size",
            "channels",
            "num_cells",
            "epochs",
            "batch_size",
            "train_copies",
            "test_copies",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"Protocol.{name} must be a positive integer, got {v!r}.")
        if self.image_size % 4:
            raise ValueError(
                f"Protocol.image_size must be divisible by 4 (two NB201 reductions), got {self.image_size}."
            )
        for name in ("test_fraction", "val_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"Protocol.{name} must be in (0, 1), got {getattr(self, name)!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"Protocol.learning_rate must be > 0, got {self.learning_rate!r}.")
        if (
            isinstance(self.canvas, bool)
            or not isinstance(self.canvas, int)
            or self.canvas < 0
            or (self.canvas and (self.canvas < self.image_size or self.canvas % 4))
        ):
            raise ValueError(
                f"Protocol.canvas must be 0 (no canvas) or a multiple of 4 >= image_size "
                f"({self.image_size}), got {self.canvas!r}."
            )
        if not (isinstance(self.noise, (int, float)) and 0.0 <= self.noise < float("inf")):
            raise ValueError(f"Protocol.noise must be a finite number >= 0, got {self.noise!r}.")
        if (
            isinstance(self.eval_shift, bool)
            or not isinstance(self.eval_shift, int)
            or not 0 <= self.eval_shift < input_size(self)
        ):
            raise ValueError(
                f"Protocol.eval_shift must be an integer in [0, image_size), got {self.eval_shift!r}."
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def input_size(protocol: Protocol) -> int:
    """Side of the network's input images: the canvas if there is one, else ``image_size``."""
    return protocol.canvas or protocol.image_size


PROTOCOL = Protocol()


# ----------------------------------------------------------------------------- cells
def parse_cell(cell) -> NB201Cell:
    """An ``NB201Cell`` from a cell, its ``|op~0|+|op~0|op~1|+|...|`` string or 6 op names.

    Raises ``ValueError`` (``SpaceError``) naming the problem for anything else.
    """
    if isinstance(cell, NB201Cell):
        return cell
    if isinstance(cell, str):
        try:
            return NB201Cell.parse(cell)
        except (SpaceError, ValueError) as e:
            raise SpaceError(f"Not a NAS-Bench-201 cell string: {cell!r} ({e})") from None
    if isinstance(cell, (list, tuple)):
        return NB201Cell(cell)
    raise SpaceError(
        f"A NAS-Bench-201 cell must be an NB201Cell, its string or 6 op names; got {type(cell).__name__}."
    )


def cell_mask(cell) -> np.ndarray:
    """(6, 5) float32 0/1 mask: row = edge in ``EDGES`` order, column = op in ``NB201_OPS`` order."""
    c = parse_cell(cell)
    m = np.zeros((len(EDGES), NUM_OPS), np.float32)
    for e, op in enumerate(c.ops):
        if op != "none":
            m[e, _OP_INDEX[op]] = 1.0
    return m


# ----------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=4)
def load_data(protocol: Protocol = PROTOCOL) -> dict:
    """The protocol's splits as float32 arrays in [0, 1]: ``x_train`` (n, s, s, 1), ``y_train`` int32, ..."""
    from keras_nas.data import load_dataset

    ds = load_dataset(
        "digits",
        image_size=protocol.image_size,
        val_fraction=protocol.val_fraction,
        test_fraction=protocol.test_fraction,
        seed=protocol.split_seed,
    )
    out = {}
    for split in ("train", "val", "test"):
        x = getattr(ds, f"x_{split}").astype(np.float32) / np.float32(ds.scale)
        if x.shape[1:3] != (protocol.image_size, protocol.image_size):
            import tensorflow as tf  # the same bilinear resize as keras_nas.data's pipeline

            x = tf.image.resize(
                x, (protocol.image_size, protocol.image_size), method="bilinear"
            ).numpy()
        out[f"x_{split}"], out[f"y_{split}"] = x, getattr(ds, f"y_{split}").astype(np.int32)
    if protocol.train_images:
        if protocol.train_images > len(out["y_train"]):
            raise ValueError(
                f"Protocol.train_images={protocol.train_images} exceeds the {len(out['y_train'])} "
                "training images of the split."
            )
        keep = np.random.default_rng(protocol.split_seed).permutation(len(out["y_train"]))[
            : protocol.train_images
        ]
        out["x_train"], out["y_train"] = out["x_train"][keep], out["y_train"][keep]
    if protocol.canvas or protocol.noise or protocol.train_copies > 1 or protocol.test_copies > 1:
        for k, split in enumerate(("train", "val", "test")):
            copies = protocol.train_copies if split == "train" else protocol.test_copies
            rng = np.random.default_rng(
                [protocol.split_seed, 7, k]
            )  # fixed: a dataset, not an augmentation
            out[f"x_{split}"], out[f"y_{split}"] = _placed(
                out[f"x_{split}"], out[f"y_{split}"], copies, protocol, rng
            )
    for v in out.values():
        v.setflags(write=False)
    return out


def _placed(x: np.ndarray, y: np.ndarray, copies: int, protocol: Protocol, rng) -> tuple:
    """``copies`` versions of every image, each at a random offset on the canvas plus noise (copy-major)."""
    size, s = input_size(protocol), protocol.image_size
    n = len(y)
    xs = np.zeros((copies, n, size, size, x.shape[-1]), np.float32)
    for c in range(copies):
        off = rng.integers(0, size - s + 1, size=(n, 2))
        for i in range(n):
            xs[c, i, off[i, 0] : off[i, 0] + s, off[i, 1] : off[i, 1] + s] = x[i]
    if protocol.noise:
        xs += rng.normal(0.0, protocol.noise, xs.shape).astype(np.float32)
    return xs.reshape((copies * n, size, size, x.shape[-1])), np.tile(y, copies)


def shifted(x: np.ndarray, pixels: int) -> np.ndarray:
    """``x`` (n, h, w, c) shifted by ``pixels`` down, up, right and left (zero fill): (4n, h, w, c)."""
    p = int(pixels)
    out = np.zeros((4,) + x.shape, x.dtype)
    out[0, :, p:] = x[:, :-p]
    out[1, :, :-p] = x[:, p:]
    out[2, :, :, p:] = x[:, :, :-p]
    out[3, :, :, :-p] = x[:, :, p:]
    return out.reshape((-1,) + x.shape[1:])


def steps_per_epoch(protocol: Protocol = PROTOCOL) -> int:
    n = len(load_data(protocol)["y_train"])
    if n < protocol.batch_size:
        raise ValueError(f"{n} training images are fewer than one batch of {protocol.batch_size}.")
    return n // protocol.batch_size


def batch_order(seed: int, protocol: Protocol = PROTOCOL) -> np.ndarray:
    """(epochs * steps_per_epoch, batch_size) int32 training-image indices for ``seed``."""
    n = len(load_data(protocol)["y_train"])
    spe = steps_per_epoch(protocol)
    rng = np.random.default_rng([int(seed), 1])  # stream 1: data order (stream 0: weights)
    rows = [
        rng.permutation(n)[: spe * protocol.batch_size].reshape(spe, protocol.batch_size)
        for _ in range(protocol.epochs)
    ]
    return np.concatenate(rows).astype(np.int32)
