"""Benchmark: build time, time to first training step and steady training throughput of
keras-nas ``build_network`` versus ``keras.applications`` NASNet, same N and penultimate filters.

Why this file exists: keras-nas builds every searched architecture from scratch, so the
fixed cost of constructing and tracing a NASNet-style model on CPU dominates short
search trials. This script measures that cost side by side in one run; results and the
command line are recorded in benchmarks/README.md ("build_and_train").

Implementations: keras.applications NASNet, keras-nas, and keras-nas with its fused
TensorFlow kernels switched off ("keras_nas_generic", to show what they contribute).
Each (configuration, implementation) measurement runs in a fresh subprocess (so none
benefits from another's caches) and the order of implementations rotates; ``--repeats`` repeats
the whole alternation and the median is reported. Because separate runs on a shared
machine drift with its load, steady throughput is also measured with both models in one
process, alternating training steps (``--interleaved-rounds``); that ratio is the robust one.

    python benchmarks/build_and_train.py                 # both configurations
    python benchmarks/build_and_train.py --configs search --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # search-size: CIFAR-like 32x32 input, N=2, F=16 (P = 24F = 384), 10 classes, batch 32
    "search": dict(
        input_shape=(32, 32, 3),
        num_blocks=2,
        penultimate_filters=384,
        classes=10,
        batch=32,
        steps=12,
    ),
    # NASNet-A mobile: 224x224, 4@1056, 1000 classes, batch 16
    "mobile": dict(
        input_shape=(224, 224, 3),
        num_blocks=4,
        penultimate_filters=1056,
        classes=1000,
        batch=16,
        steps=6,
    ),
}


# keras_nas_generic: keras-nas with its fused TensorFlow kernels switched off
# (keras_nas.kernels.set_fused(False)): shows what the fused batch norm contributes.
IMPLS = ("keras_applications", "keras_nas", "keras_nas_generic")


def _build(impl: str, cfg: dict):
    if impl == "keras_applications":
        from keras.src.applications.nasnet import NASNet

        return NASNet(
            input_shape=cfg["input_shape"],
            penultimate_filters=cfg["penultimate_filters"],
            num_blocks=cfg["num_blocks"],
            stem_block_filters=32,
            skip_reduction=False,
            filter_multiplier=2,
            weights=None,
            classes=cfg["classes"],
        )
    from keras_nas import kernels
    from keras_nas.blocks import build_network

    kernels.set_fused(impl == "keras_nas")  # read when the model is traced (first train step)
    return build_network(
        "nasnet_a",
        input_shape=cfg["input_shape"],
        num_classes=cfg["classes"],
        num_cells=cfg["num_blocks"],
        penultimate_filters=cfg["penultimate_filters"],
        stem="imagenet",
    )


def _child(impl: str, cfg_name: str) -> dict:
    cfg = CONFIGS[cfg_name]
    import keras
    import numpy as np

    t0 = time.perf_counter()
    model = _build(impl, cfg)
    t_build = time.perf_counter() - t0
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    b, n = cfg["batch"], cfg["steps"]
    rng = np.random.default_rng(0)
    x = rng.random((b * n,) + tuple(cfg["input_shape"]), dtype=np.float32)
    y = rng.integers(0, cfg["classes"], b * n)
    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    model.fit(x, y, batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[Stamp()])
    warm = 2  # steps excluded from the steady-state window (first = tracing, second = allocator warm-up)
    steady = (len(stamps) - 1 - warm) * b / (stamps[-1] - stamps[warm])
    return dict(
        impl=impl,
        config=cfg_name,
        params=int(model.count_params()),
        layers=len(model.layers),
        build_s=t_build,
        first_step_s=stamps[0] - t0,
        steady_img_s=steady,
    )


def _interleaved(cfg_name: str, rounds: int) -> dict:
    """All implementations in one process, two training steps of each per round, the order
    rotating every round: the steady-state ratios are then robust to the load drift of a
    shared machine (separate runs are not). Each model is traced with its own kernel setting."""
    cfg = CONFIGS[cfg_name]
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((cfg["batch"],) + tuple(cfg["input_shape"]), dtype=np.float32)
    y = rng.integers(0, cfg["classes"], cfg["batch"])
    models = {}
    for impl in IMPLS:
        m = models[impl] = _build(impl, cfg)
        m.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=False,
        )
        for _ in range(3):
            m.train_on_batch(x, y)
    times = {impl: [] for impl in IMPLS}
    for r in range(rounds):
        k = r % len(IMPLS)
        for impl in IMPLS[k:] + IMPLS[:k]:
            s = time.perf_counter()
            models[impl].train_on_batch(x, y)
            models[impl].train_on_batch(x, y)
            times[impl].append((time.perf_counter() - s) / 2)
    img_s = {impl: cfg["batch"] / statistics.median(t) for impl, t in times.items()}
    out = dict(config=cfg_name, rounds=rounds, **{f"{impl}_img_s": v for impl, v in img_s.items()})
    for impl in IMPLS[1:]:
        out[f"ratio_{impl}"] = img_s[impl] / img_s["keras_applications"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--interleaved-rounds",
        type=int,
        default=10,
        help="rounds of the in-process interleaved steady-state comparison (0 = skip)",
    )
    ap.add_argument(
        "--skip-separate", action="store_true", help="only the interleaved steady-state comparison"
    )
    ap.add_argument("--interleaved-child", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--child", nargs=2, metavar=("IMPL", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(_child(*args.child)), flush=True)
        return
    if args.interleaved_child:
        print(
            "RESULT " + json.dumps(_interleaved(args.interleaved_child, args.interleaved_rounds)),
            flush=True,
        )
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    results = {}
    for cfg in [] if args.skip_separate else args.configs:
        for r in range(args.repeats):
            k = r % len(IMPLS)
            for impl in IMPLS[k:] + IMPLS[:k]:
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--child", impl, cfg],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
                if not line:
                    sys.stderr.write(out.stderr[-3000:])
                    raise SystemExit(f"child {impl} {cfg} failed")
                res = json.loads(line[0][7:])
                print(json.dumps(res), flush=True)
                results.setdefault((cfg, impl), []).append(res)
    inter = []
    if args.interleaved_rounds > 0:
        for cfg in args.configs:
            out = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--interleaved-child",
                    cfg,
                    "--interleaved-rounds",
                    str(args.interleaved_rounds),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                sys.stderr.write(out.stderr[-3000:])
                raise SystemExit(f"interleaved {cfg} failed")
            inter.append(json.loads(line[0][7:]))
            print(json.dumps(inter[-1]), flush=True)
    if inter:
        print()
        print(
            "| config | rounds | interleaved steady img/s keras_applications | keras_nas | keras_nas_generic "
            "| ratio keras_nas | ratio keras_nas_generic |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in inter:
            print(
                f"| {r['config']} | {r['rounds']} | {r['keras_applications_img_s']:.1f} | {r['keras_nas_img_s']:.1f} "
                f"| {r['keras_nas_generic_img_s']:.1f} | {r['ratio_keras_nas']:.2f} | "
                f"{r['ratio_keras_nas_generic']:.2f} |"
            )
    if not results:
        return
    print()
    print(
        "| config | impl | params | layers | build s | time to end of 1st step s | steady img/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for cfg in args.configs:
        med = {}
        for impl in IMPLS:
            rs = results[(cfg, impl)]
            m = {
                k: statistics.median(r[k] for r in rs)
                for k in ("build_s", "first_step_s", "steady_img_s")
            }
            med[impl] = m
            print(
                f"| {cfg} | {impl} | {rs[0]['params']:,} | {rs[0]['layers']} | {m['build_s']:.1f} | "
                f"{m['first_step_s']:.1f} | {m['steady_img_s']:.1f} |"
            )
        ka = med["keras_applications"]
        for impl in IMPLS[1:]:
            kn = med[impl]
            print(
                f"| {cfg} | ratio {impl}/keras_applications | | | {kn['build_s'] / ka['build_s']:.2f} | "
                f"{kn['first_step_s'] / ka['first_step_s']:.2f} | {kn['steady_img_s'] / ka['steady_img_s']:.2f} |"
            )


if __name__ == "__main__":
    main()
