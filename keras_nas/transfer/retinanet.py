"""RetinaNet-style detector on a multi-level backbone (optionally with a NAS-FPN decoder).

Why: NAS-FPN was evaluated as the pyramid of RetinaNet (Lin et al. 2017); transferring a
searched cell to detection means backbone -> pyramid -> RetinaNet head.

What comes from Keras/TF and what is written here:

* Keras: ``keras.losses.BinaryFocalCrossentropy`` (focal loss, alpha 0.25 gamma 2),
  ``keras.losses.Huber`` (box loss), ``keras.utils.bounding_boxes.compute_iou``,
  ``encode_box_to_deltas`` and ``decode_deltas_to_boxes`` (box coding, center_yxhw
  with variance 0.1/0.1/0.2/0.2). Layers are stock Keras layers (plus NAS-FPN's small
  ``GlobalAttention``).
* TensorFlow: ``tf.image.combined_non_max_suppression`` in the predict path (Keras 3 has
  no NMS op; this module therefore needs the TF backend for ``predict``).
* Written here (no maintained Keras-core equivalent; keras-hub has some but pulls
  tensorflow-text/kagglehub/tokenizers): the multi-level anchor grid (a dozen numpy
  lines), anchor-to-ground-truth matching inside ``compute_loss`` (IoU >= 0.5 positive,
  < 0.4 background, in between ignored, plus each object's best anchor forced positive as
  Detectron2's RetinaNet does so small objects are never unmatched), and a VOC-style
  mAP@0.5 evaluator in numpy.

Training data: ``model.fit(images, {"boxes": (B, M, 4) yxyx pixels, "classes": (B, M)})``
with -1 padding; targets are encoded per batch in the graph, so no label pipeline is needed.
``model.predict(images)`` returns ``{"boxes", "scores", "classes", "num_detections"}``.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np

from keras_nas.transfer import nasfpn as nasfpn_lib

BOX_VARIANCE = (0.1, 0.1, 0.2, 0.2)


# -- anchors -----------------------------------------------------------------------------
def anchors_per_location(
    num_scales: int = 3, aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0)
) -> int:
    return int(num_scales) * len(aspect_ratios)


def generate_anchors(
    image_size: Sequence[int],
    feature_sizes: dict,
    num_scales: int = 3,
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    anchor_scale: float = 4.0,
) -> np.ndarray:
    """RetinaNet anchors, ``(num_anchors, 4)`` yxyx pixels, ordered level, row, column, (scale, ratio).

    Level ``l`` has stride ``2**l`` and base size ``anchor_scale * 2**l``, times
    ``2**(i/num_scales)``; ``aspect_ratio`` is width/height. ``feature_sizes`` maps
    level -> (H, W) of that level's feature map; the order matches the head's outputs.
    """
    out = []
    for level in sorted(feature_sizes):
        fh, fw = feature_sizes[level]
        stride_y, stride_x = image_size[0] / fh, image_size[1] / fw
        shapes = []
        for i in range(num_scales):
            size = anchor_scale * 2**level * 2 ** (i / num_scales)
            for r in aspect_ratios:
                shapes.append((size / math.sqrt(r), size * math.sqrt(r)))  # (h, w)
        shapes = np.array(shapes, "float32")
        cy = (np.arange(fh, dtype="float32") + 0.5) * stride_y
        cx = (np.arange(fw, dtype="float32") + 0.5) * stride_x
        cy, cx = np.meshgrid(cy, cx, indexing="ij")
        centers = np.stack([cy, cx], -1).reshape(-1, 1, 2)
        half = shapes[None, :, :] / 2
        boxes = np.concatenate([centers - half, centers + half], -1).reshape(-1, 4)
        out.append(boxes)
    return np.concatenate(out, 0).astype("float32")


# -- target encoding ---------------------------------------------------------------------
def encode_targets(
    anchors, gt_boxes, gt_classes, num_classes, positive_iou=0.5, negative_iou=0.4, force_best=True
):
    """Match anchors to objects; return (class one-hot, class weights, box deltas, positive mask).

    ``gt_boxes`` (B, M, 4) yxyx pixels, ``gt_classes`` (B, M) with -1 for padding.
    Shapes out: (B, A, C), (B, A), (B, A, 4), (B, A).
    """
    ops = keras.ops
    bb = keras.utils.bounding_boxes
    gt_boxes = ops.cast(gt_boxes, "float32")
    gt_classes = ops.cast(gt_classes, "int32")
    valid = ops.greater_equal(gt_classes, 0)  # (B, M)
    iou = bb.compute_iou(anchors, gt_boxes, bounding_box_format="yxyx")  # (B, A, M)
    iou = ops.where(valid[:, None, :], iou, -1.0)
    if force_best:
        best = ops.max(iou, axis=1, keepdims=True)  # (B, 1, M): each object's best anchor
        forced = ops.logical_and(ops.greater_equal(iou, best), ops.greater(best, 0.0))
        iou = ops.where(forced, 2.0, iou)
    max_iou = ops.max(iou, axis=2)  # (B, A)
    matched = ops.argmax(iou, axis=2)  # (B, A)
    positive = ops.greater_equal(max_iou, positive_iou)
    negative = ops.less(max_iou, negative_iou)
    matched_cls = ops.take_along_axis(gt_classes, matched, axis=1)
    cls_onehot = ops.one_hot(ops.where(positive, matched_cls, -1), num_classes)  # -1 -> all zeros
    cls_weight = ops.cast(ops.logical_or(positive, negative), "float32")
    matched_boxes = ops.take_along_axis(gt_boxes, ops.repeat(matched[..., None], 4, axis=2), axis=1)
    deltas = bb.encode_box_to_deltas(
        anchors, matched_boxes, anchor_format="yxyx", box_format="yxyx", variance=BOX_VARIANCE
    )
    pos = ops.cast(positive, "float32")
    deltas = deltas * pos[..., None]
    return cls_onehot, cls_weight, deltas, pos


# -- model -------------------------------------------------------------------------------
def _feature_levels(image_size, features) -> dict:
    """Map each backbone feature to its pyramid level log2(image / feature) from static shapes."""
    out = {}
    for f in features:
        h = f.shape[1]
        if h is None:
            raise ValueError(
                "backbone features need static spatial shapes; give the backbone a fixed input size."
            )
        level = int(round(math.log2(image_size[0] / h)))
        out[level] = f
    return out


@keras.saving.register_keras_serializable(package="keras_nas")
class RetinaNet(keras.Model):
    """Backbone -> (NAS-FPN decoder) -> RetinaNet class/box subnets, with loss and NMS decoding.

    ``backbone``: a Keras model from an image to a list of feature maps whose strides are
    powers of two (e.g. C3, C4, C5 at 8, 16, 32). Levels ``min_level..max_level`` above the
    backbone's deepest come from the decoder (P6, P7). ``decoder="nasfpn"`` uses
    :func:`keras_nas.transfer.nasfpn.nasfpn_decoder` with ``decoder_spec``;
    ``decoder=None`` uses 1x1 projections (and max-pooled extra levels) only.
    """

    def __init__(
        self,
        backbone,
        num_classes: int,
        min_level: int = 3,
        max_level: int = 7,
        decoder: str | None = "nasfpn",
        decoder_spec=None,
        fpn_filters: int = 256,
        num_repeats: int = 5,
        head_filters: int = 256,
        head_convs: int = 4,
        num_scales: int = 3,
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        anchor_scale: float = 4.0,
        positive_iou: float = 0.5,
        negative_iou: float = 0.4,
        box_loss_weight: float = 1.0,
        max_detections: int = 100,
        score_threshold: float = 0.05,
        nms_iou: float = 0.5,
        **kwargs,
    ):
        L = keras.layers
        image_shape = tuple(backbone.inputs[0].shape[1:])
        if None in image_shape[:2]:
            raise ValueError(
                "RetinaNet needs a backbone with a fixed input size (anchors are precomputed)."
            )
        spec = tuple(nasfpn_lib.NASFPN_SPEC if decoder_spec is None else decoder_spec)
        images = keras.Input(image_shape, name="images")
        feats = backbone(images)
        if not isinstance(feats, (list, tuple)):
            feats = [feats]
        levels = _feature_levels(image_shape, feats)
        if decoder == "nasfpn":
            pyramid = nasfpn_lib.nasfpn_decoder(
                levels,
                spec,
                filters=fpn_filters,
                num_repeats=num_repeats,
                min_level=min_level,
                max_level=max_level,
            )
        elif decoder is None:
            pyramid = {}
            for lv in range(min_level, max_level + 1):
                if lv in levels:
                    pyramid[lv] = L.Conv2D(fpn_filters, 1, name=f"fpn_proj_p{lv}")(levels[lv])
                else:
                    if lv - 1 not in pyramid:
                        raise ValueError(f"backbone lacks level {lv - 1}; has {sorted(levels)}.")
                    pyramid[lv] = L.MaxPooling2D(2, padding="same", name=f"fpn_pool_p{lv}")(
                        pyramid[lv - 1]
                    )
        else:
            raise ValueError(f"decoder must be 'nasfpn' or None, got {decoder!r}.")
        k = anchors_per_location(num_scales, aspect_ratios)
        prior = -math.log(
            (1 - 0.01) / 0.01
        )  # focal-loss prior: initial foreground probability 0.01
        cls_convs = [
            L.Conv2D(head_filters, 3, padding="same", activation="relu", name=f"cls_conv{i}")
            for i in range(head_convs)
        ]
        box_convs = [
            L.Conv2D(head_filters, 3, padding="same", activation="relu", name=f"box_conv{i}")
            for i in range(head_convs)
        ]
        cls_out = L.Conv2D(
            k * num_classes,
            3,
            padding="same",
            name="cls_logits",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            bias_initializer=keras.initializers.Constant(prior),
        )
        box_out = L.Conv2D(
            k * 4,
            3,
            padding="same",
            name="box_deltas",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        )
        cls_list, box_list, feature_sizes = [], [], {}
        for lv in range(min_level, max_level + 1):
            p = pyramid[lv]
            feature_sizes[lv] = (int(p.shape[1]), int(p.shape[2]))
            c, b = p, p
            for conv in cls_convs:
                c = conv(c)
            for conv in box_convs:
                b = conv(b)
            cls_list.append(L.Reshape((-1, num_classes), name=f"cls_flat_p{lv}")(cls_out(c)))
            box_list.append(L.Reshape((-1, 4), name=f"box_flat_p{lv}")(box_out(b)))
        outputs = {
            "classification": L.Concatenate(axis=1, name="classification")(cls_list),
            "box": L.Concatenate(axis=1, name="box")(box_list),
        }
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.image_shape = image_shape
        self.anchors = generate_anchors(
            image_shape[:2], feature_sizes, num_scales, aspect_ratios, anchor_scale
        )
        self._cfg = dict(
            num_classes=num_classes,
            min_level=min_level,
            max_level=max_level,
            decoder=decoder,
            decoder_spec=[list(c[:2]) + [list(c[2]), bool(c[3])] for c in spec],
            fpn_filters=fpn_filters,
            num_repeats=num_repeats,
            head_filters=head_filters,
            head_convs=head_convs,
            num_scales=num_scales,
            aspect_ratios=list(aspect_ratios),
            anchor_scale=anchor_scale,
            positive_iou=positive_iou,
            negative_iou=negative_iou,
            box_loss_weight=box_loss_weight,
            max_detections=max_detections,
            score_threshold=score_threshold,
            nms_iou=nms_iou,
        )
        self.positive_iou, self.negative_iou = positive_iou, negative_iou
        self.box_loss_weight = box_loss_weight
        self.max_detections, self.score_threshold, self.nms_iou = (
            max_detections,
            score_threshold,
            nms_iou,
        )
        self._focal = keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=0.25, gamma=2.0, from_logits=True, reduction="sum"
        )
        self._huber = keras.losses.Huber(delta=1.0, reduction="sum")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Focal loss over all non-ignored anchors plus Huber box loss over positives, per positive."""
        ops = keras.ops
        if y is None:
            return None
        anchors = ops.convert_to_tensor(self.anchors)
        cls_t, cls_w, box_t, pos = encode_targets(
            anchors,
            y["boxes"],
            y["classes"],
            self.num_classes,
            self.positive_iou,
            self.negative_iou,
        )
        num_pos = ops.maximum(ops.sum(pos), 1.0)
        logits = ops.cast(y_pred["classification"], "float32")
        deltas = ops.cast(y_pred["box"], "float32")
        # Keras focal/Huber average over the last axis; multiply back to sums per anchor.
        cls_loss = self._focal(cls_t, logits, sample_weight=cls_w) * self.num_classes / num_pos
        box_loss = self._huber(box_t, deltas, sample_weight=pos) * 4.0 / num_pos
        total = cls_loss + self.box_loss_weight * box_loss
        for extra in self.losses:
            total = total + self._aggregate_additional_loss(extra)
        return total

    def decode(self, outputs):
        """Raw head outputs -> NMS-ed detections (TF's combined_non_max_suppression, per class)."""
        import tensorflow as tf

        bb = keras.utils.bounding_boxes
        anchors = keras.ops.convert_to_tensor(self.anchors)
        boxes = bb.decode_deltas_to_boxes(
            anchors,
            keras.ops.cast(outputs["box"], "float32"),
            anchor_format="yxyx",
            box_format="yxyx",
            variance=BOX_VARIANCE,
        )
        scores = tf.sigmoid(tf.cast(outputs["classification"], tf.float32))
        h, w = self.image_shape[0], self.image_shape[1]
        boxes = tf.clip_by_value(boxes, 0.0, float(max(h, w)))
        nms = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :],
            scores,
            max_output_size_per_class=self.max_detections,
            max_total_size=self.max_detections,
            iou_threshold=self.nms_iou,
            score_threshold=self.score_threshold,
            clip_boxes=False,
        )
        return {
            "boxes": nms.nmsed_boxes,
            "scores": nms.nmsed_scores,
            "classes": tf.cast(nms.nmsed_classes, tf.int32),
            "num_detections": nms.valid_detections,
        }

    def predict_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self.decode(self(x, training=False))

    def get_config(self):
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "name": self.name,
            **self._cfg,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["decoder_spec"] = [
            nasfpn_lib.MergingCell(c[0], c[1], tuple(c[2]), c[3]) for c in config["decoder_spec"]
        ]
        return cls(**config)


