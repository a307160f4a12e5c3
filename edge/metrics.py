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

Nothing listens unless ``protocol.metrics.serve(port)`` is called (``instore edge run --metrics-port``, or
``$INSTORE_METRICS_PORT``); tests and benchmarks run without a port. Observations go to
prometheus-client's default registry, which is process-wide: two boxes in one process (tests)
share the counts, which is harmless.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Histogram

from protocol.metrics import STAGE_BUCKETS

#: Millisecond resolution where the 300 ms budget is spent, coarser beyond.

FRAME = Histogram("instore_edge_frame_seconds", "Time one step of the face pipeline took, per frame",
                  ["stage"], buckets=STAGE_BUCKETS)
ARRIVAL = Histogram("instore_edge_arrival_stage_seconds",
                    "Time from the capture of the frame that completed an arrival to each stage",
                    ["stage"], buckets=STAGE_BUCKETS)
FACES = Counter("instore_edge_faces_embedded_total", "Faces embedded (each frame's faces in one batched call)")
COMMITS = Counter("instore_edge_outbox_commits_total", "Outbox group commits (one WAL fsync each)")
COMMITTED_ROWS = Counter("instore_edge_outbox_committed_rows_total", "Outbox writes made durable by group commits")



def port_from_env() -> int | None:
    value = os.environ.get("INSTORE_METRICS_PORT", "").strip()
    return int(value) if value else None
