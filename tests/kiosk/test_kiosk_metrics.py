"""Issue 19 on the guide screen: each card's stage timings and its first paint, on /metrics."""

from __future__ import annotations

import urllib.request

from prometheus_client import REGISTRY

from protocol.messages import StageTimes
from tests.netutil import free_port


def count(stage: str) -> float:
    return REGISTRY.get_sample_value("instore_screen_stage_seconds_count", {"stage": stage}) or 0.0


def test_a_member_card_is_timed_to_its_first_paint(qapp, cards, wait_until):
    from kiosk.guide_screen import metrics
    from kiosk.guide_screen.screen import GuideScreen
    from protocol.metrics import serve

    screen = GuideScreen(cards.store, "main", columns=4, rows=2)
    screen.resize(1920, 1080)
    screen.show()
    drawn, shown = [], []
    screen.card_drawn.connect(lambda card, ms: drawn.append((card, ms)))
    screen.card_shown.connect(lambda card, ms: shown.append((card, ms)))
    before = {stage: count(stage) for stage in ("queued", "card", "received", "shown", "drawn")}
    card = cards.member(0)
    traced = card.model_copy(update={"timings": StageTimes(capture=card.arrival_ts, detected_ms=8, embedded_ms=15,
                                                          queued_ms=16, ingested_ms=20, matched_ms=22, card_ms=25)})
    metrics.carried(traced)  # what the feed does on receipt
    screen.show_card(traced)
    wait_until(lambda: drawn, what="the card's first paint")
    assert drawn[0][0] is traced and drawn[0][1] >= shown[0][1] > 0
    assert count("queued") == before["queued"] + 1 and count("card") == before["card"] + 1
    assert count("shown") == before["shown"] + 1 and count("drawn") == before["drawn"] + 1
    untraced = cards.member(1)
    screen.show_card(untraced)  # an older cloud's card: drawn, counted only as door to screen
    wait_until(lambda: len(drawn) == 2, what="the second card's paint")
    assert count("drawn") == before["drawn"] + 1
    port = free_port()
    assert serve(port, "127.0.0.1") and not serve(None)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'instore_screen_stage_seconds_count{stage="drawn"}' in body
    assert "instore_screen_door_to_screen_seconds_count" in body
    screen.close()
