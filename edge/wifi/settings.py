"""What one Wi-Fi source needs, as one typed section: the ``[wifi]`` table of the box config and
the options of ``instore edge wifi run`` are this model.

It only names files (the brand secret, calibration, registered keys, the SQLite memory) and does
not read them: loading them is the runner's job, so a config can be validated where the files
are not (a technician's laptop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from protocol.wifi import MacError, mac_bytes

SourceKind = Literal["capture", "iface", "udp", "http"]

#: A file setting made absolute when read (relative: to the working directory then), so it keeps
#: naming the same file whatever directory the box or a child process runs in later.
AbsolutePath = Annotated[Path, AfterValidator(lambda path: path.expanduser().resolve())]


def _mac(value: str) -> str:
    try:
        mac_bytes(value)
    except MacError as exc:  # its message never repeats the MAC
        raise ValueError(str(exc)) from None
    return value


class WifiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, description="capture.pcap[ng], iface:NAME (monitor mode), udp:PORT or http:PORT")
    secret_file: AbsolutePath | None = Field(
        default=None, description="file holding the brand's Wi-Fi secret; None: $INSTORE_WIFI_SECRET"
    )
    speed: float = Field(
        default=0.0, ge=0, description="replay pace: 0 as fast as possible, 1 real time, 60 a minute per second"
    )
    calibration: AbsolutePath | None = Field(default=None, description="JSON from `instore edge wifi calibrate`")
    background_macs: list[Annotated[str, AfterValidator(_mac)]] = Field(
        default_factory=list, description="the store's own devices, keyed at once"
    )
    registered: AbsolutePath | None = Field(default=None, description="file of device keys to send presence for; None: every stable device")
    db: AbsolutePath | None = Field(default=None, description="SQLite file for learned equipment and closed sessions")
    rssi_min_dbm: int | None = Field(default=None, ge=-120, le=0, description="override the calibrated in-store threshold")

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        kind, sep, arg = value.partition(":")
        if sep and kind in ("udp", "http") and not (arg.isdigit() and int(arg) < 65_536):
            raise ValueError(f"{kind}: needs a port number, e.g. {kind}:9000")
        if sep and kind == "iface" and not arg:
            raise ValueError("iface: needs an interface name, e.g. iface:wlan0mon")
        return value

    @property
    def kind(self) -> SourceKind:
        kind, sep, _ = self.source.partition(":")
        return kind if sep and kind in ("iface", "udp", "http") else "capture"  # type: ignore[return-value]

    @property
    def finite(self) -> bool:
        """A capture replay ends by itself; live sources run until stopped."""
        return self.kind == "capture"
