"""What erasing a person means for marketing (``cloud.cdp.erasure.ERASE_HOOKS``).

Their consent and their own guide go (consent's proof stays in CDP's ``consent_log``, under the
erasure's pseudonym); a campaign's audience, sends and journey entries stay for the campaign's
counts and uplift but under stand-ins of the pseudonym, and a send loses the address it went to.
The suppression list is left as it is: a phone nobody may message must stay unmessageable.
"""

from __future__ import annotations

from cloud.cdp.erasure import Erasing
from cloud.db import Tx


def forget(tx: Tx, erasing: Erasing) -> dict[str, int]:
    records = [(record,) for record in erasing.records]
    consents = sum(tx.execute("DELETE FROM marketing_consent WHERE person_id = ?", r) for r in records)
    tx.executemany("DELETE FROM person_guides WHERE person_id = ?", records)
    # kept under a unique key with the person in it: one stand-in per record
    stand_ins = erasing.stand_ins(erasing.pseudonym)
    for table in ("campaign_audience", "journey_entries"):
        tx.executemany(f"UPDATE {table} SET person_id = ? WHERE person_id = ?", stand_ins)
    sends = sum(tx.execute("UPDATE marketing_sends SET person_id = ?, address = NULL WHERE person_id = ?", pair)
                for pair in stand_ins)
    return {"marketing_consents_deleted": consents, "marketing_sends_unlinked": sends}
