"""The enrolled photo on the guide card: one small aligned face per member, kept with consent only.

The assistant confirms the person before greeting them by comparing the live crop from the door
with the photo the member enrolled. Keeping the uploaded photo would be a new store of personal
images; instead the cloud keeps what the recogniser already made of it: the 112x112 aligned face
(eyes and mouth at fixed points, background cut away), re-encoded as a JPEG of a few KB. It is
written only by enrolment (which refuses members without face consent) and deleted with the faces
on erasure and on consent withdrawal, in the same transaction.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime

import cv2
import numpy as np

from cloud.db import Database, Read, Tx

#: JPEG quality of the stored thumbnail: 112x112 at 80 is 3-5 KB, ~6 KB of base64 on the card.
JPEG_QUALITY = 80
#: Refuse to put anything larger on a card (the codec's cap is 64 KiB for the whole card).
MAX_CARD_BYTES = 12_000


class ThumbnailError(ValueError):
    pass


def encode(aligned: np.ndarray) -> bytes:
    """The aligned BGR face (112x112x3 uint8, as ``FaceEngine.align`` returns it) as a small JPEG."""
    ok, data = cv2.imencode(".jpg", aligned, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ThumbnailError("the aligned face could not be encoded as JPEG")
    jpeg = data.tobytes()
    if len(jpeg) > MAX_CARD_BYTES:
        raise ThumbnailError(f"thumbnail of {len(jpeg)} bytes is over {MAX_CARD_BYTES}")
    return jpeg


def save(db: Database, member_id: str, face_id: str, jpeg: bytes) -> None:
    """The record's thumbnail; a later enrolment replaces it (one per member, the newest)."""
    db.execute(
        "INSERT INTO face_thumbnails (member_id, face_id, jpeg, created) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (member_id) DO UPDATE SET face_id = excluded.face_id, jpeg = excluded.jpeg, "
        "created = excluded.created",
        (member_id, face_id, jpeg, datetime.now(UTC).isoformat()),
    )


def of_person(db: Database, person_id: str) -> bytes | None:
    """The newest thumbnail of any of the person's records (a merge keeps the records' rows)."""
    return of_person_read(person_id).run(db)


def of_person_read(person_id: str) -> Read[bytes | None]:
    return Read(
        "SELECT t.jpeg FROM face_thumbnails t JOIN members m ON m.id = t.member_id "
        "WHERE m.id = ? OR m.merged_into = ? ORDER BY t.created DESC LIMIT 1", (person_id, person_id), _jpeg)


def _jpeg(rows: list[dict]) -> bytes | None:
    return bytes(rows[0]["jpeg"]) if rows else None


def card_photo(db: Database, person_id: str) -> str | None:
    """Base64 of the thumbnail, as ``MemberSummary.enrolled_photo`` carries it; None without one."""
    return card_photo_read(person_id).run(db)


def card_photo_read(person_id: str) -> Read[str | None]:
    """``card_photo`` as a read to gather with a card's other reads about the person."""
    return of_person_read(person_id).then(_base64)


def _base64(jpeg: bytes | None) -> str | None:
    return base64.b64encode(jpeg).decode() if jpeg else None


def delete(tx: Tx, member_ids: Sequence[str]) -> int:
    """Forget the thumbnails of these records (erasure, consent withdrawal); how many went."""
    if not member_ids:
        return 0
    marks = ", ".join("?" for _ in member_ids)
    return tx.execute(f"DELETE FROM face_thumbnails WHERE member_id IN ({marks})", list(member_ids))
