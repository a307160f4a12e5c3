"""The cloud's periodic chores in one daemon thread: re-send unacknowledged commands, advance
running rollouts, prune old telemetry.

Erase and pack commands must reach boxes that were offline when they were queued, and a rollout
must be judged even if nobody calls the API, so something has to wake up on its own. One thread
per cloud process is enough: every chore claims its rows in the database, so several processes
running it at once do no harm. A chore that fails is logged and tried again next time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cloud.fleet.commands import CommandSender
from cloud.db import Database
from cloud.fleet.rollout import service as rollouts
from cloud.fleet.rollout import telemetry

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0


class Upkeep:
    def __init__(self, db: Database, sender: CommandSender, *, tick_s: float, rollout_every_s: float) -> None:
        """Due commands go out every ``tick_s``; rollouts are looked at every ``rollout_every_s``."""
        self._tick_s = tick_s
        self._chores: dict[str, tuple[float, Callable[[], object]]] = {
            # in this order, so commands a rollout step queues go out in the same pass
            "rollouts": (rollout_every_s, lambda: rollouts.evaluate_due(db)),
            "prune": (PRUNE_EVERY_S, lambda: telemetry.prune(db)),
            "commands": (0.0, sender.flush),
        }
        self._due = dict.fromkeys(self._chores, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloud-upkeep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def run_once(self) -> None:
        for name, (every, chore) in self._chores.items():
            now = time.monotonic()
            if now < self._due[name]:
                continue
            self._due[name] = now + every
            try:
                chore()
            except Exception:  # noqa: BLE001 - a chore that fails now is tried again at its next turn
                log.exception("upkeep: %s failed; trying again later", name)

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            self.run_once()
