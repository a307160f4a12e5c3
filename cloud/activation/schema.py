"""Activation's tables (version 27, journeys in 38): marketing consent per channel, the suppression list, approved
templates, campaigns with their audience and holdout, every send (its idempotency key, why it went or
did not), SMS uplinks (退订/TD) and the member's own guide (专属导购) for WeCom.

``marketing_consent`` is separate from ``members.face_consent`` and from membership: one row per
person and channel (sms, wechat, wecom, email), the latest decision; its history is in CDP's
``consent_log`` (kind ``marketing:<channel>``). ``marketing_sends.key`` is unique: the same person in
the same campaign is one send, whatever restarts in between.
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema

STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE marketing_consent (
        person_id TEXT NOT NULL, channel TEXT NOT NULL, granted BIGINT NOT NULL, ts TEXT NOT NULL,
        source TEXT NOT NULL, PRIMARY KEY (person_id, channel))""",
    """CREATE TABLE marketing_suppression (
        kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL, ts TEXT NOT NULL, actor TEXT NOT NULL,
        PRIMARY KEY (kind, value))""",
    """CREATE TABLE person_guides (
        person_id TEXT PRIMARY KEY, assistant TEXT NOT NULL, wecom_user TEXT NOT NULL, ts TEXT NOT NULL)""",
    """CREATE TABLE marketing_templates (
        id TEXT PRIMARY KEY, channel TEXT NOT NULL, code TEXT NOT NULL, body TEXT NOT NULL, params TEXT NOT NULL,
        approved BIGINT NOT NULL DEFAULT 0, approved_by TEXT, created TEXT NOT NULL, created_by TEXT NOT NULL)""",
    """CREATE TABLE campaigns (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, segment_id TEXT NOT NULL, channel TEXT NOT NULL,
        template_id TEXT NOT NULL, holdout_pct DOUBLE PRECISION NOT NULL, window_days BIGINT NOT NULL,
        start_at TEXT NOT NULL, quiet_start BIGINT NOT NULL, quiet_end BIGINT NOT NULL, weekly_cap BIGINT NOT NULL,
        status TEXT NOT NULL, salt TEXT NOT NULL, created TEXT NOT NULL, created_by TEXT NOT NULL,
        launched_at TEXT, audience BIGINT NOT NULL DEFAULT 0, control BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE campaign_audience (
        campaign_id TEXT NOT NULL, person_id TEXT NOT NULL, grp TEXT NOT NULL, stratum TEXT NOT NULL,
        PRIMARY KEY (campaign_id, person_id))""",
    "CREATE INDEX campaign_audience_person ON campaign_audience (person_id)",
    """CREATE TABLE marketing_sends (
        id {serial_pk}, key TEXT NOT NULL, campaign_id TEXT NOT NULL, person_id TEXT NOT NULL,
        channel TEXT NOT NULL, address TEXT, status TEXT NOT NULL, reason TEXT, receipt TEXT,
        attempts BIGINT NOT NULL DEFAULT 0, due TEXT NOT NULL, sent_at TEXT, owner TEXT, updated TEXT NOT NULL,
        delivered TEXT)""",
    "CREATE UNIQUE INDEX marketing_sends_key ON marketing_sends (key)",
    "CREATE INDEX marketing_sends_due ON marketing_sends (status, due)",
    "CREATE INDEX marketing_sends_person ON marketing_sends (person_id, sent_at)",
    "CREATE INDEX marketing_sends_receipt ON marketing_sends (receipt)",
    """CREATE TABLE sms_uplinks (
        id {serial_pk}, phone TEXT NOT NULL, content TEXT NOT NULL, send_time TEXT NOT NULL, sequence_id TEXT,
        action TEXT NOT NULL, received TEXT NOT NULL)""",
    "CREATE TABLE activation_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

