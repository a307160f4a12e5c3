"""The guide-screen task channel: a campaign or journey send that puts a task on the member's home
store's guide screens over MQTT ("王女士 该回购面霜了：送小样"), behind the same ``Channel``
interface as SMS. Nothing reaches the member's phone, so it is an in-store channel
(``consent.IN_STORE``): the address is the home store, suppression still holds.

The task goes out with QoS 1 and an MQTT expiry (``TASK_TTL``), and counts as sent once the
broker has acknowledged it; a broker that does not answer makes the send fail, and the sender
retries it with back-off like any other provider.

A guide's 完成 comes back as a ``GuideTaskDone`` on the screen's feedback topic (the ingest hands it
to ``completed``): the first tap of a task this cloud sent to that store is recorded (who, where,
when) and passed on to the store's task topic, so the task leaves every screen of the store;
``totals`` counts a campaign's or journey's tasks sent and done for their results.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import paho.mqtt.client as mqtt

from cloud.channels.notice import ChannelFailed, Notice
from cloud.clock import iso, utcnow
from cloud.db import Database
from protocol import topics, transport
from protocol.messages import GuideTask, GuideTaskDone, new_id

Completion = Literal["recorded", "duplicate", "unknown_task"]
#: how long a task stays on the screens: the day's shift
TASK_TTL = timedelta(hours=10)
_ACK_TIMEOUT_S = 5.0


class GuideTaskChannel:
    name = "guide_task"

    def __init__(self, db: Database, client: mqtt.Client) -> None:
        self.db, self._client = db, client
        self._brands: dict[str, str] = {}

    def _brand(self, store: str) -> str:
        if store not in self._brands:
            brand = self.db.scalar("SELECT brand FROM stores WHERE id = ?", (store,))
            if brand is None:
                raise ChannelFailed(f"no store {store}")
            self._brands[store] = str(brand)
        return self._brands[store]

    def send(self, address: str, notice: Notice) -> str:
        """``address`` is the store; the receipt is the task's id."""
        now = utcnow()
        task = GuideTask(task_id=new_id(), brand=self._brand(address), store=address,
                         member_id=notice.payload.get("person"), title=notice.title[:100], text=notice.text[:300],
                         source=f"campaign:{notice.key}"[:100], ts=now, expires_at=now + TASK_TTL)
        failed = transport.publish_confirmed(self._client, topics.guide_task(task.brand, task.store), task,
                                             timeout=_ACK_TIMEOUT_S, expiry_s=int(TASK_TTL.total_seconds()))
        if failed is not None:
            raise ChannelFailed(f"the guide task was not published: {failed}")
        return task.task_id

    def completed(self, done: GuideTaskDone) -> Completion:
        """A guide tapped 完成: recorded once, then passed on to every screen of the store (QoS 1, for
        the rest of the task's time on the screens). A task this cloud never sent to that store is
        ``unknown_task``; a repeat (another screen, a re-delivery) is a ``duplicate``, not relayed again."""
        outcome = record_done(self.db, done)
        if outcome == "recorded":
            transport.publish(self._client, topics.guide_task(done.brand, done.store), done, qos=1,
                              expiry_s=int(TASK_TTL.total_seconds()))
        return outcome


def record_done(db: Database, done: GuideTaskDone) -> Completion:
    with db.transaction() as tx:
        if tx.scalar("SELECT 1 FROM marketing_sends WHERE receipt = ? AND channel = 'guide_task' AND address = ?",
                     (done.task_id, done.store)) is None:
            return "unknown_task"
        added = tx.execute("INSERT INTO guide_tasks_done (task_id, brand, store, screen, assistant, done_at, received) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           (done.task_id, done.brand, done.store, done.screen, done.assistant, iso(done.ts),
                            iso(utcnow())))
    return "recorded" if added else "duplicate"


def totals(db: Database, campaign_like: str) -> dict[str, int]:
    """Guide tasks of the campaigns whose id is ``LIKE campaign_like`` (a campaign's id; a journey's
    ``<id>-%``): sent to the screens and done by a guide."""
    sent, done = db.rows("SELECT COUNT(*), COUNT(d.task_id) FROM marketing_sends s LEFT JOIN guide_tasks_done d "
                         "ON d.task_id = s.receipt WHERE s.campaign_id LIKE ? AND s.channel = 'guide_task' "
                         "AND s.status IN ('sent', 'delivered')", (campaign_like,))[0]
    return {"sent": int(sent), "done": int(done)}
