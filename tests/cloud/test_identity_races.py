"""Two writers of one person at once: an erasure holds OneID's lock from its start and an import batch
from before its read of the erasure tombstones, so the two (or a batch and a rebuild) never
interleave. Replayed here through the real paths, with the import held at the worst moment: after it
has read the tombstones, before it writes its records.
"""

from __future__ import annotations

import threading

import pytest

from cloud.cdp import erasure, members, tombstones
from cloud.cdp.imports.importer import import_file
from cloud.db import Database

PHONE = "13900002222"
YOUZAN = ("订单号,订单状态,订单创建时间,买家付款时间,订单实付金额,买家手机号,全部商品名称,订单已退款金额\n"
          f"E2026001,交易成功,2026-03-01 10:00:00,2026-03-01 10:01:00,128.00,{PHONE},面霜,0\n")


def test_an_erasure_during_an_import_batch_leaves_no_record_of_the_person(db: Database,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    person = members.add_member(db, name="钱多多", phone=PHONE, gender="female", tier="钻石会员", tags=[], categories=[],
                                face_consent=False).id
    tombstones_read, erased = threading.Event(), threading.Event()
    read = tombstones.erased_buyers

    def held_after_reading(*args, **kwargs):  # the batch has read the tombstones: the erasure comes now
        found = read(*args, **kwargs)
        tombstones_read.set()
        erased.wait(timeout=2)  # long enough for an erasure that does not wait for the batch to finish
        return found

    monkeypatch.setattr(tombstones, "erased_buyers", held_after_reading)
    failures: list[BaseException] = []

    def run_import() -> None:
        try:
            import_file(db, "youzan", YOUZAN.encode("utf-8-sig"), source="youzan.csv")
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    importing = threading.Thread(target=run_import)
    importing.start()
    assert tombstones_read.wait(timeout=30)
    erasure.erase(db, person, actor="test")
    erased.set()
    importing.join(timeout=60)
    assert not importing.is_alive() and failures == []

    # the batch's record of the same phone joined the person before the erasure read its records, so
    # it went with them; had the erasure run inside the batch, the record would hold the phone still
    assert db.rows("SELECT member_id FROM identifiers WHERE value = ?", (PHONE,)) == []
    assert db.rows("SELECT id FROM members WHERE source_key = ?", (PHONE,)) == []
    assert db.scalar("SELECT member_id FROM orders WHERE order_no = 'E2026001'").startswith("anon-")
