"""Order batches as a brand's channels send them (issue 16), for ``bench/order_stream.py`` (over
HTTP) and ``bench/order_landing.py`` (in process): one builder, so both benches land the same mix.

A batch is ``size`` sales on one channel (a POS and two online shops, the POS twice as often), 70 %
of them by one of the known members' cards (the POS) or phones (online), then one refund in 50,
full or partial, of that channel's earlier sales, then two bad rows (an unreadable time, a negative
sale) for the quarantine.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

CHANNELS = ["pos", "pos", "tmall", "youzan"]
SKUS = [("SKU-1001", 399.0), ("SKU-1002", 129.0), ("SKU-2001", 12.0)]


def order(no: str, channel: str, card: str | None, now: datetime, rng: random.Random) -> dict:
    """One sale as a channel posts it; ``card`` a known member's (their phone online), None a walk-in."""
    sku, price = rng.choice(SKUS)
    qty = rng.randint(1, 3)
    row = {"order_no": no, "ts": now.isoformat(), "paid": round(price * qty, 2),
           "lines": [{"sku": sku, "qty": qty, "price": price}]}
    if channel == "pos":
        row["store"] = rng.choice(["sh-001", "sh-002"])
    if card:
        row["member"] = {"card": card} if channel == "pos" else {"phone": f"139{int(card[2:]):08d}"}
    return row


class Batches:
    """One poster's batches: each channel's sales remembered, so later batches refund some of them."""

    def __init__(self, prefix: str, cards: list[str], rng: random.Random) -> None:
        self.prefix, self.cards, self.rng = prefix, cards, rng
        self.sold: dict[str, list[dict]] = {}
        self.made = 0

    def next(self, size: int) -> tuple[str, list[dict]]:
        """The next batch's channel and rows (order numbers ``{prefix}{batch}-{i}``, unique per prefix)."""
        rng, tag = self.rng, f"{self.prefix}{self.made}"
        self.made += 1
        channel = CHANNELS[rng.randrange(len(CHANNELS))]
        sales = [order(f"{tag}-{i}", channel, self.cards[rng.randrange(len(self.cards))] if rng.random() < 0.7
                       else None, datetime.now(UTC), rng) for i in range(size)]
        earlier = self.sold.get(channel, [])
        refunds = []
        for _ in range(max(1, size // 50) if earlier else 0):  # full and partial refunds of earlier sales
            sale = earlier[rng.randrange(len(earlier))]
            refunds.append({**sale, "order_no": f"{sale['order_no']}-R{rng.randrange(10**6)}", "type": "refund",
                            "refund_of": sale["order_no"], "paid": round(sale["paid"] * rng.choice((1.0, 0.5)), 2),
                            "ts": datetime.now(UTC).isoformat()})
        self.sold.setdefault(channel, []).extend(sales)
        bad = [{"order_no": f"BAD{tag}", "paid": 1, "ts": "x", "lines": []},
               {**sales[0], "order_no": f"NEG{tag}", "paid": -3}]
        return channel, sales + refunds + bad
