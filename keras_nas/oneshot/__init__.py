"""keras_nas.oneshot: weight-sharing (one-shot) architecture search.

Why this package exists: every other keras-nas search trains each candidate from scratch. Here
one supernet (``keras_nas.blocks.supernet``: every edge a ``MixedOp`` over the candidate ops)
is trained once and the strategies share its weights:

* ``spaces.py``    -- a space as edges x ops: supernet, derivation, controller space;
* ``architect.py`` -- the architecture side of DARTS, DrNAS, GDAS, SPOS/RSPS, supernet +
  evolution (DetNAS) and ENAS;
* ``loop.py``      -- the training loop they share (weight/arch steps, tf.distribute, checkpoints);
* ``search.py``    -- :func:`search`, the one entry point.

TensorFlow is used directly here (tf.function, GradientTape, tf.distribute); the supernet
layers themselves are backend-agnostic Keras 3. See ``docs/oneshot.md``.
"""

from keras_nas.oneshot.architect import STRATEGIES
from keras_nas.oneshot.search import OneShotError, OneShotResult, search
from keras_nas.oneshot.spaces import SPACES

__all__ = ["SPACES", "STRATEGIES", "OneShotError", "OneShotResult", "search"]
