"""Subprocess driver of tests/test_oneshot_resume.py: one one-shot search on fixed tiny data.

usage: _oneshot_driver.py search DIRECTORY RESULT_JSON STRATEGY EPOCHS
       _oneshot_driver.py mirrored RESULT_JSON
"""

import json
import os
import sys

import numpy as np


def data(n=384, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, n)
    return x[: 3 * n // 4], y[: 3 * n // 4], x[3 * n // 4:], y[3 * n // 4:]


def main():
    mode = sys.argv[1]
    if mode == "mirrored":
        from keras_nas.distribute import configure_logical_cpus

        configure_logical_cpus(2)
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        from keras_nas.oneshot import search

        xt, yt, xv, yv = data(128)
        out = {}
        for name in ("darts",):
            r = search(xt, yt, xv, yv, strategy=name, epochs=2, batch_size=16, channels=4, num_cells=1, seed=0,
                       num_samples=4, distribute=strategy)
            out[name] = {"architecture": str(r.architecture), "trace": r.trace, "replicas": r.settings["replicas"]}
        with open(sys.argv[2], "w") as f:
            json.dump(out, f)
        return
    directory, result_path, strategy, epochs = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    from keras_nas.oneshot import search

    xt, yt, xv, yv = data()
    r = search(xt, yt, xv, yv, strategy=strategy, epochs=epochs, batch_size=16, channels=4, num_cells=1, seed=3,
               num_samples=4, directory=directory, log=lambda m: print(m, flush=True))
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(r.to_dict(), f)
    os.replace(tmp, result_path)


if __name__ == "__main__":
    main()
