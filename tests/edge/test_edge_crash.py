"""What a crash can do to the outbox (docs/EDGE.md, "What a crash can do").

A process killed with SIGKILL mid-stream loses nothing it committed: every arrival whose ``put``
returned reaches the broker after the restart, under its own event id, and nothing reaches it
that was not put. With ``durable_before_send`` no row goes out before a group fsync covered it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

from edge.outbox import Outbox, Row
from edge.publisher import Publisher
from edge.state import StateFile
from protocol import topics, transport
from protocol.codec import decode
from protocol.messages import Arrival, DeviceState

TOPIC = topics.arrival("demo", "s1", "e1")

#: The box's producer side in a process of its own: puts numbered arrivals as fast as the outbox
#: takes them, says each id once its put returned, and never stops by itself.
PRODUCER = """
import sys
from datetime import UTC, datetime
import numpy as np
from edge.outbox import Outbox
from edge.publisher import Publisher
from edge.state import StateFile
from protocol import topics, transport
from protocol.embedding import Embedding
from protocol.messages import Arrival, FaceQuality

path, url, durable_first = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
outbox = Outbox(StateFile(__import__("pathlib").Path(path)))
publisher = Publisher(transport.BrokerUrl.parse(url), "demo", "s1", "e1", "yunet-mbf", outbox,
                      durable_first=durable_first)
publisher.start()
assert publisher.connected.wait(10)
vector = np.ones(128, np.float32) / np.sqrt(128)
for n in range(1_000_000):
    arrival = Arrival(event_id=f"crash{n:08d}", ts=datetime.now(UTC), brand="demo", store="s1", device="e1",
                      camera="door", track_id=f"t{n}", embedding=Embedding.from_vector(vector),
                      quality=FaceQuality(det_score=0.9, face_px=80, bbox=(0, 0, 80, 80)), model_pack="yunet-mbf")
    outbox.put(topics.arrival("demo", "s1", "e1"), arrival)
    print(arrival.event_id, flush=True)
"""


def _kill_mid_stream(path, url: str, durable_first: bool, puts: int) -> list[str]:
    """Run the producer until ``puts`` puts returned, SIGKILL it; the ids it said it put."""
    proc = subprocess.Popen([sys.executable, "-c", PRODUCER, str(path), url, "1" if durable_first else "0"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    said = []
    try:
        for line in proc.stdout:
            said.append(line.strip())
            if len(said) >= puts:
                break
    finally:
        proc.kill()  # SIGKILL: no flush, no close, no atexit
        proc.wait(10)
    assert len(said) >= puts, "the producer died before it put enough"
    return said


def _check_restart_delivers_everything(mosquitto, recorder, tmp_path, durable_first: bool) -> None:
    rec = recorder(mosquitto.url, TOPIC, f"crash-recorder-{int(durable_first)}")
    said = _kill_mid_stream(tmp_path / "box.db", mosquitto.url, durable_first, puts=300)
    outbox = Outbox(StateFile(tmp_path / "box.db"))
    left = outbox.depth
    publisher = Publisher(transport.BrokerUrl.parse(mosquitto.url), "demo", "s1", "e1", "yunet-mbf", outbox)
    publisher.start()
    try:
        assert publisher.flush(30) == 0, "the restarted box delivers what the killed one left"
    finally:
        publisher.close()
        outbox.state.close()
    deadline = time.monotonic() + 10
    while len({decode(p, Arrival).event_id for p in rec.of("arrival")}) < len(said) and time.monotonic() < deadline:
        time.sleep(0.05)
    got = [decode(p, Arrival).event_id for p in rec.of("arrival")]
    numbers = sorted({int(event_id.removeprefix("crash")) for event_id in got})
    # every put we saw return arrived (the producer went on putting until the kill: those may too)
    assert set(said) <= set(got), f"{len(set(said) - set(got))} committed arrivals never reached the broker"
    # nothing made up, nothing skipped: the ids that arrived are the numbers from 0 without a gap
    assert numbers == list(range(len(numbers)))
    print(f"killed after {len(said)} puts with {left} rows undelivered; {len(got)} messages, "
          f"{len(got) - len(numbers)} repeats under their own ids")


def test_a_killed_box_loses_no_committed_arrival_and_sends_none_under_another_id(mosquitto, recorder, tmp_path):
    _check_restart_delivers_everything(mosquitto, recorder, tmp_path, durable_first=False)


def test_the_same_with_durable_before_send(mosquitto, recorder, tmp_path):
    _check_restart_delivers_everything(mosquitto, recorder, tmp_path, durable_first=True)


class WatchedPublisher(Publisher):
    """The real publisher, noting for each row it hands over how far the outbox was fsynced."""

    handed: list[tuple[int, int]]

    def _hand_over(self, row: Row) -> None:
        self.handed.append((row.seq, self.outbox.durable_seq))
        super()._hand_over(row)


def test_durable_before_send_hands_over_only_fsynced_rows(mosquitto, recorder, tmp_path):
    rec = recorder(mosquitto.url, TOPIC, "durable-recorder")
    outbox = Outbox(StateFile(tmp_path / "box.db"))
    publisher = WatchedPublisher(transport.BrokerUrl.parse(mosquitto.url), "demo", "s1", "e1", "yunet-mbf",
                                 outbox, durable_first=True)
    publisher.handed = []
    publisher.start()
    try:
        assert publisher.connected.wait(10)
        for n in range(50):
            outbox.put(TOPIC, DeviceState(brand="demo", store="s1", device=f"e{n}", role="edge", state="online",
                                          ts=datetime.now(UTC)))
        assert publisher.flush(10) == 0
    finally:
        publisher.close()
        outbox.state.close()
    assert len(publisher.handed) == 50 and all(seq <= durable for seq, durable in publisher.handed)
    assert len(rec.of("arrival")) == 50
