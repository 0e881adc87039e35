"""Shared set-up for the chief + workers subprocess tests: a free localhost port, the env, clean-up."""

import os
import socket
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, proc, limit_s: float) -> bool:
    """Wait until the chief accepts connections on ``port`` (True); False once ``proc`` has exited
    or ``limit_s`` (a hang guard: pass a load-scaled limit) has passed."""
    end = time.monotonic() + limit_s
    while proc.poll() is None and time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def cluster_env(port: int) -> dict:
    """Environment for keras-tuner's gRPC chief/workers on localhost (KERASTUNER_TUNER_ID added per process)."""
    return dict(
        os.environ,
        KERASTUNER_ORACLE_IP="127.0.0.1",
        KERASTUNER_ORACLE_PORT=str(port),
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        CUDA_VISIBLE_DEVICES="",
    )


def stop_all(procs: dict, logs: dict) -> None:
    """Kill every process still running and close its log (the tests' ``finally`` clean-up)."""
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait(10)
    for f in logs.values():
        f.close()
