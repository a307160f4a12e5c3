"""The fleet's periodic chores: re-send unacknowledged commands, advance running rollouts, prune
old telemetry.

Erase and pack commands must reach boxes that were offline when they were queued, and a rollout
must be judged even if nobody calls the API, so something has to wake up on its own: these chores
are jobs of the process's scheduler (``cloud.scheduler``). Every chore claims its rows in the
database, so several processes running them at once do no harm. A chore that fails is logged and
tried again at its next turn.
"""

from __future__ import annotations

from collections.abc import Callable

from cloud.db import Database
from cloud.fleet.commands import CommandSender
from cloud.fleet.rollout import service as rollouts
from cloud.fleet.rollout import telemetry
from cloud.scheduler import Scheduler

PRUNE_EVERY_S = 3600.0


class Upkeep:
    def __init__(self, db: Database, sender: CommandSender, *, tick_s: float, rollout_every_s: float) -> None:
        """Due commands go out every ``tick_s``; rollouts are looked at every ``rollout_every_s``."""
        self._tick_s = tick_s
        # in this order, so commands a rollout step queues go out in the same pass
        self._chores: dict[str, tuple[float, Callable[[], object]]] = {
            "rollouts": (rollout_every_s, lambda: rollouts.evaluate_due(db)),
            "telemetry-prune": (PRUNE_EVERY_S, lambda: telemetry.prune(db)),
            "commands": (tick_s, sender.flush),
        }

    def schedule(self, scheduler: Scheduler) -> None:
        """Every chore on the process's scheduler, each the first time one tick after it starts."""
        for name, (every, chore) in self._chores.items():
            scheduler.every(name, every, chore, first_after_s=self._tick_s)

