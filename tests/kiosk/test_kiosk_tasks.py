"""Guide tasks from campaigns and journeys (issue 20) on the guide screen, against the real broker:
a task published for the store shows in the strip under the header with its text, 完成 takes it
off, an expired task never shows, and a task naming another store is rejected; 完成 tells the
cloud on the screen's feedback topic, and the cloud's relay takes the task off the store's other
screens (the cloud's half: tests/cloud/test_journeys.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtWidgets import QLabel, QPushButton

from kiosk.guide_screen.tasks import TaskStrip, attach
from protocol import topics
from protocol.codec import decode, encode
from protocol.messages import GuideTask, GuideTaskDone, new_id

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


def _wired(kiosk) -> TaskStrip:
    """The strip wired to the feed as ``kiosk.guide_screen.app`` wires it."""
    strip = attach(kiosk.screen)
    kiosk.feed.task_received.connect(strip.show_task)
    kiosk.feed.task_done_received.connect(lambda done: strip.done(done.task_id))
    strip.completed.connect(kiosk.feed.send_task_done)
    return strip


def test_done_on_one_screen_tells_the_cloud_and_its_relay_clears_the_others(
    start_kiosk, publisher, store, wait_until, artifacts: Path,
) -> None:
    told: list[tuple[str, GuideTaskDone]] = []
    publisher.on_message = lambda c, u, msg: told.append((msg.topic, decode(bytes(msg.payload), GuideTaskDone)))
    publisher.subscribe(f"{topics.ROOT}/{BRAND}/{store}/guide/+/feedback", qos=1)
    counter, floor = start_kiosk(), start_kiosk(screen_id="floor")
    strips = [_wired(counter), _wired(floor)]
    task = _task(store, "王女士 该回购面霜了：送小样")
    time.sleep(0.2)  # the test's subscription is in place
    publisher.publish(topics.guide_task(BRAND, store), encode(task), qos=1).wait_for_publish(5)
    wait_until(lambda: all([t.task_id for t in s.shown()] == [task.task_id] for s in strips), what="the task on both")
    wait_until(lambda: strips[0].height() > 60, what="the strip laid out")
    counter.screen.grab().save(str(artifacts / "kiosk_guide_screen_task.png"))
    [b for b in strips[0].findChildren(QPushButton) if b.text() == "完成"][0].click()
    wait_until(lambda: strips[0].isHidden() and bool(told), what="the cloud told")
    topic, done = told[0]
    assert topic == topics.guide_feedback(BRAND, store, "main")
    assert (done.task_id, done.store, done.screen) == (task.task_id, store, "main")
    assert not strips[1].isHidden()  # the other screen waits for the cloud
    # the cloud, having recorded it, passes it on to every screen of the store
    publisher.publish(topics.guide_task(BRAND, store), encode(done), qos=1).wait_for_publish(5)
    wait_until(lambda: strips[1].isHidden(), what="the task off the other screen")
    assert strips[1].shown() == [] and floor.feed.stats.rejected == 0
