"""The adapter interface every outbound channel shares: ``send(address, notice)`` returns the
provider's receipt id or raises ``ChannelFailed`` (an ``Unavailable``: the caller retries).

Health alerts reach people through these adapters (``cloud.health.notify``): a signed webhook
(``webhook``), WeCom's app message and group robot (``wecom``), email (``email``) and SMS
(``SmsChannel`` over ``cloud.channels.sms.SmsSender``). Each speaks its real provider's API shape,
so a real provider is a configuration change (``INSTORE_*`` settings) away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from cloud.channels.sms import SmsUnanswered
from cloud.clock import zone
from cloud.errors import Unavailable

#: The provider's calendar (QuerySendDetails' SendDate is a day in China's time).
_PROVIDER_ZONE = "Asia/Shanghai"


class ChannelFailed(Unavailable):
    """The provider did not take the message (why is in the message)."""

    code = "channel_failed"


class ChannelUnanswered(ChannelFailed):
    """The request left but no answer came: the provider may have taken the message. A sender asks
    the provider (``sent_with``) before sending it again, as after a crash."""

    code = "channel_unanswered"


@dataclass(frozen=True)
class Notice:
    """One message for one person: plain text, markdown (WeCom), a link, and the structured alert."""

    key: str  # the same notice sent twice carries the same key (webhook receivers de-duplicate on it)
    title: str
    text: str
    markdown: str
    link: str
    severity: str
    payload: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    def send(self, address: str, notice: Notice) -> str:
        """Deliver ``notice`` to ``address`` (a URL, a WeCom user id or robot key, an email address, a phone)."""
        ...


class SmsChannel:
    """Alerts by SMS through the SMS adapter (an Aliyun template with store, metric and link)."""

    name = "sms"

    def __init__(self, sender: Any, template: str) -> None:
        self._sender, self._template = sender, template

    def send(self, address: str, notice: Notice) -> str:
        # a campaign names its own approved template and fields; an alert uses the alert template
        template = notice.payload.get("sms_template") or self._template
        params = notice.payload.get("sms_params") or {"title": notice.title[:30], "link": notice.link}
        try:
            receipt = self._sender.send(address, template, params, out_id=notice.key[:64])
        except SmsUnanswered as exc:
            raise ChannelUnanswered(str(exc)) from None
        except Unavailable as exc:
            raise ChannelFailed(str(exc)) from None
        return str(receipt.biz_id)

    def sent_with(self, address: str, key: str, day: str) -> str | None:
        """Did a message with this key reach the provider (QuerySendDetails)? Its receipt, or None."""
        try:
            return self._sender.sent_with(address, day, key[:64])
        except Unavailable as exc:
            raise ChannelFailed(str(exc)) from None


@dataclass(frozen=True)
class Asked:
    """What the provider says about a send whose answer never came (a crash or ``ChannelUnanswered``):
    ``found`` (it took the message: record it sent with ``receipt``), ``resend`` (it did not: send it,
    once) or ``unknown`` (the channel cannot be asked: record it so, and never send it again)."""

    verdict: Literal["found", "resend", "unknown"]
    receipt: str | None = None


def ask_provider(channel: Channel | None, address: str, key: str, sent_at: str) -> Asked:
    """Ask ``channel``'s provider whether the message with ``key`` claimed at ``sent_at`` reached it.

    Every sender that may lose an answer (campaigns, points-expiry notices) settles its unanswered
    sends here, so "at most once, never twice" is one rule, not one per sender."""
    ask = getattr(channel, "sent_with", None)
    if ask is None:
        return Asked("unknown")
    day = datetime.fromisoformat(sent_at).astimezone(zone(_PROVIDER_ZONE)).strftime("%Y%m%d")
    receipt = ask(address, key, day)
    return Asked("resend") if receipt is None else Asked("found", receipt)
