"""Email over SMTP (``smtplib``): one plain-text message with the alert's link per notice.

``INSTORE_SMTP_HOST``/``_PORT``/``_FROM``, and for a real relay ``_USER``/``_PASSWORD`` with
STARTTLS (``INSTORE_SMTP_STARTTLS``). The tests run a local SMTP server.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from cloud.channels.notice import ChannelFailed, Notice


class EmailChannel:
    name = "email"

    def __init__(self, host: str, port: int, sender: str, *, user: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout_s: float = 10.0) -> None:
        self._host, self._port, self._from = host, port, sender
        self._user, self._password, self._starttls, self._timeout = user, password, starttls, timeout_s

    def send(self, address: str, notice: Notice) -> str:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._from, address, notice.title
        message["Message-ID"] = make_msgid(idstring=notice.key.replace(":", "."))
        message["X-Instore-Delivery"] = notice.key
        message.set_content(f"{notice.text}\n\n{notice.link}\n")
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._user:
                    smtp.login(self._user, self._password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelFailed(f"SMTP {self._host}:{self._port}: {type(exc).__name__} {exc}") from None
        return str(message["Message-ID"])
