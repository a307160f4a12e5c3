"""The cloud process's periodic work, on one thread: named jobs, each with its own interval.

Several parts of the cloud must wake up on their own: unacknowledged commands are re-sent,
running rollouts judged and old telemetry pruned (``cloud.fleet.upkeep``), closed hours rolled up
and scanned for anomalies (``cloud.health.service``), perishables re-priced
(``cloud.pricing.markdown_runner``). Each registers its jobs here instead of running a loop of its
own. Jobs run one at a time, in the order they were added when several are due at once (so the
commands a rollout step queues go out in the same pass); a job that raises is logged and runs
again at its next turn, so one bad row never stops the others. Every job claims its rows in the
database, so several cloud processes running the same jobs do no harm.

Turns are anchored to the start, not to when a job finished, so jobs with commensurate intervals
stay in step; a job that overran its interval runs next one interval after it finished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Jobs due within this of each other run in the same pass.
_SLACK_S = 0.001


@dataclass
class Job:
    name: str
    every_s: float
    run: Callable[[], object]
    first_after_s: float
    due: float = 0.0  # time.monotonic() of the next turn, set when the scheduler starts
    runs: int = 0
    failures: int = 0


class Scheduler:
    def __init__(self, *, name: str = "cloud-scheduler") -> None:
        self._name = name
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None

    def every(self, name: str, every_s: float, run: Callable[[], object], *, first_after_s: float | None = None) -> None:
        """Run ``run`` every ``every_s`` seconds, the first time ``first_after_s`` after start
        (default: one interval, so a process that only starts and stops never pays for it)."""
        if every_s <= 0:
            raise ValueError(f"job {name}: the interval must be positive, not {every_s}")
        with self._lock:
            if name in self._jobs:
                raise ValueError(f"a job named {name!r} is already scheduled")
            first = every_s if first_after_s is None else max(0.0, first_after_s)
            job = Job(name, every_s, run, first)
            if self._thread is not None:
                job.due = time.monotonic() + first
            self._jobs[name] = job
            self._wake.notify()

    @property
    def jobs(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            start = time.monotonic()
            for job in self._jobs.values():
                job.due = start + job.first_after_s
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let a running job finish, then end the thread (waits up to ``timeout``)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._wake.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("scheduler: a job is still running after %.0f s; leaving it", timeout)

    def run_due(self, now: float | None = None) -> list[str]:
        """Run every job due at ``now`` (monotonic seconds), in order; the names of those run."""
        clock: Callable[[], float] = time.monotonic
        if now is not None:
            fixed = now
            clock = lambda: fixed  # noqa: E731 - a test's clock
        now = clock()
        with self._lock:
            due = [job for job in self._jobs.values() if job.due <= now + _SLACK_S]
        ran: list[str] = []
        for job in due:
            if self._stopping and self._thread is None and ran:
                break  # stopping: the jobs left run at the next start, if any
            self._run(job, clock)
            ran.append(job.name)
        return ran

    def _run(self, job: Job, clock: Callable[[], float]) -> None:
        try:
            job.run()
        except Exception:
            job.failures += 1
            log.exception("scheduled job %s failed; it runs again in %.0f s", job.name, job.every_s)
        finally:
            job.runs += 1
            with self._lock:
                job.due += job.every_s
                finished = clock()
                if job.due < finished:  # overran: never catch up with a burst of turns
                    job.due = finished + job.every_s

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping:
                    wait = min((job.due for job in self._jobs.values()), default=None)
                    wait = None if wait is None else wait - time.monotonic()
                    if wait is not None and wait <= _SLACK_S:
                        break
                    self._wake.wait(wait)
                if self._stopping:
                    return
            self.run_due()
