"""`keras-nas` command line: help, flag errors, flagfile, and search -> train -> export -> show."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from keras_nas import cli, search

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("sub, cfg", [("search", search.SearchConfig), ("train", search.TrainConfig),
                                      ("export", None), ("show", None), ("report", None)])
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
    p = subprocess.run([sys.executable, "-m", "keras_nas.cli", "--help"], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0
    for sub in cli.SUBCOMMANDS:
        assert f"  {sub} " in p.stdout


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["search", "--epochs=0"], "flag --epochs=0: 0 is not a positive integer"),
        (["search", "--space=resnet"], "flag --space=resnet: value should be one of <nasnet|nb201|macro>"),
        (["search", "--controller=bayes"], "flag --controller=bayes"),
        (["search", "--max_trials=many"], "flag --max_trials=many"),
        (["search", "--learning_rate=-1"], "flag --learning_rate=-1"),
        (["search", "--image_size=2"], "flag --image_size=2"),
        (["search", "--bogus=1"], "Unknown command line flag 'bogus'"),
        (["train", "--drop_path=1.5"], "flag --drop_path=1.5"),
        (["export", "--num_cells=2"], "Unknown command line flag 'num_cells'"),
        (["search", "--strategy=gpu"], "flag --strategy=gpu: must be auto, default, mirrored, tpu or cpu:N"),
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
    assert cli.main(["search", f"--data={tmp_path / 'missing.npz'}", f"--output_dir={tmp_path / 'o'}"]) == 1
    assert "missing.npz' does not exist" in capsys.readouterr().err
    assert cli.main(["search", "--ops=sep_conv_3x3,warp_drive", f"--output_dir={tmp_path / 'o'}", "--subset=50"]) == 1
    err = capsys.readouterr().err
    assert "--ops=sep_conv_3x3,warp_drive" in err and "warp_drive" in err
    assert cli.main(["train", f"--run_dir={tmp_path}"]) == 1
    assert "has no best_genotype.json" in capsys.readouterr().err


def _search(tmp_path):
    """A tiny real search through the CLI, flags read from a flagfile."""
    out = tmp_path / "run"
    out.mkdir()
    ff = out.parent / "search.cfg"
    ff.write_text("\n".join([
        f"--output_dir={out}", "--subset=80", "--image_size=8", "--max_trials=2", "--epochs=1", "--num_cells=1",
        "--filters=4", "--num_blocks=2", "--batch_size=32", "--population_size=2", "--run_eagerly", "--seed=3",
    ]) + "\n")
    assert cli.main(["search", f"--flagfile={ff}"]) == 0
    return out, ff


def _check_run_directory(searched):
    out, _ = searched
    for f in ("best_genotype.json", "best_model.weights.h5", "best_cells.png", "results.csv", "results.json",
              "run.json", "trial_costs.json"):
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
    assert search.load_architecture(str(out)).normal.num_blocks == 2


def _check_tensorboard_tags(searched):
    from test_tensorboard_logs import read_tags

    tags = read_tags(str(searched[0] / "tensorboard"))
    for tag in ("trial/score", "trial/params", "search/best_so_far", "population/best_fitness",
                "population/median_fitness", "cells/best"):
        assert tag in tags, (tag, sorted(tags))
    assert [s for s, _ in tags["trial/score"]] == [1, 2]


def _check_resume(searched, capsys):
    out, ff = searched
    capsys.readouterr()
    assert cli.main(["search", f"--flagfile={ff}"]) == 0
    text = capsys.readouterr().out
    assert "resuming the search" in text and "2 trial(s) already run" in text
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


def _check_train_export_show(searched, capsys):
    out, _ = searched
    capsys.readouterr()  # drop the search output
    assert cli.main(["train", f"--run_dir={out}", "--epochs=1", "--num_cells=1", "--filters=4", "--batch_size=32",
                     "--run_eagerly"]) == 0
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
