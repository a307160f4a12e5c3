"""The SMS adapter's kept-alive connection: a gateway that closed it while idle costs nothing (a new
connection before the request), a gateway that cannot be reached is "not taken" (``SmsFailed``), and
only a request that left without an answer is ``SmsUnanswered`` (the sender asks before resending)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from cloud.channels.sms import SmsFailed, SmsSender, SmsUnanswered
from tests.netutil import free_port

OK = json.dumps({"Code": "OK", "Message": "OK", "BizId": "1^2", "RequestId": "R"}).encode()


def _gateway(behaviour: str) -> tuple[str, list[int]]:
    """A one-thread HTTP gateway: ``idle_close`` answers each request, then closes the connection
    (as a gateway does to an idle kept-alive one); ``no_answer`` reads the request and closes
    without answering. Returns its URL and the count of requests it read per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[int] = []

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += conn.recv(65536)
                seen.append(1)
                if behaviour == "idle_close":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(OK)).encode() + b"\r\n\r\n" + OK)
                    time.sleep(0.05)  # the answer is read, then the gateway closes the idle connection

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/", seen


def test_a_connection_the_gateway_closed_while_idle_is_replaced_before_the_request() -> None:
    url, seen = _gateway("idle_close")
    sender = SmsSender(url, "品牌")
    for _ in range(3):
        assert sender.send("13900000001", "SMS_1", {}, out_id="k").biz_id == "1^2"
        time.sleep(0.2)  # the gateway has closed it by now
    assert len(seen) == 3


def test_a_request_without_an_answer_is_unanswered_and_an_unreachable_gateway_is_not() -> None:
    url, seen = _gateway("no_answer")
    with pytest.raises(SmsUnanswered):
        SmsSender(url, "品牌").send("13900000001", "SMS_1", {}, out_id="k")
    assert len(seen) == 1  # taken once, never sent again by the adapter
    with pytest.raises(SmsFailed) as refused:
        SmsSender(f"http://127.0.0.1:{free_port()}/", "品牌").send("13900000001", "SMS_1", {}, out_id="k")
    assert not isinstance(refused.value, SmsUnanswered)
