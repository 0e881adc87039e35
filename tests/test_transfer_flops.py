"""Mult-add counter: exact on hand-computable layers, and the NASNet paper's numbers."""

import keras
import numpy as np
import pytest

from keras_nas.transfer.flops import count_mult_adds


def _within(value, target, tol=0.05):
    return abs(value - target) <= tol * target


def test_counts_conv_separable_depthwise_dense_nested_and_shared():
    L = keras.layers
    inner_in = keras.Input((8, 8, 4))
    inner = keras.Model(
        inner_in, L.Conv2D(6, 3, padding="same", name="inner_conv")(inner_in), name="inner"
    )
    shared = L.Conv2D(4, 1, name="shared")
    x_in = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, strides=2, padding="same")(x_in)  # 8x8 out: 64 * 9 * 3 * 4
    x = shared(shared(x))  # called twice: 2 * 64 * 4 * 4
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # 64 * 9 * 4 * 2
    x = L.SeparableConv2D(4, 3, padding="same")(x)  # 64 * (9 * 8 + 8 * 4)
    x = inner(x)  # nested model: 64 * 9 * 4 * 6
    x = L.MaxPooling2D()(x)  # not counted
    x = L.GlobalAveragePooling2D()(x)
    y = L.Dense(5)(x)  # 6 * 5
    model = keras.Model(x_in, y)
    want = (
        64 * 9 * 3 * 4 + 2 * 64 * 16 + 64 * 9 * 4 * 2 + 64 * (9 * 8 + 8 * 4) + 64 * 9 * 4 * 6 + 30
    )
    r = count_mult_adds(model)
    assert r.mult_adds == want
    assert r.params == model.count_params()
    assert r.calls == 7


def test_counts_raw_ops_in_custom_layers_once():
    class RawConv(keras.layers.Layer):
        def build(self, shape):
            self.k = self.add_weight(shape=(3, 3, int(shape[-1]), 5))
            self.w = self.add_weight(shape=(5, 2))

        def call(self, x):
            y = keras.ops.conv(x, self.k, padding="same")
            return keras.ops.matmul(keras.ops.mean(y, axis=(1, 2)), self.w)

    x_in = keras.Input((4, 4, 3))
    model = keras.Model(x_in, RawConv()(x_in))
    assert count_mult_adds(model).mult_adds == 16 * 9 * 3 * 5 + 5 * 2


def test_needs_concrete_shape():
    x_in = keras.Input((None, None, 3))
    model = keras.Model(x_in, keras.layers.Conv2D(2, 1)(x_in))
    with pytest.raises(ValueError, match="input_shape"):
        count_mult_adds(model)
    assert count_mult_adds(model, input_shape=(2, 2, 3)).mult_adds == 4 * 3 * 2


def test_keras_applications_nasnet_mobile_564m():
    r = count_mult_adds(keras.applications.NASNetMobile(weights=None))
    assert _within(r.mult_adds, 564e6), r
    assert r.params == 5_326_716


def test_keras_nas_nasnet_a_mobile_and_large():
    from keras_nas import zoo
    from keras_nas.transfer.imagenet import build_imagenet_network

    mobile = count_mult_adds(build_imagenet_network(zoo.NASNET_A, "4@1056", 224))
    assert _within(mobile.mult_adds, 564e6), mobile
    assert _within(mobile.params, 5.3e6), mobile
    large = count_mult_adds(
        build_imagenet_network(zoo.NASNET_A, "6@4032", 331, stem_multiplier=3, skip_reduction=True)
    )
    assert _within(large.mult_adds, 23.8e9), large
    assert _within(large.params, 88.9e6), large
    assert np.isclose(large.mult_adds / mobile.mult_adds, 23.8e9 / 564e6, rtol=0.05)
