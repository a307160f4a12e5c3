"""What every process's ``/metrics`` shares: the stage-time buckets and one way to serve them.

The edge box, the cloud and the guide screen each export Prometheus histograms of where an
arrival's time went (``protocol.messages.StageTimes``); the same buckets in all three make their
histograms comparable stage by stage. prometheus-client is imported only when a port is served,
so the contract itself needs it not.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

#: Seconds: millisecond resolution where the 300 ms door-to-screen budget is spent, coarser beyond.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3,
                 0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)

_lock = threading.Lock()
_served: set[int] = set()


def serve(port: int | None, addr: str = "0.0.0.0") -> bool:
    """Serve ``/metrics`` on ``port`` in a daemon thread (once per port); None or 0: do nothing."""
    if not port:
        return False
    from prometheus_client import start_http_server

    with _lock:
        if port not in _served:
            start_http_server(port, addr)
            _served.add(port)
            log.info("metrics on http://%s:%d/metrics", addr, port)
    return True
