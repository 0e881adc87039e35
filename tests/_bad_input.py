"""What the bad-input tests share (test_bad_input.py, test_bad_data.py, test_bad_command_line.py):
the saved search run no bad command may change, a digest of a directory's files to prove it, and
the check that an error is one clear line without a traceback.
"""

import hashlib
import os
import shutil

RUN_FLAGS = [
    "--subset=60",
    "--image_size=8",
    "--max_trials=1",
    "--epochs=1",
    "--num_cells=1",
    "--filters=4",
    "--num_blocks=1",
    "--batch_size=32",
    "--population_size=2",
    "--run_eagerly",
    "--seed=3",
    "--notensorboard",
]


def make_saved_run(tmp_path_factory):
    """A tiny real search run directory (the thing no bad command may change), made once per test
    session: pytest-xdist workers share it through a lock instead of each running a search (the
    ``saved_run`` fixtures of test_bad_data.py and test_bad_command_line.py both return it)."""
    import fcntl

    from keras_nas import cli

    root = tmp_path_factory.getbasetemp().parent  # shared by the xdist workers of one session
    run = root / "bad_input_saved_run"
    with open(root / "bad_input_saved_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run / "run.json").exists():
            shutil.rmtree(run, ignore_errors=True)
            assert cli.main(["search", f"--output_dir={run}", *RUN_FLAGS]) == 0
    return run


def digest(path):
    h = {}
    for r, _, names in os.walk(path):
        for n in names:
            p = os.path.join(r, n)
            with open(p, "rb") as f:
                h[os.path.relpath(p, path)] = hashlib.sha256(f.read()).hexdigest()
    return h


def clear_error(err, prefix, pattern):
    import re

    assert "Traceback" not in err, err
    assert err.startswith(prefix), err
    assert re.search(pattern, err), (pattern, err)
