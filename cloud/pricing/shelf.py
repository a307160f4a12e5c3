"""What every bound shelf label shows, and the redraws that keep it so.

A label is for showing its product's name, price, member price and promotion. Those come from
several places that change on their own: the catalogue (a product import or a price change), the
member price, and the markdown runner's last price for stock still on sale. Instead of each of
them knowing about labels, ``esl_labels.drawn`` (migration 34) records what was last sent to each
label, and ``sync`` compares it with what the label should show now and redraws the difference:

- right away when a label is bound or moved (``PUT /v1/stores/{s}/labels/{label}``);
- right away for a product the markdown runner re-priced (it calls ``sync`` with the sku);
- every ``label_sync_every_s`` for everything else (an import, a member price): one read of the
  labels joined to their product, so a change lands on the shelf within that interval.

The redraw itself is ``cloud.pricing.registry.redraw_commands`` (topic, TTL, QoS 1 with the TTL as
MQTT expiry). ``drawn`` is moved with a compare-and-set before publishing, so the periodic pass and
a request thread never send the same redraw twice. A label whose product is not in the catalogue
(or has no usable price) is left as it is until it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import paho.mqtt.client as mqtt

from cloud import clock
from cloud.db import Database
from cloud.pricing.markdown_planner import markdown_badge
from cloud.pricing.registry import Label, LabelRegistry, redraw_commands
from cloud.scheduler import Scheduler
from protocol import transport
from protocol.esl import LabelCommand, LabelProduct

log = logging.getLogger(__name__)

Publish = Callable[[str, LabelCommand], bool]

# with the last markdown of the label's product in its store: its price and the batch expiry it was for
_LABELS = """
    SELECT l.store, l.label_id, l.sku, l.tag_type, l.drawn, s.brand, s.timezone, p.name, p.price, p.member_price,
        pc.new_price AS markdown_price, pc.expires_on AS markdown_until
    FROM esl_labels l JOIN stores s ON s.id = l.store LEFT JOIN products p ON p.sku = l.sku
    LEFT JOIN (SELECT store, sku, MAX(id) AS id FROM price_changes GROUP BY store, sku) last
        ON last.store = l.store AND last.sku = l.sku
    LEFT JOIN price_changes pc ON pc.id = last.id"""


def label_product(row: dict, today: date) -> LabelProduct | None:
    """What a label of this product shows in a store whose local day is ``today``: the list price,
    or the markdown's price while the marked-down stock is still on sale (its expiry not passed),
    with the markdown's badge; the member price only when it is still below that price."""
    if row["name"] is None or row["price"] is None or float(row["price"]) <= 0:
        return None
    list_price = float(row["price"])
    price = list_price
    if (row["markdown_price"] is not None and row["markdown_until"] is not None
            and date.fromisoformat(row["markdown_until"]) >= today and 0 < float(row["markdown_price"]) < list_price):
        price = float(row["markdown_price"])
    member = row["member_price"]
    return LabelProduct(sku=row["sku"], name=str(row["name"])[:40], price=price,
                        member_price=float(member) if member is not None and 0 < float(member) < price else None,
                        badge=markdown_badge(list_price, price))


@dataclass(frozen=True)
class Drawn:
    """One label redrawn: what it shows now and how many commands were handed to the broker."""

    store: str
    label: str
    product: LabelProduct
    sent: bool


def sync(db: Database, publish: Publish, *, store: str | None = None, skus: list[str] | None = None,
         label: str | None = None, reason: str = "price", at: datetime | None = None) -> list[Drawn]:
    """Redraw every label (of ``store``, of ``skus``, or the one ``label``) whose drawing is not what it should show."""
    at = at or datetime.now(UTC)
    where, params = [], []
    if store is not None:
        where.append("l.store = ?")
        params.append(store)
    if label is not None:
        where.append("l.label_id = ?")
        params.append(label)
    if skus is not None:
        if not skus:
            return []
        where.append(f"l.sku IN ({', '.join('?' for _ in skus)})")
        params.extend(skus)
    sql = _LABELS + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY l.store, l.label_id"
    days: dict[str, date] = {}
    stale = []
    for row in db.query(sql, tuple(params)):
        tz = row["timezone"]
        today = days.setdefault(tz, at.astimezone(clock.zone(tz)).date())
        product = label_product(row, today)
        if product is not None and (drawing := product.model_dump_json()) != row["drawn"]:
            stale.append((row, product, drawing))
    if not stale:
        return []
    # compare-and-set, all in one transaction: whoever moves ``drawn`` from what it read sends the
    # redraw, nobody else; the commands go out once the new drawings are committed
    claimed = []
    with db.transaction() as tx:
        for row, product, drawing in stale:
            if tx.execute("UPDATE esl_labels SET drawn = ?, drawn_at = ? WHERE store = ? AND label_id = ? AND drawn = ?",
                          (drawing, clock.iso_utc(at), row["store"], row["label_id"], row["drawn"])):
                claimed.append((row, product))
    done = []
    for row, product in claimed:
        one = LabelRegistry([Label(label_id=row["label_id"], store=row["store"], sku=row["sku"],
                                   tag_type=row["tag_type"])])
        sent = all([publish(topic, command) for topic, command in
                    redraw_commands(one, row["brand"], row["store"], product, at, reason=reason)])
        done.append(Drawn(row["store"], row["label_id"], product, sent))
    if done:
        log.info("redrew %d shelf labels (%s)", len(done), reason)
    return done


def publisher(client: mqtt.Client | None) -> Publish:
    """Publish label commands on the process's one MQTT connection: QoS 1, the command's TTL as expiry."""

    def publish(topic: str, command: LabelCommand) -> bool:
        if client is None:
            return False
        info = transport.publish(client, topic, command, qos=1, expiry_s=command.ttl_s)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("redraw of label %s not sent yet: %s", command.label, mqtt.error_string(info.rc))
            return False
        return True

    return publish


class LabelSync:
    """Keeps every bound label drawn with what it is for, on the cloud process's MQTT connection."""

    def __init__(self, db: Database, client: mqtt.Client, *, every_s: float) -> None:
        self._db = db
        self._client = client
        self._every_s = every_s

    def schedule(self, scheduler: Scheduler) -> None:
        scheduler.every("label-sync", self._every_s, self.sync, first_after_s=0)

    def sync(self, *, store: str | None = None, skus: list[str] | None = None, label: str | None = None,
             reason: str = "price", at: datetime | None = None) -> list[Drawn]:
        return sync(self._db, publisher(self._client), store=store, skus=skus, label=label, reason=reason, at=at)
