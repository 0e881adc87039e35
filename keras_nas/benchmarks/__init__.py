"""keras_nas.benchmarks: tabular benchmarks that drive keras-nas Oracles (no training)."""

from keras_nas.benchmarks.nas_bench_201 import NASBench201  # noqa: F401  (pure numpy; no TensorFlow)
