"""Where a box stands: brand, store and device, stamped on everything it publishes.

Kept apart from the face pipeline and the Wi-Fi engine so that each can name it without
importing the other (and the Wi-Fi side never loads the face models).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    brand: str
    store: str
    device: str
