"""Bad ``keras-nas`` arguments: exit code, one clear error line, nothing saved earlier changed.

Add a row to ``CLI_ROWS``; each runs in-process through ``keras_nas.cli.main`` beside the
``saved_run`` search directory (tests/_bad_input.py), whose files are hashed before and after.
The other entry points: test_bad_input.py, test_bad_data.py.
"""

import os

import numpy as np
import pytest
from _bad_input import RUN_FLAGS, clear_error, digest, make_saved_run

pytest.importorskip("keras_tuner")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    return make_saved_run(tmp_path_factory)  # built once per session, shared by the xdist workers


NB201 = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"

# (id, argv, exit code, regex the error must match). In argv, {run} is the saved run directory,
# {tmp} an empty directory, {file} a regular file in it, {tiny} an .npz of 2x2 images.
CLI_ROWS = [
    # flags the parser rejects (exit 2), some aimed at the saved run
    (
        "search-negative-epochs",
        ["search", "--output_dir={run}", "--epochs=-1"],
        2,
        r"flag --epochs=-1: -1 is not a positive integer",
    ),
    (
        "search-zero-trials",
        ["search", "--output_dir={run}", "--max_trials=0"],
        2,
        r"flag --max_trials=0",
    ),
    (
        "search-trials-not-int",
        ["search", "--max_trials=many"],
        2,
        r"flag --max_trials=many: invalid literal",
    ),
    (
        "search-unknown-space",
        ["search", "--output_dir={run}", "--space=resnet"],
        2,
        r"flag --space=resnet: value should be one of <nasnet\|nb201\|macro>",
    ),
    (
        "search-unknown-controller",
        ["search", "--output_dir={run}", "--controller=bayes"],
        2,
        r"flag --controller=bayes: value should be one of",
    ),
    (
        "search-unknown-flag",
        ["search", "--output_dir={run}", "--bogus=1"],
        2,
        r"Unknown command line flag 'bogus'",
    ),
    (
        "search-bad-boolean",
        ["search", "--output_dir={run}", "--overwrite=maybe"],
        2,
        r"flag --overwrite=maybe: .*Non-boolean",
    ),
    ("search-missing-value", ["search", "--epochs"], 2, r"Missing value for flag --epochs"),
    (
        "search-negative-subset",
        ["search", "--subset=-5"],
        2,
        r"flag --subset=-5: -5 is not a non-negative integer",
    ),
    (
        "search-val-fraction",
        ["search", "--val_fraction=2"],
        2,
        r"flag --val_fraction=2: 2.0 is not a number in the range",
    ),
    ("search-image-size", ["search", "--image_size=2"], 2, r"flag --image_size=2"),
    (
        "search-strategy",
        ["search", "--strategy=cpu:x"],
        2,
        r"flag --strategy=cpu:x: must be auto, default, mirrored, tpu or cpu:N",
    ),
    (
        "search-missing-flagfile",
        ["search", "--flagfile={tmp}/missing.cfg"],
        2,
        r"Unable to open flagfile.*missing.cfg",
    ),
    ("search-positional", ["search", "{run}"], 2, r"takes no positional arguments"),
    (
        "train-negative-epochs",
        ["train", "--run_dir={run}", "--epochs=-3"],
        2,
        r"flag --epochs=-3: -3 is not a positive integer",
    ),
    (
        "train-drop-path",
        ["train", "--run_dir={run}", "--drop_path=1.5"],
        2,
        r"flag --drop_path=1.5",
    ),
    ("train-image-size", ["train", "--run_dir={run}", "--image_size=2"], 2, r"flag --image_size=2"),
    (
        "export-foreign-flag",
        ["export", "--run_dir={run}", "--num_cells=2"],
        2,
        r"Unknown command line flag 'num_cells'",
    ),
    (
        "export-bad-boolean",
        ["export", "--run_dir={run}", "--saved_model=perhaps"],
        2,
        r"flag --saved_model=perhaps",
    ),
    ("show-no-argument", ["show"], 2, r"needs exactly one GENOTYPE_OR_RUN argument, got 0"),
    (
        "show-two-arguments",
        ["show", "nasnet_a", "{run}"],
        2,
        r"needs exactly one GENOTYPE_OR_RUN argument, got 2",
    ),
    (
        "unknown-subcommand",
        ["frobnicate", "--output_dir={run}"],
        2,
        r"unknown subcommand 'frobnicate'",
    ),
    # out-of-range values the parser used to accept (they failed late, or never), rejected naming the range
    (
        "search-num-blocks-huge",
        ["search", "--output_dir={run}", "--num_blocks=1000000000"],
        2,
        r"flag --num_blocks=1000000000: must be an integer in \[1, 32\]",
    ),
    (
        "search-max-trials-huge",
        ["search", "--output_dir={run}", "--max_trials=99999999999999999999"],
        2,
        r"flag --max_trials=99999999999999999999: must be an integer in \[1, 1000000\]",
    ),
    (
        "search-learning-rate-inf",
        ["search", "--output_dir={run}", "--learning_rate=inf"],
        2,
        r"flag --learning_rate=inf: must be a finite number",
    ),
    (
        "search-learning-rate-zero",
        ["search", "--output_dir={tmp}/o", "--learning_rate=0"],
        2,
        r"flag --learning_rate=0.0: must be a number in \(0, 10\]",
    ),
    (
        "search-fraction-nan",
        ["search", "--output_dir={tmp}/o", "--val_fraction=nan"],
        2,
        r"flag --val_fraction=nan: must be a finite number",
    ),
    (
        "search-fractions-sum",
        ["search", "--output_dir={run}", "--val_fraction=0.8", "--test_fraction=0.8"],
        2,
        r"val_fraction=0.8, test_fraction=0.8: --val_fraction \+ --test_fraction must be below 1",
    ),
    (
        "search-image-size-huge",
        ["search", "--output_dir={tmp}/o", "--image_size=2147483648"],
        2,
        r"flag --image_size=2147483648: must be an integer in \[4, 4096\]",
    ),
    (
        "search-seed-negative",
        ["search", "--output_dir={tmp}/o", "--seed=-1"],
        2,
        r"flag --seed=-1: must be an integer in \[0, 4294967295\]",
    ),
    (
        "search-seed-huge",
        ["search", "--output_dir={tmp}/o", "--seed=1099511627776"],
        2,
        r"flag --seed=1099511627776: must be an integer in \[0, 4294967295\]",
    ),
    (
        "search-output-nul",
        ["search", "--output_dir={tmp}/o\x00p"],
        2,
        r"flag --output_dir=.*: must not contain a NUL byte",
    ),
    (
        "train-seed-huge",
        ["train", "--run_dir={run}", "--seed=1099511627776"],
        2,
        r"flag --seed=1099511627776: must be an integer in",
    ),
    (
        "train-learning-rate-inf",
        ["train", "--run_dir={run}", "--learning_rate=inf"],
        2,
        r"flag --learning_rate=inf: must be a finite",
    ),
    (
        "train-epochs-huge",
        ["train", "--run_dir={run}", "--epochs=10000000"],
        2,
        r"flag --epochs=10000000: must be an integer in \[1, 100000\]",
    ),
    (
        "train-output-nul",
        ["train", "--run_dir={run}", "--output_dir={tmp}/f\x00"],
        2,
        r"flag --output_dir=.*: must not contain a NUL",
    ),
    # values only the job can check (exit 1)
    (
        "search-output-is-file",
        ["search", "--output_dir={file}"],
        1,
        r"--output_dir '.*afile' is a file, not a directory",
    ),
    (
        "search-output-under-file",
        ["search", "--output_dir={file}/run"],
        1,
        r"--output_dir '.*afile/run' cannot be made: '.*afile' is a file",
    ),
    ("search-output-empty", ["search", "--output_dir="], 1, r"--output_dir must not be empty"),
    (
        "search-output-read-only",
        ["search", "--output_dir={ro}/run"],
        1,
        r"--output_dir '.*ro/run': '.*ro' is not writable",
    ),
    (
        "search-unknown-op",
        ["search", "--output_dir={tmp}/o", "--ops=sep_conv_3x3,warp_drive"],
        1,
        r"--ops=sep_conv_3x3,warp_drive: .*warp_drive",
    ),
    (
        "search-empty-ops",
        ["search", "--output_dir={tmp}/o", "--ops="],
        1,
        r"--ops=: Unknown op vocabulary ''",
    ),
    (
        "search-population-1",
        ["search", "--output_dir={tmp}/o", "--population_size=1"],
        1,
        r"--population_size must be 0 .* or >= 2",
    ),
    (
        "search-sample-gt-population",
        ["search", "--output_dir={tmp}/o", "--population_size=2", "--sample_size=5"],
        1,
        r"--sample_size \(5\) must not exceed --population_size \(2\)",
    ),
    (
        "search-images-too-small",
        ["search", "--output_dir={tmp}/o", "--data={tiny}"],
        1,
        r"--image_size: 2x2 images are too small for the nasnet network's two reductions",
    ),
    (
        "search-nb201-odd-size",
        ["search", "--output_dir={tmp}/o", "--space=nb201", "--image_size=10"],
        1,
        r"nb201 network's .* divisible by 4, got 10x10",
    ),
    (
        "resume-other-space",
        ["search", "--output_dir={run}", *RUN_FLAGS, "--space=macro"],
        1,
        r"holds a search run with other settings: --space='macro' \(saved run: 'nasnet'\).*--overwrite",
    ),
    (
        "resume-other-controller",
        ["search", "--output_dir={run}", *RUN_FLAGS, "--controller=reinforce"],
        1,
        r"--controller='reinforce' \(saved run: 'evolution'\)",
    ),
    (
        "resume-other-blocks",
        ["search", "--output_dir={run}", *RUN_FLAGS, "--num_blocks=2"],
        1,
        r"--num_blocks=2 \(saved run: 1\)",
    ),
    (
        "resume-other-data",
        ["search", "--output_dir={run}", *RUN_FLAGS, "--data={tiny}"],
        1,
        r"--data='.*tiny.npz' \(saved run: 'digits'\)",
    ),
    (
        "train-no-run",
        ["train", "--run_dir={tmp}/nothing"],
        1,
        r"--run_dir '.*nothing' has no best_genotype.json",
    ),
    (
        "train-output-is-file",
        ["train", "--run_dir={run}", "--output_dir={file}"],
        1,
        r"--output_dir '.*afile' is a file",
    ),
    (
        "train-run-dir-is-file",
        ["train", "--run_dir={file}", "--genotype=nasnet_a"],
        1,
        r"--run_dir '.*afile' is a file, not a directory",
    ),
    (
        "train-genotype-no-concat",
        ["train", "--run_dir={run}", "--genotype=normal=foo~0"],
        1,
        r"Cannot read architecture 'normal=foo~0': .*lacks '/concat'",
    ),
    (
        "train-genotype-bad-index",
        [
            "train",
            "--run_dir={run}",
            "--genotype=normal=sep_conv_3x3~0+identity~7/2;reduce=max_pool_3x3~0+identity~1/2",
        ],
        1,
        r"normal cell, block 0, input 1: index 7 out of range",
    ),
    (
        "train-genotype-unknown-op",
        [
            "train",
            "--run_dir={run}",
            "--genotype=normal=warp~0+identity~1/2;reduce=max_pool_3x3~0+identity~1/2",
        ],
        1,
        r"warp",
    ),
    (
        "train-genotype-garbage",
        ["train", "--run_dir={run}", "--genotype=garbage"],
        1,
        r"Cannot read architecture 'garbage': not a run directory, file, zoo name",
    ),
    (
        "train-genotype-json",
        ["train", "--run_dir={run}", '--genotype={"normal": 3}'],
        1,
        r"Genotype JSON lacks the 'reduce' cell",
    ),
    (
        "train-genotype-bad-json",
        ["train", "--run_dir={run}", '--genotype={"normal": '],
        1,
        r"Cannot read architecture",
    ),
    (
        "train-genotype-nb201",
        ["train", "--run_dir={run}", "--genotype=|bad~0|"],
        1,
        r"NB201 string '\|bad~0\|' must have 3",
    ),
    (
        "train-genotype-macro",
        ["train", "--run_dir={run}", "--genotype=24x3"],
        1,
        r"macro layer 0 '24x3' is not FILTERSxKERNELsSTRIDE",
    ),
    (
        "train-genotype-empty-dir",
        ["train", "--run_dir={run}", "--genotype={tmp}"],
        1,
        r"is a directory without best_genotype.json",
    ),
    (
        "train-nb201-odd-size",
        ["train", "--run_dir={run}", f"--genotype={NB201}", "--image_size=6"],
        1,
        r"nb201 network's .* divisible by 4, got 6x6",
    ),
    (
        "export-no-run",
        ["export", "--run_dir={tmp}/nothing"],
        1,
        r"--run_dir '.*nothing' has neither final/train.json nor a finished search",
    ),
    (
        "export-model-dir",
        ["export", "--run_dir={run}", "--model_dir={tmp}"],
        1,
        r"--model_dir '.*' has no train.json",
    ),
    (
        "export-dir-is-file",
        ["export", "--run_dir={run}", "--export_dir={file}", "--nosaved_model"],
        1,
        r"--export_dir '.*afile' is a file",
    ),
    ("show-garbage", ["show", "garbage"], 1, r"Cannot read architecture 'garbage'"),
    (
        "show-dir-without-genotype",
        ["show", "{tmp}"],
        1,
        r"is a directory without best_genotype.json",
    ),
    (
        "show-macro-skip-missing-layer",
        ["show", "--text_only", "24x3s1;36x5s2<3"],
        1,
        r"macro layer 1: skip from layer 3 is invalid; skips must name earlier layers 0..0",
    ),
    (
        "show-macro-zero-filters",
        ["show", "--text_only", "0x3s1"],
        1,
        r"macro layer 0: filters must be a positive integer",
    ),
    (
        "show-genotype-json-name",
        [
            "show",
            "--text_only",
            '{"normal": {"blocks": []}, "reduce": {"blocks": []}, "name": 3.5}',
        ],
        1,
        r"'name' must be a string, got float 3.5",
    ),
    (
        "show-bad-index",
        [
            "show",
            "--text_only",
            "normal=sep_conv_3x3~0+identity~9/2;reduce=max_pool_3x3~0+identity~1/2",
        ],
        1,
        r"index 9 out of range",
    ),
    (
        "search-warmup-not-one-shot",
        ["search", "--output_dir={tmp}/new", "--warmup_epochs=3"],
        1,
        r"--warmup_epochs applies to one-shot controllers",
    ),
    (
        "search-warmup-too-long",
        [
            "search",
            "--output_dir={tmp}/new",
            "--controller=enas",
            "--space=nb201",
            "--epochs=4",
            "--warmup_epochs=4",
        ],
        1,
        r"--warmup_epochs=4 must be smaller than the supernet's --epochs \(4\)",
    ),
    (
        "search-warmup-negative",
        ["search", "--output_dir={tmp}/new", "--controller=enas", "--warmup_epochs=-2"],
        2,
        r"flag --warmup_epochs=-2",
    ),
    (
        "show-png-in-missing-dir",
        ["show", "nasnet_a", "--png={tmp}/nodir/cells.png"],
        2,
        r"cannot write the picture '.*nodir/cells.png'.*--png",
    ),
]


