"""`keras-nas` command line: help, flag errors, flagfile, and search -> train -> export -> show."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import pytest
from _timing import scaled

from keras_nas import cli, rundir
from keras_nas.jobs import search, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "sub, cfg",
    [
        ("search", search.SearchConfig),
        ("train", train.TrainConfig),
        ("export", None),
        ("show", None),
        ("report", None),
    ],
)
def test_help_lists_every_flag(sub, cfg, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: keras-nas {sub}")
    fv = cli.FLAG_FACTORIES[sub]()
    for name in fv:
        assert f"--{name}" in out or f"--[no]{name}" in out, name
    if cfg is not None:  # every job setting is a flag
        for f in dataclasses.fields(cfg):
            assert f.name in fv, f.name
    assert "--flagfile" in out


def test_top_level_help_via_module_entry_point():
    p = subprocess.run(
        [sys.executable, "-m", "keras_nas.cli", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert p.returncode == 0
    for sub in cli.SUBCOMMANDS:
        assert f"  {sub} " in p.stdout


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["search", "--epochs=0"], "flag --epochs=0: 0 is not a positive integer"),
        (
            ["search", "--space=resnet"],
            "flag --space=resnet: value should be one of <nasnet|nb201|macro>",
        ),
        (["search", "--controller=bayes"], "flag --controller=bayes"),
        (["search", "--max_trials=many"], "flag --max_trials=many"),
        (["search", "--learning_rate=-1"], "flag --learning_rate=-1"),
        (["search", "--image_size=2"], "flag --image_size=2"),
        (["search", "--bogus=1"], "Unknown command line flag 'bogus'"),
        (["train", "--drop_path=1.5"], "flag --drop_path=1.5"),
        (["export", "--num_cells=2"], "Unknown command line flag 'num_cells'"),
        (
            ["search", "--strategy=gpu"],
            "flag --strategy=gpu: must be auto, default, mirrored, tpu or cpu:N",
        ),
        (["train", "--strategy=cpu:0"], "flag --strategy=cpu:0"),
        (["search", "extra"], "takes no positional arguments"),
        (["frobnicate"], "unknown subcommand 'frobnicate'"),
    ],
)
def test_bad_flags_fail_at_once_naming_the_flag(argv, fragment, capsys):
    assert cli.main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_flagfile_is_read(tmp_path, capsys):
    ff = tmp_path / "search.cfg"
    ff.write_text("--max_trials=0\n")
    assert cli.main(["search", f"--flagfile={ff}"]) == 2
    assert "flag --max_trials=0" in capsys.readouterr().err


def test_bad_values_found_later_name_the_flag_or_file(tmp_path, capsys):
    assert (
        cli.main(["search", f"--data={tmp_path / 'missing.npz'}", f"--output_dir={tmp_path / 'o'}"])
        == 1
    )
    assert "missing.npz' does not exist" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "search",
                "--ops=sep_conv_3x3,warp_drive",
                f"--output_dir={tmp_path / 'o'}",
                "--subset=50",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "--ops=sep_conv_3x3,warp_drive" in err and "warp_drive" in err
    assert cli.main(["train", f"--run_dir={tmp_path}"]) == 1
    assert "has no best_genotype.json" in capsys.readouterr().err


def _search(tmp_path):
    """A tiny real search through the CLI, flags read from a flagfile."""
    out = tmp_path / "run"
    out.mkdir()
    ff = out.parent / "search.cfg"
    ff.write_text(
        "\n".join(
            [
                f"--output_dir={out}",
                "--subset=80",
                "--image_size=8",
                "--max_trials=2",
                "--epochs=1",
                "--num_cells=1",
                "--filters=4",
                "--num_blocks=2",
                "--batch_size=32",
                "--population_size=2",
                "--run_eagerly",
                "--seed=3",
            ]
        )
        + "\n"
    )
    assert cli.main(["search", f"--flagfile={ff}"]) == 0
    return out, ff


def _check_run_directory(searched):
    out, _ = searched
    for f in (
        "best_genotype.json",
        "best_model.weights.h5",
        "best_cells.png",
        "results.csv",
        "results.json",
        "run.json",
        "trial_costs.json",
    ):
        assert (out / f).exists(), f
    assert (out / "tuner" / "oracle.json").exists()  # the keras-tuner project
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" for r in rows)
    assert all(0.0 <= float(r["score"]) <= 1.0 and int(r["params"]) > 0 for r in rows)
    run = json.loads((out / "run.json").read_text())
    assert run["best"]["search_val_accuracy"] == max(float(r["score"]) for r in rows)
    assert 0.0 <= run["best"]["test_accuracy"] <= 1.0
    assert run["config"]["controller"] == "evolution" and run["config"]["max_trials"] == 2
    assert rundir.load_architecture(str(out)).normal.num_blocks == 2


def _check_tensorboard_tags(searched):
    from test_tensorboard_logs import read_tags

    tags = read_tags(str(searched[0] / "tensorboard"))
    # evolution publishes its population: logged once, as controller/population/* (issue #14.9)
    for tag in (
        "trial/score",
        "trial/params",
        "search/best_so_far",
        "controller/population/best",
        "controller/population/median",
        "cells/best",
    ):
        assert tag in tags, (tag, sorted(tags))
    assert [s for s, _ in tags["trial/score"]] == [1, 2]


def _check_resume(searched, capsys):
    out, ff = searched
    capsys.readouterr()
    assert cli.main(["search", f"--flagfile={ff}"]) == 0
    text = capsys.readouterr().out
    assert "resuming the search" in text and "2 trial(s) finished (2 completed, 0 failed)" in text
    assert "re-run" not in text  # nothing was interrupted
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


def _check_train_export_show(searched, capsys):
    out, _ = searched
    capsys.readouterr()  # drop the search output
    assert (
        cli.main(
            [
                "train",
                f"--run_dir={out}",
                "--epochs=1",
                "--num_cells=1",
                "--filters=4",
                "--batch_size=32",
                "--run_eagerly",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "held-out test accuracy" in text
    t = json.loads((out / "final" / "train.json").read_text())
    assert t["build"]["aux_head"] is True and t["build"]["drop_path"] == 0.1
    assert 0.0 <= t["test_accuracy"] <= 1.0
    assert cli.main(["export", f"--run_dir={out}", "--nosaved_model"]) == 0
    text = capsys.readouterr().out
    assert "rebuild without keras-nas" in text
    exp = json.loads((out / "export" / "export.json").read_text())
    assert exp["source"].startswith("trained model") and exp["params"] == t["params"]
    assert (
        exp["architecture"] in text.splitlines()
    )  # the headline shows the whole genotype (issue #14.14)
    for k in ("keras", "genotype", "weights", "python"):
        assert os.path.exists(exp["files"][k])
    assert cli.main(["show", str(out)]) == 0
    assert "normal cell (2 blocks" in capsys.readouterr().out
    assert (out / "cells.png").exists()


def test_search_resume_train_export_show_end_to_end(tmp_path, capsys):
    """One test (not a module fixture): under pytest-xdist a shared fixture would run once per worker."""
    searched = _search(tmp_path)
    _check_run_directory(searched)
    _check_tensorboard_tags(searched)
    _check_resume(searched, capsys)
    _check_train_export_show(searched, capsys)


def test_help_indents_every_flag_alike(capsys):
    """The first flag used to lose its indent (the help body was .strip()ped)."""
    for sub in cli.SUBCOMMANDS:
        with pytest.raises(SystemExit):
            cli.main([sub, "--help"])
        out = capsys.readouterr().out
        flag_lines = [
            l for l in out.split("\nflags:\n", 1)[1].splitlines() if l.lstrip().startswith("--")
        ]
        assert flag_lines and all(l.startswith("  --") for l in flag_lines), (sub, flag_lines[:2])


def test_help_documents_npz_keys_scaling_and_ranges(capsys):
    with pytest.raises(SystemExit):
        cli.main(["search", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "x_train and y_train (optional: x_val/y_val, x_test/y_test)" in out
    assert "divided by 255 when the images are uint8 or their maximum exceeds 1" in out
    assert "--seed: Seed of data splits, controller and weights. Range: [0, 4294967295]." in out
    assert "--val_fraction + --test_fraction must be below 1" in out


# Runs the CLI in a fresh interpreter and reports which heavy modules it imported.
_NO_TF_DRIVER = """
import sys
from keras_nas import cli
rc = cli.main(sys.argv[1:])
print("IMPORTED=" + ",".join(m for m in ("tensorflow", "keras", "keras_tuner") if m in sys.modules), file=sys.stderr)
sys.exit(rc)
"""
BAD_GENOTYPE = "normal=sep_conv_3x3~0+identity~x/2;reduce=max_pool_3x3~0+identity~1/2"


@pytest.mark.parametrize(
    "argv, code, pattern",
    [
        (
            ["search", "--data={tmp}/missing.npz", "--output_dir={tmp}/run"],
            1,
            r"keras-nas search: error: --data: Dataset file '.*missing.npz' does not exist",
        ),
        (["train", "--run_dir={tmp}/no_run"], 1, r"--run_dir '.*no_run' has no best_genotype.json"),
        (
            ["train", "--run_dir={tmp}", "--data={tmp}/missing.npz", "--genotype=nasnet_a"],
            1,
            r"--data: Dataset file '.*missing.npz' does not exist",
        ),
        (
            ["train", "--run_dir={tmp}", f"--genotype={BAD_GENOTYPE}"],
            1,
            r"input 'x' in 'identity~x' is not an integer",
        ),
        (
            ["export", "--run_dir={tmp}/no_run"],
            1,
            r"--run_dir '.*no_run' has neither final/train.json",
        ),
        (["show", "--text_only", "normal=sep_conv_3x3~0"], 1, r"lacks '/concat'"),
        (["search", "--seed=-1"], 2, r"flag --seed=-1: must be an integer in \[0, 4294967295\]"),
    ],
)
def test_bad_input_fails_before_tensorflow_is_imported(argv, code, pattern, tmp_path):
    """Errors that need no TensorFlow took 64-132 s under load because it was imported first."""
    import re

    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(
        [sys.executable, "-c", _NO_TF_DRIVER, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(300),
    )
    assert p.returncode == code, p.stderr
    assert re.search(pattern, p.stderr), p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.rstrip().endswith("IMPORTED="), (
        p.stderr
    )  # neither tensorflow nor keras nor keras_tuner
    assert sorted(os.listdir(tmp_path)) == [], os.listdir(tmp_path)


def test_quiet_mode_hides_tensorflow_import_notices():
    """TF 2.21 logs oneDNN/CPU notices through uninitialised C++ absl, whatever TF_CPP_MIN_LOG_LEVEL says."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
    code = "from keras_nas import cli; cli._quiet(); import keras; import tensorflow as tf; print(tf.constant(2) + 1)"
    p = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(300),
    )
    assert p.returncode == 0, p.stderr
    assert "tf.Tensor(3" in p.stdout
    for noise in (
        "absl::InitializeLog",
        "oneDNN custom operations",
        "cpu_feature_guard",
        "rebuild TensorFlow",
    ):
        assert noise not in p.stderr, p.stderr


