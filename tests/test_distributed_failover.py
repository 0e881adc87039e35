"""Distributed failover: chief + 2 workers on localhost (gRPC, free port, strict timeouts).

Worker ``tuner0`` is SIGKILLed in the middle of a trial; the chief notices the missing
heartbeats (``heartbeat_timeout_s``), hands that trial to ``tuner1``, and the search finishes
its ``max_trials`` with the surviving worker, no trial counted twice. Then the chief itself is
SIGKILLed and restarted with the same command: it resumes from its saved state and the
surviving worker carries on.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest
from _dist_env import cluster_env, free_port, stop_all, wait_until_listening
from _timing import scaled, wait_while_progressing

pytest.importorskip("keras_tuner")
pytest.importorskip("grpc")

MAX_TRIALS = 8
STALL_S = 90  # no new event or file for this long (scaled by load): hung

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import keras_tuner as kt
    from keras_nas.tuning import tuners
    from keras_nas.space import NASNetCellSpace

    out, max_trials = sys.argv[1], int(sys.argv[2])
    tid = os.environ["KERASTUNER_TUNER_ID"]
    cells = NASNetCellSpace(num_blocks=2)

    def event(text):
        fd = os.open(os.path.join(out, "events.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (text + "\\n").encode())
        os.close(fd)

    class Search(tuners.AgingEvolution):
        def run_trial(self, trial, *args, **kwargs):
            event(f"start {tid} {trial.trial_id}")
            time.sleep(float(os.environ.get("TRIAL_SLEEP_S", "1.0")))
            v = trial.hyperparameters.values
            return {"score": sum(o == "sep_conv_3x3" for o in v.values()) + 0.01 * v["normal/b0_in0"]}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            event(f"end {tid} {trial.trial_id}")

    hp = kt.HyperParameters()
    cells.register(hp)
    tuner = Search(
        objective=kt.Objective("score", "max"), max_trials=max_trials, hyperparameters=hp, seed=7,
        directory=os.path.join(out, "search"), project_name="p", population_size=3, sample_size=2,
        kinds={d.name: d.kind for d in cells.decisions},
        heartbeat_timeout_s=3.0, heartbeat_interval_s=0.3, idle_sleep_s=0.1,
        chief_timeout_s=float(os.environ.get("CHIEF_TIMEOUT_S", "600")),
    )
    event(f"ready {tid}")
    tuner.search(verbose=0)
    if "chief" in tid:
        o = tuner.oracle
        with open(os.path.join(out, "chief.json"), "w") as f:
            json.dump({
                "statuses": {t.trial_id: t.status for t in o.trials.values()},
                "end_order": o.end_order,
                "observed": o.controller.get_state().get("num_observed"),
                "pending": len(o.pending_values()),
                "expired": o.expired,
            }, f)
    """
)


def _events(path):
    if not os.path.exists(path):
        return []
    return [line.split() for line in open(path).read().splitlines() if line.strip()]


def test_worker_and_chief_killed(tmp_path):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    base = cluster_env(free_port())
    ev = str(tmp_path / "events.log")
    procs, logs = {}, {}

    def start(tid):
        logs[tid] = open(tmp_path / f"{tid}.log", "a")
        procs[tid] = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), str(MAX_TRIALS)],
            env=dict(base, KERASTUNER_TUNER_ID=tid),
            stdout=logs[tid],
            stderr=subprocess.STDOUT,
        )

    def wait_for(pred, what):
        seen, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < scaled(STALL_S):  # waits while events keep coming
            events = _events(ev)
            if pred(events):
                return
            if len(events) != seen:
                seen, last_change = len(events), time.monotonic()
            time.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what}:\n" + "\n".join(map(" ".join, _events(ev)))
        )

    def tail(tid):
        return (tmp_path / f"{tid}.log").read_text()[-3000:]

    try:
        for tid in ("chief", "tuner0", "tuner1"):
            start(tid)
        # kill worker tuner0 in the middle of its second trial
        wait_for(
            lambda es: sum(e[:2] == ["start", "tuner0"] for e in es) >= 2, "tuner0's second trial"
        )
        time.sleep(0.3)
        procs["tuner0"].send_signal(signal.SIGKILL)
        procs["tuner0"].wait(10)
        killed_trial = [e[2] for e in _events(ev) if e[:2] == ["start", "tuner0"]][-1]
        # kill the chief while tuner1 is inside a trial, after the hand-over; restart it
        wait_for(
            lambda es: any(e[:3] == ["start", "tuner1", killed_trial] for e in es), "the hand-over"
        )
        n_start = sum(e[0] == "start" for e in _events(ev))
        wait_for(lambda es: sum(e[0] == "start" for e in es) > n_start, "tuner1's next trial")
        procs["chief"].send_signal(signal.SIGKILL)
        procs["chief"].wait(10)
        logs["chief"].close()
        start("chief")
        wait_while_progressing([procs["chief"], procs["tuner1"]], [tmp_path], STALL_S)
    finally:
        stop_all(procs, logs)

    assert procs["chief"].returncode == 0, tail("chief")
    assert procs["tuner1"].returncode == 0, tail("tuner1")
    summary = json.loads((tmp_path / "chief.json").read_text())
    assert len(summary["statuses"]) == MAX_TRIALS
    assert set(summary["statuses"].values()) == {"COMPLETED"}, summary
    assert sorted(summary["end_order"]) == sorted(summary["statuses"])  # each counted once
    assert summary["pending"] == 0
    events = _events(ev)
    # the killed worker's trial was handed over and finished by the survivor
    assert any(e[:3] == ["end", "tuner1", killed_trial] for e in events)
    assert not any(e[:3] == ["end", "tuner0", killed_trial] for e in events)
    assert "handing it to another worker" in tail("chief") or killed_trial in [
        t for t, *_ in summary["expired"]
    ]
    ended = [e[2] for e in events if e[0] == "end"]
    assert sorted(set(ended)) == sorted(summary["statuses"])


