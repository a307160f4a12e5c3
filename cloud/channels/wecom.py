"""WeCom (企业微信): the app message API and the group robot webhook, in their real shapes.

App message: ``GET {base}/cgi-bin/gettoken?corpid=&corpsecret=`` -> ``{errcode, errmsg,
access_token, expires_in}`` (the token is cached until shortly before it expires), then ``POST
{base}/cgi-bin/message/send?access_token=...`` with ``{touser, msgtype: "markdown", agentid,
markdown: {content}}`` (``text: {content}`` with ``msgtype: "text"``) -> ``{errcode, errmsg}``;
an expired or invalid token (errcode 40014, 42001) is fetched again once. The address is the
WeCom user id (``a|b`` for several).

Group robot: ``POST {base}/cgi-bin/webhook/send?key=<address>`` with ``{msgtype: "markdown",
markdown: {content}}`` -> ``{errcode: 0, errmsg: "ok"}``.

``base`` is ``https://qyapi.weixin.qq.com`` in production (``INSTORE_WECOM_API``); the tests point
it at a local server speaking the same shape.
"""

from __future__ import annotations

import threading
import time

import httpx

from cloud.channels.notice import ChannelFailed, Notice

PRODUCTION_API = "https://qyapi.weixin.qq.com"
_TOKEN_ERRORS = {40014, 42001}
_MARKDOWN_MAX = 4096


def _answer(response: httpx.Response, what: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        raise ChannelFailed(f"WeCom {what}: not JSON (HTTP {response.status_code})") from None
    if not isinstance(body, dict):
        raise ChannelFailed(f"WeCom {what}: unexpected answer")
    return body


class WeComAppChannel:
    name = "wecom_app"

    def __init__(self, base: str, corp_id: str, secret: str, agent_id: int, *, msgtype: str = "markdown",
                 timeout_s: float = 5.0) -> None:
        self._base, self._corp, self._secret, self._agent = base.rstrip("/"), corp_id, secret, agent_id
        self._msgtype, self._timeout = msgtype, timeout_s
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _access_token(self, *, fresh: bool = False) -> str:
        with self._lock:
            if not fresh and self._token and self._token[1] > time.monotonic():
                return self._token[0]
            try:
                body = _answer(httpx.get(f"{self._base}/cgi-bin/gettoken",
                                         params={"corpid": self._corp, "corpsecret": self._secret},
                                         timeout=self._timeout), "gettoken")
            except httpx.HTTPError as exc:
                raise ChannelFailed(f"WeCom gettoken did not answer: {type(exc).__name__}") from None
            if body.get("errcode", 0) != 0 or not body.get("access_token"):
                raise ChannelFailed(f"WeCom gettoken refused: {body.get('errcode')} {body.get('errmsg', '')}")
            self._token = (body["access_token"], time.monotonic() + max(60, int(body.get("expires_in", 7200)) - 300))
            return self._token[0]

    def send(self, address: str, notice: Notice) -> str:
        content = (notice.markdown if self._msgtype == "markdown" else notice.text)[:_MARKDOWN_MAX]
        message = {"touser": address, "msgtype": self._msgtype, "agentid": self._agent,
                   self._msgtype: {"content": content}}
        for attempt in (0, 1):
            token = self._access_token(fresh=attempt == 1)
            try:
                body = _answer(httpx.post(f"{self._base}/cgi-bin/message/send", params={"access_token": token},
                                          json=message, timeout=self._timeout), "message/send")
            except httpx.HTTPError as exc:
                raise ChannelFailed(f"WeCom message/send did not answer: {type(exc).__name__}") from None
            code = body.get("errcode")
            if code == 0:
                return str(body.get("msgid", "ok"))
            if code not in _TOKEN_ERRORS:
                break
        raise ChannelFailed(f"WeCom message/send refused: {body.get('errcode')} {body.get('errmsg', '')}")


class WeComRobotChannel:
    name = "wecom_robot"

    def __init__(self, base: str, *, timeout_s: float = 5.0) -> None:
        self._base, self._timeout = base.rstrip("/"), timeout_s

    def send(self, address: str, notice: Notice) -> str:
        message = {"msgtype": "markdown", "markdown": {"content": notice.markdown[:_MARKDOWN_MAX]}}
        try:
            body = _answer(httpx.post(f"{self._base}/cgi-bin/webhook/send", params={"key": address}, json=message,
                                      timeout=self._timeout), "webhook/send")
        except httpx.HTTPError as exc:
            raise ChannelFailed(f"WeCom robot did not answer: {type(exc).__name__}") from None
        if body.get("errcode") != 0:
            raise ChannelFailed(f"WeCom robot refused: {body.get('errcode')} {body.get('errmsg', '')}")
        return "ok"
