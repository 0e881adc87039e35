"""Learning check for transfer heads: NAS-FPN/RetinaNet detection and DeepLabv3+ segmentation on CPU.

Trains both on the synthetic shapes data (keras_nas.transfer.synthetic: bright rectangles
and discs on noise, class = shape) with a backbone made of NASNet-A cells (ImageNet
layout, N=1) or a plain conv net, and compares held-out mAP@0.5 and mean IoU with
chance baselines:

* detection chance: random boxes (sizes drawn from the training boxes, 10 per image)
  with random classes and scores, and the untrained model;
* segmentation chance: predicting all background (the majority class) and uniform
  random labels per pixel.

    python benchmarks/transfer_learning.py                      # NASNet-A cell backbone
    python benchmarks/transfer_learning.py --backbone conv      # faster stand-in backbone
    python benchmarks/transfer_learning.py --json results.json

Results are recorded in benchmarks/README.md ("transfer" section).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def make_backbone(kind, image_size, levels, filters, name, bn_momentum=None):
    from keras_nas import zoo
    from keras_nas.transfer import backbone

    if kind == "conv":
        return backbone.conv_backbone(
            (image_size, image_size, 3), filters, levels=levels, name=name
        )
    # The ImageNet layout's default BN momentum (0.9997) is meant for 100k+ steps; a run of a
    # few hundred steps leaves the moving statistics at their initial values, so pass a lower one.
    kw = {} if bn_momentum is None else {"bn_momentum": bn_momentum}
    return backbone.cell_backbone(
        zoo.NASNET_A,
        (image_size, image_size, 3),
        num_cells=1,
        filters=filters,
        levels=levels,
        name=name,
        **kw,
    )


def random_detections(gt_boxes, gt_classes, num_classes, image_size, per_image, rng):
    sizes = gt_boxes[gt_classes >= 0]
    hs, ws = sizes[:, 2] - sizes[:, 0], sizes[:, 3] - sizes[:, 1]
    n = len(gt_boxes)
    idx = rng.integers(0, len(hs), (n, per_image))
    h, w = hs[idx], ws[idx]
    y0 = rng.random((n, per_image)) * (image_size - h)
    x0 = rng.random((n, per_image)) * (image_size - w)
    return {
        "boxes": np.stack([y0, x0, y0 + h, x0 + w], -1),
        "scores": rng.random((n, per_image)),
        "classes": rng.integers(0, num_classes, (n, per_image)),
        "num_detections": np.full(n, per_image),
    }


def run_detection(args, train, val):
    import keras

    from keras_nas.transfer import retinanet

    bb = make_backbone(
        args.backbone, args.image_size, (3, 4, 5), args.filters, "det_backbone", args.bn_momentum
    )
    model = retinanet.RetinaNet(
        bb,
        train.num_classes,
        min_level=3,
        max_level=7,
        fpn_filters=args.fpn_filters,
        num_repeats=args.repeats,
        head_filters=args.fpn_filters,
        head_convs=2,
        anchor_scale=2.0,
        score_threshold=0.05,
    )
    rng = np.random.default_rng(args.seed)
    chance = retinanet.mean_average_precision(
        random_detections(val.boxes, val.classes, val.num_classes, args.image_size, 10, rng),
        val.boxes,
        val.classes,
        val.num_classes,
    )
    untrained = retinanet.mean_average_precision(
        model.predict(val.images, batch_size=32, verbose=0), val.boxes, val.classes, val.num_classes
    )
    steps = args.epochs * (len(train) // args.batch_size)
    lr = keras.optimizers.schedules.CosineDecay(args.lr, steps, warmup_target=None)
    model.compile(keras.optimizers.Adam(lr, clipnorm=10.0))
    t = time.time()
    hist = model.fit(
        train.images,
        {"boxes": train.boxes, "classes": train.classes},
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=2 if args.verbose else 0,
    )
    secs = time.time() - t
    pred = model.predict(val.images, batch_size=32, verbose=0)
    return {
        "map50": retinanet.mean_average_precision(pred, val.boxes, val.classes, val.num_classes),
        "map50_random_boxes": chance,
        "map50_untrained": untrained,
        "loss_first_epoch": float(hist.history["loss"][0]),
        "loss_last_epoch": float(hist.history["loss"][-1]),
        "params": int(model.count_params()),
        "train_seconds": round(secs, 1),
    }


def run_segmentation(args, train, val):
    import keras

    from keras_nas.transfer import deeplab

    n_cls = train.num_classes + 1
    bb = make_backbone(
        args.backbone, args.image_size, (2, 3, 4), args.filters, "seg_backbone", args.bn_momentum
    )
    model = deeplab.build_deeplab(
        bb,
        n_cls,
        aspp_filters=args.fpn_filters,
        rates=(1, 2, 3),
        decoder_filters=args.fpn_filters,
        low_level_filters=16,
    )
    steps = args.epochs * (len(train) // args.batch_size)
    deeplab.compile_segmenter(
        model, n_cls, keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(args.lr, steps))
    )

    def miou(pred_labels):
        m = keras.metrics.MeanIoU(n_cls)
        m.update_state(val.masks, pred_labels)
        return float(m.result())

    rng = np.random.default_rng(args.seed)
    t = time.time()
    hist = model.fit(
        train.images,
        train.masks,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=2 if args.verbose else 0,
    )
    secs = time.time() - t
    logits = model.predict(val.images, batch_size=32, verbose=0)
    return {
        "miou": miou(logits.argmax(-1)),
        "miou_all_background": miou(np.zeros_like(val.masks)),
        "miou_uniform_random": miou(rng.integers(0, n_cls, val.masks.shape)),
        "pixel_accuracy": float((logits.argmax(-1) == val.masks).mean()),
        "background_fraction": float((val.masks == 0).mean()),
        "loss_first_epoch": float(hist.history["loss"][0]),
        "loss_last_epoch": float(hist.history["loss"][-1]),
        "params": int(model.count_params()),
        "train_seconds": round(secs, 1),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", choices=("cell", "conv"), default="cell")
    p.add_argument("--task", choices=("both", "detection", "segmentation"), default="both")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--train", type=int, default=768)
    p.add_argument("--val", type=int, default=128)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument(
        "--filters",
        type=int,
        default=8,
        help="F of the cell backbone (or base width of the conv one)",
    )
    p.add_argument("--fpn-filters", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2, help="NAS-FPN repeats")
    p.add_argument(
        "--bn-momentum",
        type=float,
        default=0.9,
        help="BN momentum of the cell backbone (build_network's ImageNet default 0.9997 is for long runs)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    import keras

    from keras_nas.transfer import synthetic

    keras.utils.set_random_seed(args.seed)
    train = synthetic.make_shapes(args.train, args.image_size, seed=args.seed)
    val = synthetic.make_shapes(args.val, args.image_size, seed=args.seed + 1000)
    results = {"config": vars(args)}
    if args.task in ("both", "detection"):
        results["detection"] = run_detection(args, train, val)
        print("detection", json.dumps(results["detection"]), flush=True)
    if args.task in ("both", "segmentation"):
        results["segmentation"] = run_segmentation(args, train, val)
        print("segmentation", json.dumps(results["segmentation"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
