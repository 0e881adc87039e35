"""FactorizedReduction: the slim/keras.applications math, and no oneDNN memory corruption.

TF 2.21's oneDNN CPU kernels corrupted memory (double free / segfault) while training any
network where a normal cell follows a reduction cell, when the shifted path was written as
pad + slice + strided conv. The op now subsamples first; these tests pin both the numbers
and the crash.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _timing import scaled

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("size", [8, 7])
def test_matches_reference_formula(size):
    import keras

    from keras_nas.blocks.ops import FactorizedReduction

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, size, size, 3)).astype("float32")
    layer = FactorizedReduction(6, strides=2)
    y = keras.ops.convert_to_numpy(layer(x, training=False))
    k1, k2 = (keras.ops.convert_to_numpy(k) for k in layer.kernels)
    # Reference: path 1 = 1x1 stride-2 conv of relu(x); path 2 = the same on relu(x) shifted
    # by one pixel, zero-padded at the bottom/right (slim factorized_reduction).
    r = np.maximum(x, 0)
    p1 = np.einsum("bhwc,cf->bhwf", r[:, ::2, ::2], k1[0, 0])
    shifted = np.pad(r, [(0, 0), (0, 1), (0, 1), (0, 0)])[:, 1:, 1:]
    p2 = np.einsum("bhwc,cf->bhwf", shifted[:, ::2, ::2], k2[0, 0])
    pre_bn = np.concatenate([p1, p2], axis=-1)
    gamma, beta, mean, var = (keras.ops.convert_to_numpy(v) for v in layer.bn)
    expected = (pre_bn - mean) / np.sqrt(var + layer.bn_epsilon) * gamma + beta
    assert y.shape == (2, (size + 1) // 2, (size + 1) // 2, 6)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_normal_after_reduction_trains_with_onednn():
    script = textwrap.dedent(
        """
        import numpy as np, keras_nas
        rng = np.random.default_rng(0)
        x = rng.random((319, 16, 16, 1), dtype=np.float32); y = rng.integers(0, 10, 319)  # partial last batch triggered it
        for g in ["normal=identity~0+identity~1/2;reduce=max_pool_3x3~0+max_pool_3x3~1/2",
                  "normal=dil_sep_conv_3x3~0+identity~1/2;reduce=max_pool_3x3~0+max_pool_3x3~1/2"]:
            m = keras_nas.build_network(g, input_shape=(16, 16, 1), num_classes=10, num_cells=1, filters=8)
            m.compile("adam", "sparse_categorical_crossentropy")
            m.fit(x, y, batch_size=64, epochs=3, verbose=0)
        print("TRAINED")
        """
    )
    env = dict(
        os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT)
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=scaled(300)
    )
    assert proc.returncode == 0 and "TRAINED" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
