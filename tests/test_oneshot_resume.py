"""One-shot search: kill -9 mid-search and resume (the trace continues, nothing finished is lost), and
the shared training loop under tf.distribute.MirroredStrategy over 2 logical CPUs (traced steps). Both
run in a subprocess (tests/_oneshot_driver.py), waited on by events (files), never a fixed sleep."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _timing import scaled, wait_while_progressing

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "_oneshot_driver.py")
STALL_S = 180  # no output or file change for this long (scaled by load): the driver is hung


def _env():
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
        PYTHONPATH=os.path.dirname(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return env


def _start(tmp_path, *args):
    out = open(tmp_path / "driver.out", "a")
    return subprocess.Popen(
        [sys.executable, DRIVER, *map(str, args)], env=_env(), stdout=out, stderr=subprocess.STDOUT
    )


def _finish(p, tmp_path, files):
    try:
        ok = wait_while_progressing([p], [tmp_path / "driver.out", *files], STALL_S)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    assert ok and p.returncode == 0, (tmp_path / "driver.out").read_text()[-3000:]


def _epochs_done(state_path):
    try:
        with open(state_path) as f:
            return json.load(f)["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("strategy", ["enas"])  # controller state + host-sampled paths
def test_sigkill_mid_search_resumes_and_the_trace_continues(tmp_path, strategy):
    run, result = tmp_path / "run", tmp_path / "result.json"
    state = run / "oneshot.json"
    epochs = 4
    p = _start(tmp_path, "search", run, result, strategy, epochs)
    last, last_change = -1, time.monotonic()
    killed_at = None
    while time.monotonic() - last_change < scaled(STALL_S):
        done = _epochs_done(state)
        if done != last:
            last, last_change = done, time.monotonic()
        if done >= 2:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            killed_at = done
            break
        if p.poll() is not None:
            break
        time.sleep(0.02)
    assert killed_at is not None and killed_at < epochs, (tmp_path / "driver.out").read_text()[
        -3000:
    ]
    before = json.loads(state.read_text())
    assert not result.exists() and before["result"] is None

    p = _start(tmp_path, "search", run, result, strategy, epochs)
    _finish(p, tmp_path, [run])
    r = json.loads(result.read_text())
    assert "resuming the search" in (tmp_path / "driver.out").read_text()
    assert r["epochs"] == epochs and 0 < r["epochs_this_run"] <= epochs - killed_at
    assert [t["epoch"] for t in r["trace"]] == list(range(1, epochs + 1))
    # the epochs finished before the kill are kept exactly as they were written
    assert r["trace"][: len(before["trace"])] == before["trace"]
    assert (run / "best_genotype.json").exists() and r["architecture"] in (
        run / "best_genotype.json"
    ).read_text()

    # a finished search is returned as it is (in this process: it returns before building anything)
    from _oneshot_driver import SEARCH, data

    from keras_nas.oneshot import search

    again = search(*data(), strategy=strategy, epochs=epochs, directory=str(run), **SEARCH)
    assert again.epochs_this_run == 0 and str(again.architecture) == r["architecture"]
    assert json.loads(json.dumps(again.trace)) == r["trace"]


def test_loop_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    from keras_nas.space.nb201 import NB201Cell

    result = tmp_path / "mirrored.json"
    p = _start(tmp_path, "mirrored", result)
    _finish(p, tmp_path, [])
    out = json.loads(result.read_text())
    # clipping acts on the gradient summed over the replicas ([1,1,1] + [2,2,2]), as on one device
    np.testing.assert_allclose(out["clip"]["1.0"], [3**-0.5] * 3, rtol=1e-5)
    np.testing.assert_allclose(out["clip"]["100.0"], [3.0] * 3, rtol=1e-6)
    for name in ("darts",):
        assert out[name]["replicas"] == 2
        NB201Cell.parse(out[name]["architecture"])
        assert all(
            t["train_loss"] == t["train_loss"] and t["train_loss"] > 0 for t in out[name]["trace"]
        )
