"""What goes wrong during a soak, and when: a schedule of faults as fractions of the run.

Each fault is an action on the fleet at a time; ``disruptions`` records when each store last lost
its way to the screen (the broker restart hits every store, the cut only its store), so the
verifier can ask whether every screen received cards again afterwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Fault:
    name: str
    at_s: float  # seconds after the start of the run
    action: Callable[[], None]
    done_at: float | None = None  # epoch seconds when the action finished
    error: str | None = None


@dataclass
class ChaosLog:
    faults: list[Fault] = field(default_factory=list)
    #: store -> epoch seconds of the end of its last disruption
    disruptions: dict[str, float] = field(default_factory=dict)
    #: (start, end) epoch windows in which door-to-screen latency is not steady-state
    windows: list[tuple[float, float]] = field(default_factory=list)

    def disrupted(self, stores: list[str], start: float, end: float) -> None:
        for store in stores:
            self.disruptions[store] = max(self.disruptions.get(store, 0.0), end)
        self.windows.append((start, end))

    def summary(self) -> list[dict]:
        return [{"fault": f.name, "at_s": round(f.at_s, 1), "ok": f.error is None, "error": f.error} for f in self.faults]


class ChaosRunner(threading.Thread):
    """Runs the faults in time order in its own thread, so sampling continues meanwhile."""

    def __init__(self, faults: list[Fault], started: float) -> None:
        super().__init__(name="chaos", daemon=True)
        self.faults = sorted(faults, key=lambda f: f.at_s)
        self.started = started

    def run(self) -> None:
        for fault in self.faults:
            time.sleep(max(0.0, self.started + fault.at_s - time.time()))
            log.warning("chaos: %s", fault.name)
            try:
                fault.action()
            except Exception as exc:  # a failed fault is reported, the soak goes on
                log.exception("chaos step %s failed", fault.name)
                fault.error = f"{type(exc).__name__}: {exc}"
            fault.done_at = time.time()
