"""Subprocess driver of tests/test_oneshot_resume.py: one one-shot search on fixed tiny data.

usage: _oneshot_driver.py search DIRECTORY RESULT_JSON STRATEGY EPOCHS
       _oneshot_driver.py mirrored RESULT_JSON

``search`` runs its steps eagerly (what it tests is checkpoint and resume, not tracing; tiny steps
run faster untraced); ``mirrored`` runs the traced steps under MirroredStrategy.
"""

import json
import os
import sys

import numpy as np

SEARCH = dict(batch_size=12, channels=2, num_cells=1, seed=3, num_samples=3, run_eagerly=True)


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, n)
    return x[: 3 * n // 4], y[: 3 * n // 4], x[3 * n // 4 :], y[3 * n // 4 :]


def main():
    mode = sys.argv[1]
    if mode == "mirrored":
        from keras_nas.distribute import configure_logical_cpus

        configure_logical_cpus(2)
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        from keras_nas.oneshot import search
        from keras_nas.oneshot.loop import clip_summed_gradients

        def replica_grads(clip):
            rid = tf.distribute.get_replica_context().replica_id_in_sync_group
            g = [tf.fill([3], tf.cast(rid, tf.float32) + 1.0), None]
            return clip_summed_gradients(g, clip, strategy.num_replicas_in_sync)[0]

        out = {"clip": {}}
        for clip in (1.0, 100.0):  # the summed gradient [3, 3, 3] has norm 5.196
            summed = strategy.reduce("SUM", strategy.run(replica_grads, args=(clip,)), axis=None)
            out["clip"][str(clip)] = summed.numpy().tolist()
        xt, yt, xv, yv = data(48)
        for name in ("darts",):
            r = search(
                xt,
                yt,
                xv,
                yv,
                strategy=name,
                epochs=2,
                batch_size=12,
                channels=2,
                num_cells=1,
                seed=0,
                num_samples=3,
                ops=("avg_pool_3x3", "nor_conv_3x3"),
                distribute=strategy,
            )
            out[name] = {
                "architecture": str(r.architecture),
                "trace": r.trace,
                "replicas": r.settings["replicas"],
            }
        with open(sys.argv[2], "w") as f:
            json.dump(out, f)
        return
    directory, result_path, strategy, epochs = (
        sys.argv[2],
        sys.argv[3],
        sys.argv[4],
        int(sys.argv[5]),
    )
    from keras_nas.oneshot import search

    xt, yt, xv, yv = data()
    r = search(
        xt,
        yt,
        xv,
        yv,
        strategy=strategy,
        epochs=epochs,
        directory=directory,
        log=lambda m: print(m, flush=True),
        **SEARCH,
    )
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(r.to_dict(), f)
    os.replace(tmp, result_path)


if __name__ == "__main__":
    main()
