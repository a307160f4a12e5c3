"""Peer groups: a store is compared with stores like it, same city tier and format.

A tier-and-format group with fewer than ``MIN_PEERS`` other stores says little, so such a store
falls back to every store of its city tier; a store without a tier has no peers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from cloud.db import Database

MIN_PEERS = 2


@dataclass(frozen=True)
class PeerGroup:
    key: str  # "tier1/mall", or "tier1" after the fallback
    stores: tuple[str, ...]  # the other stores of the group (never the store itself)


def peer_groups(attrs: dict[str, tuple[str | None, str | None]]) -> dict[str, PeerGroup]:
    """store -> its peer group, from store -> (city_tier, format)."""
    by_both: dict[tuple, list[str]] = defaultdict(list)
    by_tier: dict[str | None, list[str]] = defaultdict(list)
    for store, (tier, fmt) in sorted(attrs.items()):
        by_both[(tier, fmt)].append(store)
        by_tier[tier].append(store)
    groups: dict[str, PeerGroup] = {}
    for store, (tier, fmt) in attrs.items():
        if tier is None:
            groups[store] = PeerGroup("none", ())
            continue
        both = tuple(s for s in by_both[(tier, fmt)] if s != store)
        if len(both) >= MIN_PEERS:
            groups[store] = PeerGroup(f"{tier}/{fmt}", both)
        else:
            groups[store] = PeerGroup(tier, tuple(s for s in by_tier[tier] if s != store))
    return groups


def load_peer_groups(db: Database) -> dict[str, PeerGroup]:
    return peer_groups({s: (tier, fmt) for s, tier, fmt in db.rows("SELECT id, city_tier, format FROM stores")})