def test_paused_worker_exits_once_the_chief_is_done(tmp_path):
    """Issue #10.12: a worker paused (SIGSTOP) past heartbeat_timeout_s has its trial handed to
    the other worker; when it wakes after the search ended it leaves promptly (chief_timeout_s)
    instead of waiting in keras-tuner's one-hour gRPC timeout."""
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    port = free_port()
    base = cluster_env(port)
    ev = str(tmp_path / "events.log")
    procs, logs = {}, {}
    n_trials = 4
    try:
        for tid in ("chief", "tuner0", "tuner1"):
            logs[tid] = open(tmp_path / f"{tid}.log", "a")
            procs[tid] = subprocess.Popen(
                [sys.executable, str(script), str(tmp_path), str(n_trials)],
                env=dict(base, KERASTUNER_TUNER_ID=tid, CHIEF_TIMEOUT_S="5", TRIAL_SLEEP_S="2.0"),
                stdout=logs[tid],
                stderr=subprocess.STDOUT,
            )
            if tid == "chief":  # workers wait at most chief_timeout_s (5 s) for it to come up
                assert wait_until_listening(port, procs[tid], scaled(STALL_S)), "chief not up"
        seen, last_change = -1, time.monotonic()
        while not any(e[:2] == ["start", "tuner0"] for e in _events(ev)):
            events = _events(ev)
            if len(events) != seen:
                seen, last_change = len(events), time.monotonic()
            assert time.monotonic() - last_change < scaled(STALL_S), "no trial started on tuner0"
            time.sleep(0.05)
        procs["tuner0"].send_signal(signal.SIGSTOP)  # paused mid-trial
        paused = [e[2] for e in _events(ev) if e[:2] == ["start", "tuner0"]][-1]
        assert wait_while_progressing([procs["chief"], procs["tuner1"]], [tmp_path], STALL_S)
        assert procs["chief"].returncode == 0, (tmp_path / "chief.log").read_text()[-3000:]
        procs["tuner0"].send_signal(signal.SIGCONT)  # wakes after the search ended
        # it must exit on its own: only the chief timeout (5 s) and start-up stand between
        assert wait_while_progressing([procs["tuner0"]], [tmp_path / "tuner0.log"], 30), (
            "paused worker hangs"
        )
    finally:
        if procs.get("tuner0") is not None and procs["tuner0"].poll() is None:
            procs["tuner0"].send_signal(signal.SIGCONT)
        stop_all(procs, logs)
    summary = json.loads((tmp_path / "chief.json").read_text())
    assert (
        set(summary["statuses"].values()) == {"COMPLETED"} and len(summary["statuses"]) == n_trials
    )
    assert paused in [t for t, *_ in summary["expired"]]  # its trial was handed over
    assert "no longer answers" in (tmp_path / "tuner0.log").read_text()


def test_worker_started_after_the_chief_finished_exits(tmp_path):
    """A worker whose first call comes after the chief has finished (it started late, e.g. on a
    loaded machine) leaves within its chief_timeout_s with a clear message. keras-tuner's first
    call waits an hour for a chief (``wait_for_ready``): test_distributed.py's tuner0 hung so in
    CI while tuner1 ran every trial and the chief exited."""
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    base = dict(cluster_env(free_port()), TRIAL_SLEEP_S="0.1")
    ev = str(tmp_path / "events.log")
    procs, logs = {}, {}

    def start(tid, **env):
        logs[tid] = open(tmp_path / f"{tid}.log", "a")
        procs[tid] = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), "2"],
            env=dict(base, KERASTUNER_TUNER_ID=tid, **env),
            stdout=logs[tid],
            stderr=subprocess.STDOUT,
        )

    try:
        start("chief")
        start("tuner1")
        assert wait_while_progressing([procs["chief"], procs["tuner1"]], [tmp_path], STALL_S)
        assert procs["chief"].returncode == 0, (tmp_path / "chief.log").read_text()[-3000:]
        start("tuner0", CHIEF_TIMEOUT_S="2")  # the chief has exited: its port is closed
        assert wait_while_progressing([procs["tuner0"]], [tmp_path / "tuner0.log"], 30), (
            "a worker started after the chief finished hangs"
        )
    finally:
        stop_all(procs, logs)
    log = (tmp_path / "tuner0.log").read_text()
    assert procs["tuner0"].returncode == 0, log[-3000:]
    assert "no chief answered" in log and "chief_timeout_s=2" in log, log[-3000:]
    assert not any(e[:2] == ["start", "tuner0"] for e in _events(ev))


def test_fail_fast_client_gives_up_on_a_missing_chief(monkeypatch):
    """The worker's first call waits at most chief_timeout_s (keras-tuner passes timeout=3600)."""
    from keras_tuner.src import protos

    from keras_nas.tuning import internals

    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(free_port()))  # nothing listens there
    client = internals.fail_fast_client(types.SimpleNamespace(stub=None), 0.5)
    request = protos.get_service().CreateTrialRequest(tuner_id="tuner0")
    with pytest.raises(internals.ChiefGone, match="no chief answered"):
        client.stub.CreateTrial(request, wait_for_ready=True, timeout=3600)
    assert not client.stub.connected
