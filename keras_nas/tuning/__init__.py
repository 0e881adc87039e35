"""Everything that knows keras-tuner: oracles, tuners, HyperModels, state files, liveness.

The wall around keras-tuner: the pure algorithms (:mod:`keras_nas.controllers`) never
import it, and :mod:`keras_nas.tuning.internals` is the only module that touches its
private names. Submodules are imported on use (``import keras_nas.tuning`` is cheap).
"""
