"""The per-store settings of Wi-Fi presence and footfall, and where each default comes from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PresenceRules(BaseModel):
    """Defaults are justified in docs/WIFI.md: ``rssi_min_dbm`` is calibrated on an empty-store
    baseline (``instore edge wifi calibrate``); the timing values come from published probe
    behaviour and the one-phone captures, not from the capture the estimator is scored on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rssi_min_dbm: int = Field(-80, ge=-120, le=0, description="frames weaker than this are outside the store")
    min_dwell_s: float = Field(60, ge=0, description="a phone heard for less than this is walking past")
    linger_s: float = Field(300, gt=0, description="a phone silent longer than this has left")
    link_window_s: float = Field(300, gt=0, description="a rotated MAC joins a phone heard within this")
    rssi_delta_db: float = Field(10, ge=0, description="RSSI spread of one phone standing still")
    seq_gap: int = Field(64, ge=1, le=2048, description="max sequence-number step across a MAC rotation")
    background_hours: int = Field(6, ge=2, le=24, description="a stable device heard in this many hours of one day is store equipment")