# -- evaluation --------------------------------------------------------------------------
def _iou_np(box, boxes):
    y0 = np.maximum(box[0], boxes[:, 0])
    x0 = np.maximum(box[1], boxes[:, 1])
    y1 = np.minimum(box[2], boxes[:, 2])
    x1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def mean_average_precision(
    detections, gt_boxes, gt_classes, num_classes, iou_threshold=0.5
) -> float:
    """VOC-style (all-point interpolated) mAP at ``iou_threshold``, averaged over classes present.

    ``detections``: dict of arrays as returned by ``RetinaNet.predict`` (boxes, scores,
    classes, num_detections); ``gt_boxes`` (N, M, 4) / ``gt_classes`` (N, M), -1 padded.
    """
    aps = []
    for c in range(num_classes):
        recs, n_gt = [], 0
        gts = {}
        for i in range(len(gt_boxes)):
            m = gt_classes[i] == c
            gts[i] = (gt_boxes[i][m], np.zeros(int(m.sum()), bool))
            n_gt += int(m.sum())
        if n_gt == 0:
            continue
        for i in range(len(gt_boxes)):
            k = int(detections["num_detections"][i])
            for b, s, cl in zip(
                detections["boxes"][i][:k],
                detections["scores"][i][:k],
                detections["classes"][i][:k],
            ):
                if int(cl) == c:
                    recs.append((float(s), i, b))
        recs.sort(key=lambda r: -r[0])
        tp = np.zeros(len(recs))
        fp = np.zeros(len(recs))
        for d, (_, i, b) in enumerate(recs):
            boxes, seen = gts[i]
            if len(boxes):
                ious = _iou_np(np.asarray(b), boxes)
                j = int(np.argmax(ious))
                if ious[j] >= iou_threshold and not seen[j]:
                    seen[j] = True
                    tp[d] = 1
                    continue
            fp[d] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / n_gt
        precision = tp / np.maximum(tp + fp, 1e-9)
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        for k in range(len(mpre) - 2, -1, -1):
            mpre[k] = max(mpre[k], mpre[k + 1])
        idx = np.where(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)) if aps else 0.0
