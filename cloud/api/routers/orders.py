"""Orders as a stream: a channel posts batches of orders, signed with its own secret.

``POST /v1/orders`` takes ``{"orders": [...]}`` (``cloud.cdp.imports.stream`` documents an order)
with ``X-Instore-Channel``, ``X-Instore-Timestamp`` (Unix seconds) and ``X-Instore-Signature``
(hex HMAC-SHA256 of ``<timestamp>.<body>`` under the channel's secret, ``order_channel_secrets``);
a stale timestamp or a replayed signature is refused (401). The answer is the import report: rows,
orders, refunds, quarantined by reason, and how the store orders were attributed. The work is
``cloud.arrivals.till``; this router holds no SQL.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from starlette.concurrency import run_in_threadpool

from cloud.api.auth import Principal
from cloud.api.deps import RuntimeDep, allow
from cloud.api.schemas import Error
from cloud.arrivals import till
from cloud.cdp.imports import stream
from cloud.errors import Invalid

router = APIRouter(prefix="/orders", tags=["imports"])

Poster = Annotated[Principal, Depends(allow("hq_admin", "device"))]


def _replay_guard(request: Request, window_s: int) -> stream.ReplayGuard:
    guard = getattr(request.app.state, "order_replay_guard", None)
    if guard is None:
        guard = request.app.state.order_replay_guard = stream.ReplayGuard(window_s)
    return guard


@router.post("", status_code=status.HTTP_200_OK,
             responses={401: {"model": Error}, 413: {"model": Error}, 422: {"model": Error}})
async def post_orders(
    request: Request, runtime: RuntimeDep, principal: Poster,
    x_instore_channel: Annotated[str | None, Header()] = None,
    x_instore_timestamp: Annotated[str | None, Header()] = None,
    x_instore_signature: Annotated[str | None, Header()] = None,
) -> dict:
    """Land a signed batch of a channel's orders (sales, refunds, partial refunds); idempotent on
    channel + order number, and for a till's channel on its store too (``canonical.order_id``: two
    stores' receipt R-1 are two sales); a repeat is counted once and reported as ``duplicate_order``."""
    body = await request.body()
    secrets = {k: v.get_secret_value() for k, v in runtime.settings.order_channel_secrets.items()}
    channel = stream.verify(secrets, x_instore_channel, x_instore_timestamp, x_instore_signature, body,
                            _replay_guard(request, runtime.settings.order_replay_window_s))
    try:
        batch = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not JSON", code="malformed_batch") from None
    orders = batch.get("orders") if isinstance(batch, dict) else None
    if not isinstance(orders, list):
        raise Invalid('the body is {"orders": [...]}', code="malformed_batch")
    return await run_in_threadpool(till.land, runtime.db, channel, orders, actor=f"{principal.name}:{channel}")
