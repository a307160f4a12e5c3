"""Guide tasks from campaigns and journeys (issue 20) on the guide screen, against the real broker:
a task published for the store shows in the strip under the header with its text, 完成 takes it
off, an expired task never shows, and a task naming another store is rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtWidgets import QLabel, QPushButton

from kiosk.guide_screen.tasks import attach
from protocol import topics
from protocol.codec import encode
from protocol.messages import GuideTask, new_id

BRAND = "demo"


def _task(store: str, text: str, *, ttl: timedelta = timedelta(hours=8), brand: str = BRAND) -> GuideTask:
    now = datetime.now(UTC)
    return GuideTask(task_id=new_id(), brand=brand, store=store, member_id="p-1", title="面霜复购", text=text,
                     source="campaign:c1:p-1", ts=now, expires_at=now + ttl)


def test_a_task_shows_under_the_header_until_done_or_expired(start_kiosk, publisher, store, wait_until) -> None:
    kiosk = start_kiosk()
    strip = attach(kiosk.screen)
    kiosk.feed.task_received.connect(strip.show_task)
    assert strip.isHidden()  # no task: the cards keep the whole screen
    due = _task(store, "王女士 该回购面霜了：送小样")
    for task in (_task(store, "过期的任务", ttl=timedelta(seconds=-1)), _task("elsewhere", "别的门店"), due):
        publisher.publish(topics.guide_task(BRAND, store), encode(task), qos=1).wait_for_publish(5)
    wait_until(lambda: [t.task_id for t in strip.shown()] == [due.task_id], what="the task on screen")
    wait_until(lambda: kiosk.feed.stats.rejected_by_reason["topic_mismatch"] == 1, what="the other store's task")
    assert not strip.isHidden()
    labels = [w.text() for w in strip.findChildren(QLabel)]
    assert "王女士 该回购面霜了：送小样" in labels and "面霜复购" in labels
    done = [b for b in strip.findChildren(QPushButton) if b.text() == "完成"]
    done[0].click()
    wait_until(lambda: strip.isHidden(), what="the task done")
    assert strip.shown() == []
