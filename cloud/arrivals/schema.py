"""The arrivals' tables: arrival events and the visits they open, Wi-Fi presence and footfall,
and the assistants' feedback on the cards with the negative evidence it carries.

Version 3 lets a visit be opened by a presence event (no card) and joined by the other signal.
Version 13 keeps visit truth: a visit an assistant corrected ("不是本人") becomes a visitor visit
that remembers whom it was taken for and why, and every labelled outcome (not this person,
confirmed) is kept with its score for the per-store recognition calibration.
Version 24 links till orders to the member, the visit and the assistant (``order_attribution``, with the
reason) and lets a 成交 tap carry the till's receipt number (``feedback.receipt``).
Version 40 keeps the Wi-Fi fusion on the visit (``cloud.arrivals.fusion``): the candidate's phone state
when the face was decided (``phone``: present, absent, or NULL without a registered phone; what the
likelihood ratio is estimated from, with the visit's labels), the fused posterior and its reasons.
Version 50 held the guest Wi-Fi logins (``cloud.arrivals.guest_wifi``): the per-network address's key
(never the MAC), the one-time code's hash, and when consent was given. Version 77 moves them into the
one-time codes every proof of a phone uses (``verifications``, kind ``guest_wifi``: the key is the
value, a bound login is verified when consent was given) and drops the table.
Version 87 keeps the assistants' sign-ins and sign-outs on the guide screens (``staff_signs``, issue 17,
``cloud.arrivals.staff``): once per ``sign_id``, read by store and time (who is on the floor now, and
the roster rule of ``cloud.health.staff_absent``).
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema

SCHEMA = Schema("arrivals", (
    Migration(1, "arrivals and visits", (
        """CREATE TABLE arrivals (
        event_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL,
        camera TEXT NOT NULL, ts TEXT NOT NULL, received TEXT NOT NULL)""",
        """CREATE TABLE visits (
        id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, member_id TEXT REFERENCES members (id),
        confidence DOUBLE PRECISION NOT NULL, ts TEXT NOT NULL,
        arrival_event_id TEXT NOT NULL REFERENCES arrivals (event_id), device TEXT NOT NULL,
        camera TEXT NOT NULL, card_id TEXT NOT NULL)""",
        "CREATE INDEX visits_store_ts ON visits (store, ts)",
        "CREATE INDEX visits_member ON visits (member_id, ts)",
    )),
    Migration(3, "wifi presence and footfall, feedback", (
        # Wi-Fi: a visit may be opened by a presence event (no card) and joined by the other signal
        "ALTER TABLE visits ADD COLUMN signals TEXT NOT NULL DEFAULT 'face'",
        "ALTER TABLE visits ADD COLUMN left_ts TEXT",
        "ALTER TABLE visits ADD COLUMN dwell_s DOUBLE PRECISION",
        """CREATE TABLE presence_events (
        event_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL,
        member_id TEXT, visit_id TEXT, phase TEXT NOT NULL, ts TEXT NOT NULL, dwell_s DOUBLE PRECISION NOT NULL,
        received TEXT NOT NULL)""",
        "CREATE INDEX presence_member ON presence_events (member_id, store, ts)",
        """CREATE TABLE footfall (
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, minute TEXT NOT NULL, people BIGINT NOT NULL,
        passing BIGINT NOT NULL, visits_started BIGINT NOT NULL, distinct_macs BIGINT NOT NULL,
        background BIGINT NOT NULL, probes BIGINT NOT NULL, event_id TEXT NOT NULL, received TEXT NOT NULL,
        PRIMARY KEY (store, device, minute))""",
        "CREATE INDEX footfall_store_minute ON footfall (store, minute)",
        # guide-screen feedback, and the negative evidence it carries
        """CREATE TABLE feedback (
        feedback_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, screen TEXT NOT NULL,
        card_id TEXT NOT NULL, visit_id TEXT NOT NULL, member_id TEXT, confidence DOUBLE PRECISION,
        action TEXT NOT NULL, assistant TEXT, amount DOUBLE PRECISION, ts TEXT NOT NULL, received TEXT NOT NULL)""",
        "CREATE INDEX feedback_store_ts ON feedback (store, ts)",
        "CREATE INDEX feedback_visit ON feedback (visit_id)",
        """CREATE TABLE member_doubts (
        member_id TEXT PRIMARY KEY, not_this_person BIGINT NOT NULL, updated TEXT NOT NULL)""",
    )),
    Migration(13, "visit truth: corrected visits and labelled match outcomes", (
        "ALTER TABLE visits ADD COLUMN corrected_member_id TEXT",
        "ALTER TABLE visits ADD COLUMN corrected_reason TEXT",
        "ALTER TABLE visits ADD COLUMN corrected_ts TEXT",
        """CREATE TABLE match_labels (
        visit_id TEXT NOT NULL, label TEXT NOT NULL, member_id TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,
        brand TEXT NOT NULL, store TEXT NOT NULL, device TEXT NOT NULL, feedback_id TEXT NOT NULL, ts TEXT NOT NULL,
        PRIMARY KEY (visit_id, label))""",
        "CREATE INDEX match_labels_store_ts ON match_labels (store, ts)",
        "CREATE INDEX visits_store_member_ts ON visits (store, member_id, ts)",
        # cross-box de-duplication: which visit an arrival went to (its own, or one another box opened)
        "ALTER TABLE arrivals ADD COLUMN visit_id TEXT",
    )),
    Migration(24, "till attribution: orders linked to member, visit and assistant; receipts on 成交", (
        "ALTER TABLE feedback ADD COLUMN receipt TEXT",
        """CREATE TABLE order_attribution (
        order_id TEXT PRIMARY KEY, store TEXT, member_id TEXT, member_via TEXT, visit_id TEXT, assistant TEXT,
        feedback_id TEXT, reason TEXT NOT NULL, paid DOUBLE PRECISION NOT NULL, ts BIGINT NOT NULL,
        lag_s DOUBLE PRECISION)""",
        "CREATE INDEX order_attribution_visit ON order_attribution (visit_id)",
        "CREATE INDEX order_attribution_store_ts ON order_attribution (store, ts)",
        "CREATE INDEX feedback_receipt ON feedback (receipt)",
    )),
    Migration(39, "joining in the store (入会): invitations from a visitor card, their sign-up and consent", (
        # token_hash: sha256 of the QR code's token (the token itself is only on the screen and the phone)
        """CREATE TABLE join_invitations (
        id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, brand TEXT NOT NULL, store TEXT NOT NULL,
        screen TEXT NOT NULL, visit_id TEXT NOT NULL, card_id TEXT NOT NULL, arrival_event_id TEXT NOT NULL,
        assistant TEXT, created TEXT NOT NULL, expires TEXT NOT NULL, status TEXT NOT NULL, codes_sent BIGINT NOT NULL
        DEFAULT 0, member_id TEXT, person_id TEXT, face BIGINT, enrol_command TEXT, joined_at TEXT)""",
        "CREATE INDEX join_invitations_visit ON join_invitations (visit_id)",
    )),
    Migration(40, "Wi-Fi fusion by likelihood ratio: the phone state, fused confidence and reasons of a visit", (
        "ALTER TABLE visits ADD COLUMN phone TEXT",
        "ALTER TABLE visits ADD COLUMN fused_confidence DOUBLE PRECISION",
        "ALTER TABLE visits ADD COLUMN fusion TEXT",
    )),
    Migration(50, "guest Wi-Fi logins: a member binds the phone's address on the store's network", (
        """CREATE TABLE guest_wifi_logins (
        id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, member_id TEXT NOT NULL, device_key TEXT NOT NULL,
        code_hash TEXT NOT NULL, attempts BIGINT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL,
        expires TEXT NOT NULL, consent_ts TEXT)""",
        "CREATE INDEX guest_wifi_logins_member ON guest_wifi_logins (member_id, created)",
    )),
    Migration(77, "guest Wi-Fi logins are one-time codes of cloud.cdp.verification (kind guest_wifi)", (
        """INSERT INTO verifications (id, member_id, kind, value, code_hash, status, attempts, sent, created, expires,
        store, actor, decided)
        SELECT id, member_id, 'guest_wifi', device_key, code_hash,
               CASE status WHEN 'bound' THEN 'verified' WHEN 'unsent' THEN 'pending' ELSE status END, attempts,
               CASE status WHEN 'unsent' THEN 0 ELSE 1 END, created, expires, store, 'guest Wi-Fi portal', consent_ts
        FROM guest_wifi_logins""",
        "DROP TABLE guest_wifi_logins",
    )),
    Migration(87, "guide-screen staff sign-ins and sign-outs (上岗/离岗)", (
        """CREATE TABLE staff_signs (
        sign_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, screen TEXT NOT NULL,
        assistant TEXT NOT NULL, action TEXT NOT NULL, ts TEXT NOT NULL, received TEXT NOT NULL)""",
        "CREATE INDEX staff_signs_store_ts ON staff_signs (store, ts)",
    )),
))
