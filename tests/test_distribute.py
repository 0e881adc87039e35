"""Strategy resolution, batch scaling, TPU absence, and MirroredStrategy over 2 logical CPUs.

Logical CPU devices can only be created before TensorFlow initialises, so the
multi-replica training runs in a fresh subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from _timing import scaled

from keras_nas import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_default_and_auto_without_accelerators(monkeypatch):
    import tensorflow as tf

    for v in distribute.TPU_ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    default = distribute.resolve_strategy("default")
    assert default is tf.distribute.get_strategy()
    if not tf.config.list_logical_devices("GPU") and not distribute.tpu_present():
        assert distribute.resolve_strategy("auto") is default
    assert distribute.global_batch_size(32, default) == 32
    assert distribute.scaled_learning_rate(0.1, 64, default, base_batch=256) == pytest.approx(0.025)
    with pytest.raises(ValueError, match=">= 1"):
        distribute.global_batch_size(0)


def test_bad_names_are_explained():
    with pytest.raises(distribute.StrategyError, match="Unknown strategy"):
        distribute.resolve_strategy("gpu-please")
    with pytest.raises(distribute.StrategyError, match="cpu:N"):
        distribute.resolve_strategy("cpu:two")


def test_tpu_absent_fails_fast_and_clearly(monkeypatch):
    for v in distribute.TPU_ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    if distribute.tpu_present():
        pytest.skip("a TPU seems attached here")
    t = time.time()
    with pytest.raises(distribute.StrategyError, match="no TPU is visible"):
        distribute.resolve_strategy("tpu")
    assert time.time() - t < 5


def test_unreachable_tpu_address_times_out():
    t = time.time()
    with pytest.raises(distribute.StrategyError, match="TPU"):
        distribute.resolve_strategy("tpu", tpu_address="grpc://127.0.0.1:1", tpu_timeout_s=10)
    assert time.time() - t < 30


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from keras_nas import distribute
    strategy = distribute.resolve_strategy("cpu:2")  # first thing: before TF initialises
    import keras, numpy as np
    from keras_nas.transfer import backbone, deeplab, retinanet, synthetic

    out = {"replicas": strategy.num_replicas_in_sync}
    batch = distribute.global_batch_size(2, strategy)
    out["global_batch"] = batch
    data = synthetic.make_shapes(2 * batch, 32, max_objects=2, min_size=8, max_size=14, seed=0)
    labels = (data.classes[:, 0] >= 1).astype("int32")

    with strategy.scope():
        bb = backbone.conv_backbone((32, 32, 3), 4, levels=(2, 3, 4, 5))
        feats = keras.layers.GlobalAveragePooling2D()(bb.outputs[-1])
        clf = keras.Model(bb.inputs, keras.layers.Dense(2)(feats))
        clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    h = clf.fit(data.images, labels, batch_size=batch, epochs=1, verbose=0)
    out["classification_loss"] = h.history["loss"][-1]

    with strategy.scope():
        c345 = backbone.conv_backbone((32, 32, 3), 4, levels=(3, 4, 5), name="det_backbone")
        det = retinanet.RetinaNet(c345, 2, fpn_filters=8, num_repeats=1, head_filters=8, head_convs=1, anchor_scale=2.0)
        det.compile(keras.optimizers.Adam(1e-3))
    h = det.fit(data.images, {"boxes": data.boxes, "classes": data.classes}, batch_size=batch, epochs=1, verbose=0)
    out["detection_loss"] = h.history["loss"][-1]
    out["detections_shape"] = list(det.predict(data.images[:batch], verbose=0)["boxes"].shape)

    with strategy.scope():
        c23 = backbone.conv_backbone((32, 32, 3), 4, levels=(2, 3), name="seg_backbone")
        seg = deeplab.build_deeplab(c23, 3, aspp_filters=8, rates=(1, 2), decoder_filters=8, low_level_filters=4)
        deeplab.compile_segmenter(seg, 3)
    h = seg.fit(data.images, data.masks, batch_size=batch, epochs=1, verbose=0)
    out["segmentation_loss"] = h.history["loss"][-1]
    out["segmentation_miou"] = h.history["mean_iou"][-1]

    if "--tuner" in sys.argv:
        import keras_tuner as kt

        def build(hp):
            m = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(hp.Choice("f", [2, 4]), 3),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
            m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            return m

        tuner = kt.RandomSearch(build, objective="loss", max_trials=1, distribution_strategy=strategy,
                                directory=sys.argv[1], project_name="t", overwrite=True)
        tuner.search(data.images, labels, batch_size=batch, epochs=1, verbose=0)
        out["tuner_trials"] = len(tuner.oracle.trials)
    print("RESULT " + json.dumps(out))
    """
)


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    args = [sys.executable, "-c", SCRIPT, str(tmp_path)]
    try:
        import keras_tuner  # noqa: F401

        args.append("--tuner")
    except ImportError:
        pass
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=scaled(420), cwd=ROOT
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["replicas"] == 2 and out["global_batch"] == 4
    for k in ("classification_loss", "detection_loss", "segmentation_loss"):
        assert out[k] == out[k] and out[k] > 0, out  # finite, positive
    assert out["detections_shape"] == [4, 100, 4]
    if "--tuner" in args:
        assert out["tuner_trials"] == 1