def test_quiet_filter_keeps_other_stderr_lines():
    from keras_nas import quiet

    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1.2 7534 port.cc:153] oneDNN custom operations are on. You may see ...\n"
        "E0000 00:00:1.3 7534 something.cc:1] a real error\n"
    )
    assert quiet._wanted(text) == "E0000 00:00:1.3 7534 something.cc:1] a real error\n"


def test_predictor_controller_runs_from_the_cli(tmp_path):
    """--controller=predictor: a tiny NB201 search through the CLI job, fit quality logged."""
    from keras_nas.jobs import search

    cfg = search.SearchConfig(
        space="nb201",
        controller="predictor",
        output_dir=str(tmp_path),
        subset=40,
        epochs=1,
        image_size=8,
        max_trials=3,
        filters=4,
        batch_size=32,
        run_eagerly=True,
        seed=1,
        tensorboard=False,
    )
    s = search.run_search(cfg, log=lambda m: None)
    assert s["trials"]["completed"] == 3 and s["config"]["controller"] == "predictor"


def test_oneshot_darts_search_and_train_from_the_cli(tmp_path, capsys):
    """`keras-nas search --space=nasnet --controller=darts` (the DARTS cell-space supernet) on a tiny
    .npz (16 training images: one step), then `keras-nas train --run_dir` retrains the derived
    genotype; steps run eagerly (tiny)."""
    import numpy as np

    rng = np.random.default_rng(0)
    npz = tmp_path / "tiny.npz"
    np.savez(
        npz,
        x_train=rng.random((20, 8, 8, 1), dtype=np.float32),
        y_train=rng.integers(0, 2, 20),
        x_test=rng.random((8, 8, 8, 1), dtype=np.float32),
        y_test=rng.integers(0, 2, 8),
    )
    out = tmp_path / "run"
    assert (
        cli.main(
            [
                "search",
                "--space=nasnet",
                "--controller=darts",
                f"--data={npz}",
                f"--output_dir={out}",
                "--epochs=1",
                "--num_blocks=2",
                "--ops=identity,sep_conv_3x3",
                "--filters=2",
                "--num_cells=1",
                "--batch_size=16",
                "--run_eagerly",
                "--notensorboard",
                "--seed=1",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "one-shot search (darts) finished" in text
    run = json.loads((out / "run.json").read_text())
    assert (
        run["job"] == "oneshot"
        and run["space"] == "nasnet"
        and run["oneshot"]["strategy"] == "darts"
    )
    g = rundir.load_architecture(str(out))
    assert g.normal.num_blocks == 2 and g.normal.concat == (2, 3) and "none" not in g.ops_used
    assert set(g.ops_used) <= {"identity", "sep_conv_3x3"}
    assert (
        cli.main(
            [
                "train",
                f"--run_dir={out}",
                "--epochs=1",
                "--num_cells=1",
                "--filters=2",
                "--batch_size=16",
                "--run_eagerly",
            ]
        )
        == 0
    )
    assert "held-out test accuracy" in capsys.readouterr().out
    t = json.loads((out / "final" / "train.json").read_text())
    assert t["architecture"] == str(g) and 0.0 <= t["test_accuracy"] <= 1.0
