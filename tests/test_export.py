"""keras-nas export: .keras, SavedModel, genotype JSON, and a standalone builder that runs
in a Python process where keras-nas cannot be imported."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _timing import scaled

from keras_nas import export, families, rundir, zoo
from keras_nas.space import Genotype, NB201Cell

GENOTYPE = Genotype.parse(
    "normal=sep_conv_3x3~0+identity~1|avg_pool_3x3~2+max_pool_3x3~0/3;"
    "reduce=sep_conv_5x5~0+max_pool_3x3~1|identity~2+sep_conv_3x3~1/3"
)
BUILD = {"input_shape": [8, 8, 1], "num_classes": 10, "num_cells": 1, "filters": 4}

# Runs the exported file with every keras_nas import refused (even if keras-nas is
# pip-installed in the environment), from a directory that is not the repository.
RUNNER = textwrap.dedent(
    """
    import importlib.abc, runpy, sys
    import numpy as np

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "keras_nas" or name.startswith("keras_nas."):
                raise ModuleNotFoundError("keras_nas is blocked in this test", name=name)
            return None

    sys.meta_path.insert(0, Block())
    try:
        import keras_nas  # noqa: F401
        raise SystemExit("keras_nas was importable")
    except ModuleNotFoundError:
        pass
    ns = runpy.run_path(sys.argv[1])
    model = ns["build"]()
    model.load_weights(sys.argv[2])
    out = model(np.load(sys.argv[3]), training=False)
    out = out[0] if isinstance(out, (list, tuple)) else out
    np.save(sys.argv[4], np.asarray(out))
    assert not any(m == "keras_nas" or m.startswith("keras_nas.") for m in sys.modules), "keras_nas got imported"
    print("PARAMS", model.count_params())
    """
)


def _fake_search_run(run_dir, arch=GENOTYPE, build=BUILD):
    """A run directory as `keras-nas search` leaves it (weights untrained but non-default)."""
    import keras

    keras.utils.set_random_seed(1)
    model = families.family_of(arch).build(arch, **build)
    os.makedirs(run_dir, exist_ok=True)
    model.save_weights(os.path.join(run_dir, "best_model.weights.h5"))
    with open(os.path.join(run_dir, "best_genotype.json"), "w") as f:
        f.write(families.arch_to_json(arch))
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump({"build": build, "config": {}}, f)
    return model


def _run_standalone(tmp_path, files, x):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / "runner.py").write_text(RUNNER)
    np.save(elsewhere / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    p = subprocess.run(
        [
            sys.executable,
            "-I",
            "runner.py",
            os.path.abspath(files["python"]),
            os.path.abspath(files["weights"]),
            "x.npy",
            "y.npy",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(300),
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    params = int(p.stdout.split("PARAMS")[1].split()[0])
    return params, np.load(elsewhere / "y.npy")


def test_export_search_best_all_formats_and_standalone_without_keras_nas(tmp_path):
    import keras

    run = str(tmp_path / "run")
    model = _fake_search_run(run)
    r = export.export_run(run, log=lambda m: None)
    files = r["files"]
    assert r["source"].startswith("best search network")
    for k in ("keras", "saved_model", "genotype", "weights", "python", "cells_png"):
        assert os.path.exists(files[k]), k
    assert os.path.exists(os.path.join(files["saved_model"], "saved_model.pb"))
    assert rundir.load_architecture(files["genotype"]) == GENOTYPE
    x = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    expected = np.asarray(model(x, training=False))
    # .keras round trip
    loaded = keras.models.load_model(files["keras"])
    np.testing.assert_allclose(
        np.asarray(loaded(x, training=False)), expected, rtol=1e-4, atol=1e-5
    )
    # standalone builder in a process that cannot import keras_nas: same size, weights load, same outputs
    params, y = _run_standalone(tmp_path, files, x)
    assert params == model.count_params() == r["params"]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_export_trained_model_with_aux_head(tmp_path):
    """`keras-nas train` output (aux head, drop path): inference export has one output; the
    standalone file rebuilds the trained two-output network so the weights file loads."""
    import keras

    run = tmp_path / "run"
    final = run / "final"
    final.mkdir(parents=True)
    build = dict(
        BUILD,
        drop_path=0.2,
        aux_head=True,
        drop_path_total_steps=10,
        filters=4,
        num_cells=1,
        input_shape=[32, 32, 1],
    )
    keras.utils.set_random_seed(2)
    model = families.family_of(zoo.DARTS_V2).build(zoo.DARTS_V2, **build)
    assert len(model.outputs) == 2
    model.save_weights(str(final / "model.weights.h5"))
    (final / "genotype.json").write_text(zoo.DARTS_V2.to_json())
    (final / "train.json").write_text(
        json.dumps(
            {
                "build": build,
                "files": {
                    "weights": str(final / "model.weights.h5"),
                    "genotype": str(final / "genotype.json"),
                },
            }
        )
    )
    r = export.export_run(str(run), saved_model=False, log=lambda m: None)
    assert r["source"].startswith("trained model")
    assert "saved_model" not in r["files"]
    inf = keras.models.load_model(r["files"]["keras"])
    assert len(inf.outputs) == 1
    x = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(
        np.asarray(inf(x, training=False)),
        np.asarray(model(x, training=False)[0]),
        rtol=1e-4,
        atol=1e-5,
    )
    params, y = _run_standalone(tmp_path, r["files"], x)
    assert params == model.count_params()
    np.testing.assert_allclose(y, np.asarray(model(x, training=False)[0]), rtol=1e-4, atol=1e-5)


def test_bundle_is_pure_keras_and_renamed(tmp_path):
    mods = export.bundled_modules()
    assert "keras_nas.blocks.network" in mods and "keras_nas.space.genotype" in mods
    assert (
        "keras_nas.blocks" in mods and mods["keras_nas.blocks"][0]
    )  # parent package, marked as package
    assert (
        "keras_nas.kernels" in mods and "keras_nas.kernels.tensorflow_backend" not in mods
    )  # generic kernels only
    for name, (_, src) in mods.items():
        assert not re.search(r"^\s*(import|from) (tensorflow|keras_tuner)\b", src, re.M), name
    src = export.standalone_source(
        NB201Cell.parse(
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
        ),
        {"input_shape": [8, 8, 3], "num_classes": 5, "num_cells": 1, "filters": 4},
    )
    compile(src, "build_model.py", "exec")
    body = src.split("_SOURCES = {", 1)[1]
    assert "keras_nas" not in body.replace("_keras_nas_bundle", "")  # every reference renamed
    assert "BUILDER = 'build_nb201_network'" in src


def test_export_without_a_run_explains(tmp_path):
    with pytest.raises(rundir.JobError, match="run `keras-nas search`"):
        export.export_run(str(tmp_path), log=lambda m: None)
    with pytest.raises(rundir.JobError, match="has no train.json"):
        export.export_run(str(tmp_path), model_dir=str(tmp_path), log=lambda m: None)