def _fill(arg, fmt):
    for k, v in fmt.items():
        arg = arg.replace("{" + k + "}", v)
    return arg


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_bad_command_line_row(row, saved_run, tmp_path, monkeypatch, capsys):
    """`python -m keras_nas.cli ...` in-process (cli.main(argv)): exit code, one clear error line
    naming the flag/value, no traceback, the saved run unchanged and nothing else written."""
    from keras_nas import cli

    _, argv, code, pattern = row
    if "{ro}" in " ".join(argv) and os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # anything written by mistake into the cwd shows up here
    (tmp_path / "afile").write_text("not a directory\n")
    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, x_train=np.zeros((30, 2, 2, 1), np.float32), y_train=np.arange(30) % 3)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    fmt = {
        "run": str(saved_run),
        "tmp": str(work),
        "file": str(tmp_path / "afile"),
        "tiny": str(tiny),
        "ro": str(ro),
    }
    before = digest(saved_run)
    try:
        rc = cli.main([_fill(a, fmt) for a in argv])
    except SystemExit as e:  # absl may exit by itself; it must still say why
        rc = e.code
    err = capsys.readouterr().err
    assert rc == code, err
    clear_error(err, "keras-nas", pattern)
    assert len(err.strip().splitlines()) <= 15, err
    assert digest(saved_run) == before, "the saved run changed"
    assert not os.listdir(work), f"files were written: {os.listdir(work)}"
    assert sorted(os.listdir(ro)) == [] and sorted(os.listdir(tmp_path)) == [
        "afile",
        "ro",
        "tiny.npz",
        "work",
    ]
