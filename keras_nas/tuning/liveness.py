"""Distributed liveness: heartbeats, deadlines, and handing trials of silent workers to others.

Why: keras-tuner's chief waits forever for a worker that died mid-trial. Here the chief
(:class:`LivenessMixin`, mixed into the oracle) records a sign of life for every running
trial (workers poll ``get_trial`` every ``heartbeat_interval_s``; ``update_trial`` counts
too) and re-queues a trial whose worker went silent for ``heartbeat_timeout_s`` or ran past
``trial_deadline_s``. The worker side (:class:`Heartbeat`) sends those polls from a thread.
"""

from __future__ import annotations

import threading
import time

from keras_nas.tuning import internals


class LivenessMixin:
    """Chief-side liveness for an oracle (needs ``ongoing_trials``, ``retry_queue``, ``save``)."""

    def init_liveness(self, heartbeat_timeout_s, trial_deadline_s):
        for name, v in (
            ("heartbeat_timeout_s", heartbeat_timeout_s),
            ("trial_deadline_s", trial_deadline_s),
        ):
            if v is not None and not (
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            ):
                raise ValueError(f"{name} must be a positive number of seconds or None, got {v!r}.")
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.trial_deadline_s = trial_deadline_s
        # trial_id -> monotonic time of the last sign of life / start.
        self._last_seen: dict = {}
        self._started_at: dict = {}
        self.expired: list = []  # [(trial_id, tuner_id, reason)] handed to another worker

    @property
    def watches_liveness(self) -> bool:
        return bool(self.heartbeat_timeout_s or self.trial_deadline_s)

    def trial_started(self, trial_id) -> None:
        now = time.monotonic()
        self._last_seen[trial_id] = now
        self._started_at[trial_id] = now

    def trial_stopped(self, trial_id) -> None:
        self._last_seen.pop(trial_id, None)
        self._started_at.pop(trial_id, None)

    def heartbeat(self, trial_id) -> None:
        """Record a sign of life for a running trial (keras-nas workers call ``get_trial``)."""
        if trial_id in self._last_seen:
            self._last_seen[trial_id] = time.monotonic()

    def should_idle(self, tuner_id) -> bool:
        """Budget used up but other workers still run trials: keep this worker waiting (IDLE)
        so it can take over a trial whose worker dies, instead of sending it home."""
        return bool(
            self.watches_liveness
            and tuner_id not in self.ongoing_trials
            and not self.retry_queue
            and self.max_trials
            and len(self.trials) >= self.max_trials
            and self.ongoing_trials
        )

    @internals.synchronized
    def expire_stale(self, now=None) -> list:
        """Hand trials whose worker went silent to another worker.

        A running trial with no heartbeat for ``heartbeat_timeout_s`` (or running longer than
        ``trial_deadline_s``) leaves ``ongoing_trials`` and joins keras-tuner's retry queue (the
        next ``create_trial`` from any worker gets it; it does not count as a retry). Its
        worker is forgotten (so the chief can finish without it); a late report for a trial
        that has meanwhile ended is ignored. Returns ``[(trial_id, tuner_id, reason)]``.
        """
        if not self.watches_liveness or not self.ongoing_trials:
            return []
        now = time.monotonic() if now is None else now
        out = []
        for tuner_id, trial in list(self.ongoing_trials.items()):
            tid = trial.trial_id
            seen = self._last_seen.setdefault(tid, now)
            started = self._started_at.setdefault(tid, now)
            reason = None
            if self.heartbeat_timeout_s and now - seen > self.heartbeat_timeout_s:
                reason = (
                    f"no heartbeat from worker {tuner_id!r} for {now - seen:.1f} s "
                    f"(heartbeat_timeout_s={self.heartbeat_timeout_s})"
                )
            elif self.trial_deadline_s and now - started > self.trial_deadline_s:
                reason = (
                    f"trial ran {now - started:.1f} s on worker {tuner_id!r} "
                    f"(trial_deadline_s={self.trial_deadline_s})"
                )
            if reason is None:
                continue
            self.ongoing_trials.pop(tuner_id)
            self.tuner_ids.discard(tuner_id)
            self.trial_stopped(tid)
            if tid not in self.retry_queue:
                self.retry_queue.append(tid)
            out.append((tid, tuner_id, reason))
            print(f"keras-nas: trial {tid}: {reason}; handing it to another worker.", flush=True)
        if out:
            self.expired.extend(out)
            self.save()
        return out


class Heartbeat:
    """Worker side: polls the chief for the running trial (``GetTrial``) every ``interval`` s."""

    def __init__(self, client, trial_id, interval):
        self._stop = threading.Event()
        self._client, self._trial_id, self._interval = client, trial_id, float(interval)
        self._thread = threading.Thread(
            target=self._run, name=f"keras-nas-heartbeat-{trial_id}", daemon=True
        )
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self._interval):
            try:
                internals.ping_trial(
                    self._client, self._trial_id, timeout=max(1.0, 2 * self._interval)
                )
            except Exception:  # chief busy or restarting: the next beat tries again
                pass

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=0.5)
