"""Migration 9, first half: the one small enrolment thumbnail a member's guide card shows.

Plain strings only (no imports from cloud.db), so the migrations module can import this one. One
row per enrolled record (the newest enrolment replaces it): the 112x112 aligned face as a JPEG of
a few KB, never the uploaded photo. Erasure and face-consent withdrawal delete the rows
(``cloud.faces.thumbnails.delete``).
"""

STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE face_thumbnails (
        member_id TEXT PRIMARY KEY, face_id TEXT NOT NULL, jpeg {blob} NOT NULL, created TEXT NOT NULL)""",
)
