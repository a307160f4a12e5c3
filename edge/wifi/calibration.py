"""Calibration from an empty-store baseline: which devices are equipment, and how strong a
frame from outside the store can be.

Everything heard while the store is empty is either equipment or outside. Stable devices heard
over ``background_hours``/2 hours or more are equipment (passers-by are brief); the strongest
remaining frame, plus a margin, is the RSSI above which a frame comes from inside.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Set
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from edge.wifi.observation import Observation

MARGIN_DB = 4
#: Never calibrate the threshold below this: a quiet baseline must not make the box count the
#: whole street.
FLOOR_DBM = -90


class Calibration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rssi_min_dbm: int = Field(ge=-120, le=0)
    background_keys: list[str] = Field(default_factory=list, description="brand-keyed stable devices")
    baseline_frames: int = Field(ge=0)
    outside_max_dbm: int | None = None

    @classmethod
    def load(cls, path: Path) -> Calibration:
        return cls.model_validate_json(path.read_text())

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2))


def calibrate(observations: Iterable[Observation], min_hours: int, known: Set[str] = frozenset()) -> Calibration:
    hours: dict[str, set[int]] = defaultdict(set)
    frames: list[Observation] = []
    for obs in observations:
        frames.append(obs)
        if not obs.randomised:
            hours[obs.key].add(int(obs.ts // 3600))
    equipment = {key for key, seen in hours.items() if len(seen) >= min_hours} | set(known)
    outside = [o.rssi for o in frames if o.rssi is not None and o.key not in equipment]
    strongest = max(outside) if outside else None
    threshold = max(FLOOR_DBM, (strongest if strongest is not None else FLOOR_DBM) + MARGIN_DB)
    return Calibration(rssi_min_dbm=min(threshold, -1), background_keys=sorted(equipment),
                       baseline_frames=len(frames), outside_max_dbm=strongest)
