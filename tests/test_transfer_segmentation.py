"""DeepLabv3+ head, mean IoU, and cell backbones' multi-level features."""

import keras
import numpy as np
import pytest

from keras_nas.transfer import backbone, deeplab, synthetic


def test_synthetic_shapes_are_consistent():
    d = synthetic.make_shapes(8, 48, max_objects=2, min_size=10, max_size=20, seed=3)
    assert d.images.shape == (8, 48, 48, 3) and d.masks.shape == (8, 48, 48)
    assert set(np.unique(d.masks)) <= {0, 1, 2}
    for i in range(8):
        for box, c in zip(d.boxes[i], d.classes[i]):
            if c < 0:
                assert (box == -1).all()
                continue
            y0, x0, y1, x1 = box.astype(int)
            assert 0 <= y0 < y1 <= 48 and 0 <= x0 < x1 <= 48
            assert (d.images[i, y0:y1, x0:x1].max(-1) > 0.5).any()


def test_deeplab_trains_and_round_trips(tmp_path):
    data = synthetic.make_shapes(16, 64, seed=2)
    bb = backbone.conv_backbone((64, 64, 3), 8, levels=(2, 3, 4))
    model = deeplab.build_deeplab(
        bb, 3, aspp_filters=16, rates=(1, 2, 3), decoder_filters=16, low_level_filters=8
    )
    assert model.output.shape == (None, 64, 64, 3)
    names = {l.name for l in model.layers}
    assert {"aspp_1x1", "aspp_rate2", "aspp_pool", "decoder_low_proj", "decoder_up"} <= names
    deeplab.compile_segmenter(model, 3, keras.optimizers.Adam(3e-3))
    losses = [float(model.train_on_batch(data.images, data.masks)[0]) for _ in range(6)]
    assert losses[-1] < 0.8 * losses[0], losses
    path = tmp_path / "seg.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(data.images[:2], verbose=0),
        model.predict(data.images[:2], verbose=0),
        atol=1e-5,
    )


def test_mean_iou_metric_takes_logits():
    m = deeplab.mean_iou_metric(2)
    y_true = np.array([[0, 0, 1, 1]])
    logits = np.array([[[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]])  # last pixel wrong
    m.update_state(y_true, logits)
    # class 0: inter 2, union 3; class 1: inter 1, union 2
    assert float(m.result()) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_bad_levels_are_explained():
    bb = backbone.conv_backbone((32, 32, 3), 4, levels=(2, 3))
    with pytest.raises(ValueError, match="pick one of them"):
        deeplab.build_deeplab(bb, 2, high_level=5)


def test_cell_backbone_levels_feed_both_heads():
    from keras_nas import zoo
    from keras_nas.transfer import retinanet

    bb = backbone.cell_backbone(
        zoo.NASNET_A, (64, 64, 3), num_cells=1, filters=4, levels=(2, 3, 4, 5)
    )
    assert backbone.feature_levels(bb) == [2, 3, 4, 5]
    assert [tuple(o.shape[1:3]) for o in bb.outputs] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    seg = deeplab.build_deeplab(bb, 3, aspp_filters=8, rates=(1, 2), decoder_filters=8)
    x = np.random.default_rng(0).random((1, 64, 64, 3)).astype("float32")
    assert seg(x).shape == (1, 64, 64, 3)
    c345 = keras.Model(bb.inputs, bb.outputs[1:])
    det = retinanet.RetinaNet(c345, 2, fpn_filters=8, num_repeats=1, head_filters=8, head_convs=1)
    assert det(x)["box"].shape == (1, det.anchors.shape[0], 4)
