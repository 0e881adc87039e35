"""Benchmark: TensorFlow's fused batch norm versus the generic keras.ops batch norm
(``keras_nas.kernels``), training mode, forward + backward, by tensor size.

Why this file exists: keras-nas uses the fused kernel on the TensorFlow backend because it
shortens the first training step (tracing); on CPU with oneDNN its steady-state speed
depends on the tensor size, and this script shows where it wins and loses. Results are
recorded in benchmarks/README.md ("batch_norm_kernels").

Each measurement: a tf.function of 8 chained ReLU + batch-norm training steps and their
gradient, batch 32, median of 20 calls per implementation, both implementations measured
twice alternately (best of the two medians kept).

    python benchmarks/batch_norm_kernels.py
"""

from __future__ import annotations

import statistics
import time

SHAPES = [
    (2, 256),
    (4, 128),
    (4, 256),
    (8, 64),
    (8, 128),
    (15, 32),
    (16, 64),
    (28, 88),
    (56, 44),
    (112, 22),
]


def _time_per_bn(module, shape, reps=20, chain=8):
    import tensorflow as tf

    x = tf.random.normal(shape)
    gamma = tf.Variable(tf.ones(shape[-1:]))
    beta = tf.Variable(tf.zeros(shape[-1:]))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = x
            for _ in range(chain):
                y, _, _ = module.batch_norm_train(tf.nn.relu(y), gamma, beta, 1e-3)
            loss = tf.reduce_sum(y)
        return tape.gradient(loss, [x, gamma, beta])

    step(x)
    step(x)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step(x)[0].numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / chain * 1e6


def main():
    from keras_nas.kernels import generic, tensorflow_backend

    print(
        "| tensor (batch 32) | elements per sample | generic us per BN | fused us per BN | fused / generic |"
    )
    print("|---|---|---|---|---|")
    for s, c in SHAPES:
        shape = (32, s, s, c)
        gen, fused = [], []
        for _ in range(2):
            gen.append(_time_per_bn(generic, shape))
            fused.append(_time_per_bn(tensorflow_backend, shape))
        g, f = min(gen), min(fused)
        print(f"| {s}x{s}x{c} | {s * s * c:,} | {g:.0f} | {f:.0f} | {f / g:.2f} |", flush=True)


if __name__ == "__main__":
    main()