#: Version 38: lifecycle journeys. A journey is a trigger, steps (send, wait, branch, coupon), exit
#: conditions and a holdout; each of its send steps is a ``campaigns`` row (``journey_id`` set) so its
#: sends go through the same checks and crash-safe sender as a campaign's. ``journey_entries`` holds
#: one row per person and occurrence of the trigger (unique: a trigger seen twice enters once), with
#: the person's group, the step it is at and when it is due; ``journey_log`` what each step did.
JOURNEYS: tuple[str, ...] = (
    """CREATE TABLE journeys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, trigger TEXT NOT NULL, params TEXT NOT NULL, steps TEXT NOT NULL,
        exit_on TEXT NOT NULL, holdout_pct DOUBLE PRECISION NOT NULL, window_days BIGINT NOT NULL,
        status TEXT NOT NULL, salt TEXT NOT NULL, last_daily TEXT, created TEXT NOT NULL, created_by TEXT NOT NULL,
        launched_at TEXT)""",
    """CREATE TABLE journey_entries (
        id {serial_pk}, journey_id TEXT NOT NULL, person_id TEXT NOT NULL, occurrence TEXT NOT NULL,
        grp TEXT NOT NULL, since BIGINT NOT NULL, entered TEXT NOT NULL, step BIGINT NOT NULL DEFAULT 0,
        due TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, last_send TEXT, updated TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX journey_entries_once ON journey_entries (journey_id, person_id, occurrence)",
    "CREATE INDEX journey_entries_due ON journey_entries (status, due)",
    "CREATE INDEX journey_entries_person ON journey_entries (person_id, status)",
    """CREATE TABLE journey_log (
        id {serial_pk}, entry_id BIGINT NOT NULL, step BIGINT NOT NULL, action TEXT NOT NULL, ts TEXT NOT NULL)""",
    "CREATE INDEX journey_log_entry ON journey_log (entry_id)",
    "ALTER TABLE campaigns ADD COLUMN journey_id TEXT",
    # the visit triggers read the last minutes' (and yesterday's) visits of every store every tick
    "CREATE INDEX visits_ts ON visits (ts)",
)

#: Version 48: saved cohorts for effect tracking (a segment on a day, or a tagged source of orders),
#: and audience syncs: a segment's hashed upload file refreshed on a schedule, the last one kept.
COHORTS: tuple[str, ...] = (
    """CREATE TABLE cohorts (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, definition TEXT NOT NULL, created TEXT NOT NULL,
        created_by TEXT NOT NULL)""",
    """CREATE TABLE audience_syncs (
        segment_id TEXT NOT NULL, hash TEXT NOT NULL, every_hours DOUBLE PRECISION NOT NULL,
        refreshed TEXT, lines BIGINT NOT NULL DEFAULT 0, added BIGINT NOT NULL DEFAULT 0,
        removed BIGINT NOT NULL DEFAULT 0, body TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL,
        PRIMARY KEY (segment_id, hash))""",
)

#: Version 58: guide tasks done. A guide's 完成 on a task (``protocol.messages.GuideTaskDone``): the
#: task (``marketing_sends.receipt`` of its send), the screen and assistant that tapped it, when, and
#: when the cloud heard of it; the first tap counts.
TASKS_DONE: tuple[str, ...] = (
    """CREATE TABLE guide_tasks_done (
        task_id TEXT PRIMARY KEY, brand TEXT NOT NULL, store TEXT NOT NULL, screen TEXT NOT NULL, assistant TEXT,
        done_at TEXT NOT NULL, received TEXT NOT NULL)""",
)

SCHEMA = Schema("activation", (
    Migration(27, "activation: marketing consent per channel, suppression, guides, templates, campaigns, "
                  "audiences with holdout, sends, SMS uplinks", STATEMENTS),
    Migration(38, "activation: journeys (trigger, steps, exits, holdout), their entries and step log; "
                  "journey send steps as campaigns", JOURNEYS),
    Migration(48, "activation: saved cohorts (a segment on a day, a livestream's orders, an influencer's coupon); "
                  "audience syncs refreshed on a schedule", COHORTS),
    Migration(58, "activation: guide tasks done (who tapped 完成 on which screen, when)", TASKS_DONE),
))
