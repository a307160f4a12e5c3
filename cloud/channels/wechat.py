"""WeChat mini-program subscribe messages (subscribeMessage.send), as ``../shared/data/exports/api/send.yaml``
describes: ``POST /cgi-bin/message/subscribe/send?access_token=...`` with ``touser`` (the member's
openid), ``template_id``, ``page``, ``data`` (``{key: {"value": ...}}``) and the current fields
``miniprogram_state`` (formal | trial | developer) and ``lang``; the answer is ``errcode`` (0),
``errmsg`` and ``msgid``. The access token comes from ``GET /cgi-bin/token`` and is fetched again on
40001/42001. 43101 means the member has no subscription left for the template (WeChat's own one-time
consent): a permanent failure, not retried. ``wechat_sim`` is the local provider the tests use.
"""

from __future__ import annotations

import threading
import time

import httpx

from cloud.channels.notice import ChannelFailed, Notice

#: errcodes after which sending again will not help
PERMANENT = {43101: "user_refused", 40003: "invalid_openid", 40037: "invalid_template", 47003: "bad_data"}


class WeChatRefused(ChannelFailed):
    code = "wechat_refused"


class WeChatSubscribeChannel:
    name = "wechat"

    def __init__(self, base: str, appid: str, secret: str, *, state: str = "formal", lang: str = "zh_CN",
                 timeout_s: float = 5.0) -> None:
        self._base, self._appid, self._secret = base.rstrip("/"), appid, secret
        self._state, self._lang = state, lang
        self._http = httpx.Client(timeout=timeout_s)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _access_token(self, *, fresh: bool = False) -> str:
        with self._lock:
            if fresh or self._token is None or self._token[1] < time.monotonic():
                try:
                    body = self._http.get(f"{self._base}/cgi-bin/token", params={
                        "grant_type": "client_credential", "appid": self._appid, "secret": self._secret}).json()
                except (httpx.HTTPError, ValueError) as exc:
                    raise ChannelFailed(f"WeChat token: {type(exc).__name__}") from None
                if not body.get("access_token"):
                    raise ChannelFailed(f"WeChat token refused: {body.get('errcode')} {body.get('errmsg')}")
                self._token = (body["access_token"], time.monotonic() + int(body.get("expires_in", 7200)) - 300)
            return self._token[0]

    def send(self, address: str, notice: Notice) -> str:
        data = notice.payload.get("wechat_data") or {"thing1": {"value": notice.title[:20]},
                                                     "thing2": {"value": notice.text[:20]}}
        body = {"touser": address, "template_id": notice.payload.get("wechat_template", ""),
                "page": notice.payload.get("page") or "index", "data": data,
                "miniprogram_state": self._state, "lang": self._lang}
        for attempt in (0, 1):
            token = self._access_token(fresh=attempt == 1)
            try:
                answer = self._http.post(f"{self._base}/cgi-bin/message/subscribe/send",
                                         params={"access_token": token}, json=body).json()
            except (httpx.HTTPError, ValueError) as exc:
                raise ChannelFailed(f"WeChat did not answer: {type(exc).__name__}") from None
            code = int(answer.get("errcode", -1))
            if code == 0:
                return str(answer.get("msgid", ""))
            if code in (40001, 42001) and attempt == 0:
                continue
            if code in PERMANENT:
                raise WeChatRefused(f"{PERMANENT[code]}: {code} {answer.get('errmsg')}")
            raise ChannelFailed(f"WeChat refused: {code} {answer.get('errmsg')}")
        raise ChannelFailed("WeChat token keeps expiring")
