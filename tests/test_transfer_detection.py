"""RetinaNet head: anchors, target encoding, box coding, training, predict, save/load, mAP."""

import keras
import numpy as np
import pytest

from keras_nas.transfer import backbone, retinanet, synthetic


def test_anchor_grid():
    a = retinanet.generate_anchors((64, 64), {3: (8, 8), 4: (4, 4)}, anchor_scale=4.0)
    assert a.shape == ((64 + 16) * 9, 4)
    first = a[:9]  # level 3, cell (0, 0): centred at (4, 4)
    np.testing.assert_allclose((first[:, 0] + first[:, 2]) / 2, 4.0)
    np.testing.assert_allclose(first[1, 2] - first[1, 0], 32.0)  # scale 0, ratio 1: 4 * 2**3


def test_encode_targets_matches_and_codes_boxes():
    anchors = np.array(
        [[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 9, 10], [40, 40, 60, 60]], "float32"
    )
    boxes = np.array([[[0, 0, 10, 10], [42, 41, 60, 62], [-1, -1, -1, -1]]], "float32")
    classes = np.array([[1, 0, -1]], "int32")
    cls, w, deltas, pos = [
        keras.ops.convert_to_numpy(t) for t in retinanet.encode_targets(anchors, boxes, classes, 2)
    ]
    np.testing.assert_array_equal(pos[0], [1, 0, 1, 1])  # IoU 1, 0, 0.9, 0.69
    np.testing.assert_array_equal(cls[0].argmax(-1)[[0, 2, 3]], [1, 1, 0])
    np.testing.assert_array_equal(cls[0, 1], [0, 0])
    np.testing.assert_array_equal(w[0], [1, 1, 1, 1])
    np.testing.assert_allclose(deltas[0, 0], 0.0, atol=1e-5)
    decoded = keras.utils.bounding_boxes.decode_deltas_to_boxes(
        anchors, deltas, anchor_format="yxyx", box_format="yxyx", variance=retinanet.BOX_VARIANCE
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(decoded)[0, 3], boxes[0, 1], atol=1e-3)


def test_small_object_gets_its_best_anchor():
    anchors = np.array([[0, 0, 32, 32], [32, 32, 64, 64]], "float32")
    boxes = np.array([[[36, 36, 44, 44]]], "float32")  # IoU 0.0625 with anchor 1
    _, _, _, pos = retinanet.encode_targets(anchors, boxes, np.array([[0]]), 1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(pos)[0], [0, 1])


def _tiny_detector(**kw):
    bb = backbone.conv_backbone((64, 64, 3), 8, levels=(3, 4, 5))
    return retinanet.RetinaNet(
        bb,
        2,
        min_level=3,
        max_level=7,
        fpn_filters=16,
        num_repeats=1,
        head_filters=16,
        head_convs=1,
        anchor_scale=2.0,
        **kw,
    )


def test_retinanet_trains_predicts_and_round_trips(tmp_path):
    data = synthetic.make_shapes(16, 64, seed=1)
    model = _tiny_detector()
    out = model(data.images[:2])
    n_anchors = model.anchors.shape[0]
    assert out["classification"].shape == (2, n_anchors, 2) and out["box"].shape == (
        2,
        n_anchors,
        4,
    )
    model.compile(keras.optimizers.Adam(3e-3))
    y = {"boxes": data.boxes, "classes": data.classes}
    losses = [float(model.train_on_batch(data.images, y)) for _ in range(8)]
    assert losses[-1] < 0.8 * losses[0], losses
    pred = model.predict(data.images[:4], verbose=0)
    assert pred["boxes"].shape == (4, 100, 4) and pred["scores"].shape == (4, 100)
    assert pred["classes"].dtype == np.int32 and pred["num_detections"].shape == (4,)
    path = tmp_path / "det.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, retinanet.RetinaNet)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(data.images[:2])["box"]),
        keras.ops.convert_to_numpy(model(data.images[:2])["box"]),
        atol=1e-5,
    )
    np.testing.assert_allclose(loaded.anchors, model.anchors)


def test_mean_average_precision():
    gt_boxes = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]], "float32")
    gt_classes = np.array([[0, 1]])
    perfect = {
        "boxes": gt_boxes,
        "scores": np.array([[0.9, 0.8]]),
        "classes": np.array([[0, 1]]),
        "num_detections": np.array([2]),
    }
    assert retinanet.mean_average_precision(perfect, gt_boxes, gt_classes, 2) == pytest.approx(1.0)
    wrong_class = dict(perfect, classes=np.array([[1, 0]]))
    assert retinanet.mean_average_precision(wrong_class, gt_boxes, gt_classes, 2) == 0.0
    # one hit and one duplicate (false positive ranked first): AP of class 0 = 0.5 after interpolation
    dup = {
        "boxes": np.array([[[1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]]], "float32"),
        "scores": np.array([[0.95, 0.9, 0.8]]),
        "classes": np.array([[0, 0, 1]]),
        "num_detections": np.array([3]),
    }
    assert retinanet.mean_average_precision(dup, gt_boxes, gt_classes, 2) == pytest.approx(1.0)
    far = dict(
        dup, boxes=np.array([[[40, 40, 50, 50], [0, 0, 10, 10], [20, 20, 30, 30]]], "float32")
    )
    assert retinanet.mean_average_precision(far, gt_boxes, gt_classes, 2) == pytest.approx(
        (0.5 + 1.0) / 2
    )
