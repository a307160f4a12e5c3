"""A local simulated SMS provider speaking Aliyun's SendSms: what the tests and the demo send to.

``SimulatedSms().start()`` serves on a free loopback port (``.url``); every message it accepts is
kept in ``.sent`` (phone, sign name, template, params, out id) and readable at ``GET /messages``.
It answers like the real service: ``Code`` ``OK`` with a ``BizId`` and ``RequestId``, or an
error code (``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.BUSINESS_LIMIT_CONTROL`` past ``per_phone_per_minute``
messages to one phone, ``MissingParameter``). ``QuerySendDetails`` (PhoneNumber, SendDate, PageSize,
CurrentPage) lists what went to a phone on a day with its ``OutId``. ``report(url)`` pushes delivery
receipts (SmsReport: ``phone_number``, ``send_time``, ``report_time``, ``success``, ``err_code``,
``err_msg``, ``sms_size``, ``biz_id``, ``out_id``) and ``reply(url, phone, content)`` an uplink
(SmsUp: ``phone_number``, ``send_time``, ``content``, ``sign_name``, ``dest_code``, ``sequence_id``)
to a callback, as the real service does once callbacks are configured.
``python -m cloud.channels.sms_sim --port 8025`` runs one.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from cloud.channels.simulated_server import JsonHandler, SimulatedServer

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_REQUIRED = ("PhoneNumbers", "SignName", "TemplateCode")
#: Aliyun's dates (QuerySendDetails' SendDate, the details' times) are China's, whatever the server's zone.
_CHINA = ZoneInfo("Asia/Shanghai")


def _beijing(ts: float, fmt: str) -> str:
    return datetime.fromtimestamp(ts, _CHINA).strftime(fmt)


@dataclass
class SentSms:
    phone: str
    sign_name: str
    template: str
    params: dict
    out_id: str | None
    biz_id: str
    ts: float = field(default_factory=time.time)


class SimulatedSms:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, per_phone_per_minute: int = 5) -> None:
        self.sent: list[SentSms] = []
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._limit = per_phone_per_minute
        self._reported: set[str] = set()
        #: the next this many SendSms requests are taken (in ``sent``) but their answers are lost: the
        #: connection closes instead, as when a network resets after the gateway took a message
        self.lose_answers = 0
        owner = self

        class Handler(JsonHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real gateway
            wbufsize = 65536  # headers and body leave in one write (flushed after each request) ...
            disable_nagle_algorithm = True  # ... and at once: no 40 ms delayed-ACK stall per request

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path.rstrip("/") == "/messages":
                    with owner._lock:
                        self.answer([m.__dict__ for m in owner.sent])
                    return
                self.answer(owner.handle(dict(parse_qsl(url.query))))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(min(length, 65536)).decode("utf-8", "replace")))
                form.update(parse_qsl(urlsplit(self.path).query))
                answer = owner.handle(form)
                if owner._loses(form, answer):
                    self.close_connection = True
                    return
                self.answer(answer)

        self._server = SimulatedServer((host, port), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread: threading.Thread | None = None

    def _loses(self, form: dict[str, str], answer: dict) -> bool:
        with self._lock:
            if self.lose_answers <= 0 or form.get("Action") != "SendSms" or answer.get("Code") != "OK":
                return False
            self.lose_answers -= 1
            return True

    def handle(self, params: dict[str, str]) -> dict:
        request_id = str(uuid.uuid4()).upper()
        if params.get("Action") == "QuerySendDetails":
            return self._details(params, request_id)
        missing = [name for name in _REQUIRED if not params.get(name)]
        if missing:
            return {"Code": "MissingParameter", "Message": f"{missing[0]} is mandatory", "RequestId": request_id}
        phone = params["PhoneNumbers"]
        if not _MOBILE.match(phone):
            return {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": phone, "RequestId": request_id}
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return {"Code": "isv.INVALID_JSON_PARAM", "Message": "TemplateParam", "RequestId": request_id}
        now = time.time()
        with self._lock:
            recent = self._recent[phone]
            while recent and recent[0] < now - 60:
                recent.popleft()
            if len(recent) >= self._limit:
                return {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:5",
                        "RequestId": request_id}
            recent.append(now)
            biz_id = f"{int(now * 1000)}^{uuid.uuid4().int % 10**10}"
            self.sent.append(SentSms(phone, params["SignName"], params["TemplateCode"], template_params,
                                     params.get("OutId"), biz_id))
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}

    def _details(self, params: dict[str, str], request_id: str) -> dict:
        phone, day = params.get("PhoneNumber") or "", params.get("SendDate") or ""
        if not phone or not day:
            return {"Code": "MissingParameter", "Message": "PhoneNumber and SendDate are mandatory", "RequestId": request_id}
        size = max(1, min(50, int(params.get("PageSize") or 10)))
        page = max(1, int(params.get("CurrentPage") or 1))
        with self._lock:
            found = [m for m in self.sent if m.phone == phone and _beijing(m.ts, "%Y%m%d") == day]
        chosen = found[(page - 1) * size:page * size]
        return {"Code": "OK", "Message": "OK", "RequestId": request_id, "TotalCount": str(len(found)),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": [
                    {"ErrCode": "DELIVERED", "TemplateCode": m.template, "OutId": m.out_id or "",
                     "ReceiveDate": _beijing(m.ts, "%Y-%m-%d %H:%M:%S"),
                     "SendDate": _beijing(m.ts, "%Y-%m-%d %H:%M:%S"),
                     "PhoneNum": m.phone, "Content": json.dumps(m.params, ensure_ascii=False), "SendStatus": 3}
                    for m in chosen]}}

    def report(self, url: str, *, failed: frozenset[str] = frozenset()) -> int:
        """Push a delivery receipt for every message not yet reported (those to ``failed`` phones fail)."""
        import httpx

        with self._lock:
            due = [m for m in self.sent if m.biz_id not in self._reported]
            self._reported.update(m.biz_id for m in due)
        stamp = _beijing(time.time(), "%Y-%m-%d %H:%M:%S")
        body = [{"phone_number": m.phone, "send_time": _beijing(m.ts, "%Y-%m-%d %H:%M:%S"),
                 "report_time": stamp, "success": m.phone not in failed,
                 "err_code": "DELIVERED" if m.phone not in failed else "MK:0001",
                 "err_msg": "用户接收成功" if m.phone not in failed else "空号", "sms_size": "1", "biz_id": m.biz_id,
                 "out_id": m.out_id or ""} for m in due]
        for start in range(0, len(body), 500):
            httpx.post(url, json=body[start:start + 500], timeout=30).raise_for_status()
        return len(body)

    def reply(self, url: str, phone: str, content: str) -> dict:
        """The member answers an SMS (e.g. 退订): an SmsUp push to ``url``."""
        import httpx

        body = [{"phone_number": phone, "send_time": _beijing(time.time(), "%Y-%m-%d %H:%M:%S"), "content": content,
                 "sign_name": self.sent[-1].sign_name if self.sent else "", "dest_code": "1234",
                 "sequence_id": int(time.time() * 1000)}]
        return httpx.post(url, json=body, timeout=10).json()

    def messages_to(self, phone: str) -> list[SentSms]:
        with self._lock:
            return [m for m in self.sent if m.phone == phone]

    def start(self) -> SimulatedSms:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sms-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    sim = SimulatedSms(args.host, args.port)
    print(f"simulated SMS provider on {sim.url}", flush=True)
    try:
        sim._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
