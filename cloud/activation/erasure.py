"""What erasing a person means for marketing (``cloud.cdp.erasure.ERASE_HOOKS``).

Their consent and their own guide go (consent's proof stays in CDP's ``consent_log``, under the
erasure's pseudonym); a campaign's audience, sends and journey entries stay for the campaign's
counts and uplift but under stand-ins of the pseudonym, and a send loses the address it went to.
A send still waiting is skipped and an active journey entry exits (reason ``erased``).
The suppression list is left as it is: a phone nobody may message must stay unmessageable.
"""

from __future__ import annotations

from cloud.cdp.erasure import Erasing
from cloud.db import Tx


def forget(tx: Tx, erasing: Erasing) -> dict[str, int]:
    records = [(record,) for record in erasing.records]
    consents = sum(tx.execute("DELETE FROM marketing_consent WHERE person_id = ?", r) for r in records)
    tx.executemany("DELETE FROM person_guides WHERE person_id = ?", records)
    # nothing still due goes to nobody: a waiting send is skipped, an active journey entry exits
    tx.executemany("UPDATE marketing_sends SET status = 'skipped', reason = 'erased' "
                   "WHERE person_id = ? AND status = 'pending'", records)
    # one in flight is not asked about again (its address goes below): at most once
    tx.executemany("UPDATE marketing_sends SET status = 'unknown', reason = 'erased' "
                   "WHERE person_id = ? AND status = 'sending'", records)
    tx.executemany("UPDATE journey_entries SET status = 'exited', reason = 'erased' "
                   "WHERE person_id = ? AND status = 'active'", records)
    # kept under a unique key with the person in it: one stand-in per record
    stand_ins = erasing.stand_ins(erasing.pseudonym)
    for table in ("campaign_audience", "journey_entries"):
        tx.executemany(f"UPDATE {table} SET person_id = ? WHERE person_id = ?", stand_ins)
    # a send's key is "<campaign>:<person>" (its SMS OutId): the person in it gives way to the stand-in too
    sends = sum(tx.execute("UPDATE marketing_sends SET person_id = ?, address = NULL, key = REPLACE(key, ?, ?) "
                           "WHERE person_id = ?", (stand_in, record, stand_in, record)) for stand_in, record in stand_ins)
    return {"marketing_consents_deleted": consents, "marketing_sends_unlinked": sends}
