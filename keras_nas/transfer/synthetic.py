"""Synthetic shapes datasets for detection and segmentation checks (numpy only).

Why: the detector and segmenter must be shown to learn on CPU in minutes, without
downloading COCO or VOC. Each image is uniform noise with a few bright, randomly coloured
rectangles (class 0) and discs (class 1); the class is the shape, not the colour. The
same draw gives boxes (``yxyx`` pixels, padded with -1), class ids (padded with -1) and a
per-pixel mask (0 = background, 1 + class id for objects; later objects paint over
earlier ones).
"""

from __future__ import annotations

import dataclasses

import numpy as np

CLASS_NAMES = ("rectangle", "disc")


@dataclasses.dataclass
class ShapesData:
    images: np.ndarray  # (n, H, W, 3) float32 in [0, 1]
    boxes: np.ndarray  # (n, max_objects, 4) float32 yxyx pixels, -1 padding
    classes: np.ndarray  # (n, max_objects) int32, -1 padding
    masks: np.ndarray  # (n, H, W) int32, 0 background, 1 + class id

    def __len__(self):
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(CLASS_NAMES)


def make_shapes(
    n: int,
    image_size: int = 64,
    max_objects: int = 3,
    min_size: int = 12,
    max_size: int = 28,
    noise: float = 0.25,
    seed: int = 0,
) -> ShapesData:
    """Draw ``n`` images with 1..``max_objects`` shapes of side/diameter in [min_size, max_size]."""
    if max_size >= image_size:
        raise ValueError(f"max_size ({max_size}) must be smaller than image_size ({image_size}).")
    rng = np.random.default_rng(seed)
    H = W = int(image_size)
    images = (rng.random((n, H, W, 3)) * noise).astype("float32")
    boxes = -np.ones((n, max_objects, 4), "float32")
    classes = -np.ones((n, max_objects), "int32")
    masks = np.zeros((n, H, W), "int32")
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(n):
        k = rng.integers(1, max_objects + 1)
        for j in range(k):
            c = int(rng.integers(0, 2))
            s = int(rng.integers(min_size, max_size + 1))
            y0 = int(rng.integers(0, H - s + 1))
            x0 = int(rng.integers(0, W - s + 1))
            if c == 0:
                h = s
                w = int(
                    rng.integers(max(min_size // 2, s // 2), s + 1)
                )  # rectangles of varied aspect
                x0 = min(x0, W - w)
                region = (yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)
            else:
                h = w = s
                r = s / 2.0
                region = (yy + 0.5 - (y0 + r)) ** 2 + (xx + 0.5 - (x0 + r)) ** 2 <= r * r
            colour = 0.55 + 0.45 * rng.random(3)
            images[i][region] = colour
            masks[i][region] = c + 1
            boxes[i, j] = (y0, x0, y0 + h, x0 + w)
            classes[i, j] = c
    return ShapesData(images, boxes, classes, masks)
