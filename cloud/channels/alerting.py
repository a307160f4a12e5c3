"""The alert channels a cloud process has, from its settings: a channel without its settings is
absent, and an owner on it gets ``failed: channel ... is not configured`` until it is set."""

from __future__ import annotations

from cloud.channels import sms
from cloud.channels.email import EmailChannel
from cloud.channels.notice import Channel, SmsChannel
from cloud.channels.webhook import WebhookChannel
from cloud.channels.wecom import WeComAppChannel, WeComRobotChannel


def from_settings(settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if settings.webhook_secret:
        channels["webhook"] = WebhookChannel(settings.webhook_secret)
    if settings.wecom_corp_id and settings.wecom_secret and settings.wecom_agent_id is not None:
        channels["wecom_app"] = WeComAppChannel(settings.wecom_api, settings.wecom_corp_id, settings.wecom_secret,
                                                settings.wecom_agent_id)
    if settings.wecom_robot:
        channels["wecom_robot"] = WeComRobotChannel(settings.wecom_api)
    if settings.smtp_host:
        channels["email"] = EmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                         user=settings.smtp_user, password=settings.smtp_password,
                                         starttls=settings.smtp_starttls)
    sender = sms.from_settings(settings)
    if sender is not None:
        channels["sms"] = SmsChannel(sender, settings.sms_alert_template)
    return channels
