"""The faces' tables: enrolled embeddings (``faces``), the gallery's epoch, and thumbnails.

``gallery_state`` holds one row whose epoch goes up whenever enrolled faces change, so each
process's in-memory index knows when to reload. ``face_thumbnails`` (version 9): the one small
enrolment thumbnail a member's guide card shows, one row per enrolled record (the newest
enrolment replaces it): the 112x112 aligned face as a JPEG of a few KB, never the uploaded photo.
Erasure and face-consent withdrawal delete the rows (``cloud.faces.thumbnails.delete``).
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
))
