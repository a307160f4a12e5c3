"""The guide-screen task channel: a campaign or journey send that puts a task on the member's home
store's guide screens over MQTT ("王女士 该回购面霜了：送小样"), behind the same ``Channel``
interface as SMS. Nothing reaches the member's phone, so it is an in-store channel
(``consent.IN_STORE``): the address is the home store, suppression still holds.

The task goes out with QoS 1 and an MQTT expiry (``TASK_TTL``), and counts as sent once the
broker has acknowledged it; a broker that does not answer makes the send fail, and the sender
retries it with back-off like any other provider.
"""

from __future__ import annotations

from datetime import timedelta

import paho.mqtt.client as mqtt

from cloud.channels.notice import ChannelFailed, Notice
from cloud.clock import utcnow
from cloud.db import Database
from protocol import topics, transport
from protocol.messages import GuideTask, new_id

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
