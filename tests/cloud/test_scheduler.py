"""The cloud's one scheduler: named jobs on one thread, in order, a failing job retried at its next turn."""

from __future__ import annotations

import threading
import time

import pytest

from cloud.scheduler import Scheduler


def test_jobs_run_at_their_intervals_in_order_and_a_failure_does_not_stop_them() -> None:
    scheduler = Scheduler()
    ran: list[str] = []
    threads: set[str] = set()
    failed_once = threading.Event()
    done = threading.Event()

    def flaky() -> None:
        threads.add(threading.current_thread().name)
        if not failed_once.is_set():
            failed_once.set()
            raise RuntimeError("a failing job must not stop the scheduler")
        ran.append("flaky")
        if ran.count("flaky") >= 3:
            done.set()

    def steady() -> None:
        threads.add(threading.current_thread().name)
        ran.append("steady")

    scheduler.every("flaky", 0.05, flaky, first_after_s=0)
    scheduler.every("steady", 0.05, steady)
    scheduler.start()
    try:
        assert done.wait(10)
    finally:
        scheduler.stop()
    assert threads == {"cloud-scheduler"}  # one thread for every job
    assert ran.count("steady") >= 2
    # both due together: in the order they were added
    pairs = [(a, b) for a, b in zip(ran, ran[1:]) if a != b]
    assert ("flaky", "steady") in pairs
    count = len(ran)
    time.sleep(0.2)
    assert len(ran) == count  # stopped means stopped


def test_first_turn_waits_one_interval_by_default() -> None:
    scheduler = Scheduler()
    calls: list[str] = []
    scheduler.every("slow", 3600, lambda: calls.append("slow"))
    scheduler.every("now", 3600, lambda: calls.append("now"), first_after_s=0)
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert calls == ["now"]


def test_run_due_anchors_turns_and_never_bursts_after_an_overrun() -> None:
    scheduler = Scheduler()
    scheduler.every("a", 10, lambda: None, first_after_s=0)
    scheduler.every("b", 5, lambda: None, first_after_s=0)
    assert scheduler.run_due(0) == ["a", "b"]
    assert scheduler.run_due(5) == ["b"]
    assert scheduler.run_due(10) == ["a", "b"]  # still in step
    assert scheduler.run_due(1000) == ["a", "b"]  # far behind: once each, not once per missed turn
    assert scheduler.run_due(1001) == []


def test_a_job_added_while_running_and_bad_jobs() -> None:
    scheduler = Scheduler()
    scheduler.start()
    try:
        ran = threading.Event()
        scheduler.every("late", 0.01, ran.set, first_after_s=0)
        assert ran.wait(5)
        with pytest.raises(ValueError, match="already scheduled"):
            scheduler.every("late", 1, lambda: None)
        with pytest.raises(ValueError, match="positive"):
            scheduler.every("never", 0, lambda: None)
    finally:
        scheduler.stop()
    assert scheduler.jobs == ["late"]
