"""The faces' tables: enrolled embeddings (``faces``), the gallery's epoch, and thumbnails.

``gallery_state`` holds one row whose epoch goes up whenever enrolled faces change, so each
process's in-memory index knows when to reload. ``face_thumbnails`` (version 9): the one small
enrolment thumbnail a member's guide card shows, one row per enrolled record (the newest
enrolment replaces it): the 112x112 aligned face as a JPEG of a few KB, never the uploaded photo.
Erasure and face-consent withdrawal delete the rows (``cloud.faces.thumbnails.delete``).
Version 36 (issue 18): several faces per person (``source``: an enrolment photo or an ``arrival`` the
assistant confirmed, with its ``visit_id`` and ``score``), and ``face_pending``: a member arrival's
embedding kept until the assistant confirms the visit (``cloud.faces.learning``), for at most a day.
"""

from __future__ import annotations

from cloud.db.migrations import Migration, Schema

SCHEMA = Schema("faces", (
    Migration(1, "face gallery", (
        """CREATE TABLE faces (
        n {serial_pk}, id TEXT NOT NULL UNIQUE, member_id TEXT NOT NULL REFERENCES members (id),
        embedding {blob} NOT NULL, embedding_space TEXT NOT NULL, pack TEXT NOT NULL, det_score DOUBLE PRECISION,
        created TEXT NOT NULL)""",
        "CREATE INDEX faces_space ON faces (embedding_space, n)",
        "CREATE INDEX faces_member ON faces (member_id)",
        "CREATE TABLE gallery_state (id BIGINT PRIMARY KEY, epoch BIGINT NOT NULL)",
        "INSERT INTO gallery_state (id, epoch) VALUES (1, 0)",
    )),
    Migration(9, "enrolment thumbnails for the guide card", (
        """CREATE TABLE face_thumbnails (
        member_id TEXT PRIMARY KEY, face_id TEXT NOT NULL, jpeg {blob} NOT NULL, created TEXT NOT NULL)""",
    )),
    Migration(36, "several faces per member: learned from confirmed arrivals, pending confirmation", (
        "ALTER TABLE faces ADD COLUMN source TEXT NOT NULL DEFAULT 'enrolment'",
        "ALTER TABLE faces ADD COLUMN visit_id TEXT",
        "ALTER TABLE faces ADD COLUMN score DOUBLE PRECISION",
        """CREATE TABLE face_pending (
        visit_id TEXT PRIMARY KEY, member_id TEXT NOT NULL, embedding {blob} NOT NULL, embedding_space TEXT NOT NULL,
        pack TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, ts TEXT NOT NULL)""",
        "CREATE INDEX face_pending_ts ON face_pending (ts)",
        "CREATE INDEX face_pending_member ON face_pending (member_id)",
    )),
))
