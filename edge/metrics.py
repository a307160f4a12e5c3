"""The edge box's Prometheus metrics: where each frame's and each arrival's time goes (issue 19).

Two kinds of histogram, both in seconds:

- ``instore_edge_frame_seconds{stage}``: per frame, how long one step took (``detect``: the
  detector over the whole frame; ``embed``: gates, alignment and one batched recogniser call for
  every face of the frame that needed an embedding; ``track``: association, tracks and arrivals).
- ``instore_edge_arrival_stage_seconds{stage}``: per arrival, the time from the capture of the
  frame that completed it to each stage (``detected``, ``embedded``, ``queued``: handed to the
  outbox, ``committed``: its outbox row durable (the group commit's fsync), ``published``: the
  broker acknowledged it). These are the ``protocol.messages.StageTimes`` offsets, plus the two
  that happen after the arrival's payload was written.

Nothing listens unless ``serve(port)`` is called (``instore edge run --metrics-port``, or
``$INSTORE_METRICS_PORT``); tests and benchmarks run without a port. Observations go to
prometheus-client's default registry, which is process-wide: two boxes in one process (tests)
share the counts, which is harmless.
"""

from __future__ import annotations

import logging
import os
import threading

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

#: Millisecond resolution where the 300 ms budget is spent, coarser beyond.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3,
           0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)

FRAME = Histogram("instore_edge_frame_seconds", "Time one step of the face pipeline took, per frame",
                  ["stage"], buckets=BUCKETS)
ARRIVAL = Histogram("instore_edge_arrival_stage_seconds",
                    "Time from the capture of the frame that completed an arrival to each stage",
                    ["stage"], buckets=BUCKETS)
FACES = Counter("instore_edge_faces_embedded_total", "Faces embedded (each frame's faces in one batched call)")
COMMITS = Counter("instore_edge_outbox_commits_total", "Outbox group commits (one WAL fsync each)")
COMMITTED_ROWS = Counter("instore_edge_outbox_committed_rows_total", "Outbox writes made durable by group commits")

_server_lock = threading.Lock()
_served: set[int] = set()


def port_from_env() -> int | None:
    value = os.environ.get("INSTORE_METRICS_PORT", "").strip()
    return int(value) if value else None


def serve(port: int | None, addr: str = "0.0.0.0") -> bool:
    """Serve ``/metrics`` on ``port`` (in a daemon thread); None or 0: do nothing. True if serving."""
    if not port:
        return False
    with _server_lock:
        if port not in _served:
            start_http_server(port, addr)
            _served.add(port)
            log.info("metrics on http://%s:%d/metrics", addr, port)
    return True
