"""A pack switch keeps the gallery: members are re-embedded for the new pack before boxes move.

An embedding means something only with the pack that made it, so a box switched to a pack of
another embedding space (MobileFaceNet to dlib, say) would name nobody: the gallery holds no face in
that space. The cloud never keeps uploaded photos, only each member's aligned enrolment thumbnail
(``cloud.faces.thumbnails``, kept with face consent only). So before a rollout sends a pack, each
enrolled member with face consent and a thumbnail gets one face in the new space, made by the new
pack's own engine from that thumbnail: padded back into a frame (the detector needs some context
around a face), detected, aligned the new pack's way and embedded. Members who cannot be carried
over are reported with the reason, never guessed: no consent (as the door counts it,
``survivorship.face_consent``), no thumbnail, or no face found in it. A member carried over has one
template in the new space (the newest enrolment's thumbnail), whatever they had in the old one;
confirmed arrivals add more (``cloud.faces.learning``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from cloud.cdp import survivorship
from cloud.cdp.oneid import PERSON_OF
from cloud.db import Database
from cloud.faces import enrolled, thumbnails
from protocol.facepack.engine import FaceEngine, decode_image
from protocol.facepack.manifests import ModelPack

#: The thumbnail is drawn this many times larger inside a grey frame before detection: detectors
#: are trained on faces with shoulders and background around them, not on tight crops.
PAD_FACTOR = 2.0
Skip = Literal["no_consent", "no_thumbnail", "no_face_found"]


@dataclass
class CarryOver:
    pack: str
    embedding_space: str
    members: int = 0  # enrolled people considered
    reembedded: int = 0
    already: int = 0  # had a face in the new space
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> person ids

    def as_dict(self) -> dict:
        return {"pack": self.pack, "embedding_space": self.embedding_space, "members": self.members,
                "reembedded": self.reembedded, "already": self.already,
                "skipped": {reason: sorted(ids) for reason, ids in sorted(self.skipped.items())}}


def framed(thumbnail: np.ndarray) -> np.ndarray:
    """The aligned thumbnail centred in a grey frame ``PAD_FACTOR`` times its size."""
    h, w = thumbnail.shape[:2]
    frame = np.full((int(h * PAD_FACTOR), int(w * PAD_FACTOR), 3), 127, np.uint8)
    top, left = (frame.shape[0] - h) // 2, (frame.shape[1] - w) // 2
    frame[top:top + h, left:left + w] = thumbnail
    return frame


def embed_thumbnail(engine: FaceEngine, jpeg: bytes) -> tuple[np.ndarray, float] | None:
    """The new pack's embedding of a stored thumbnail and its detector score; None: no face found."""
    image = framed(decode_image(jpeg))
    faces = engine.detect(image)
    if not faces:
        image = cv2.resize(image, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)  # small chips: try larger
        faces = engine.detect(image)
    if not faces:
        return None
    face = faces[0]
    return engine.embed_aligned([engine.align(image, face)])[0], float(face.score)


def carry_over(db: Database, pack: ModelPack, load_engine: Callable[[], FaceEngine]) -> CarryOver:
    """Give every enrolled person a face in ``pack``'s embedding space; what was done and skipped.
    ``load_engine`` (the pack's engine) is called only when someone needs re-embedding."""
    space = pack.recogniser.embedding_space
    engine: FaceEngine | None = None
    report = CarryOver(pack=pack.id, embedding_space=space)
    people = db.rows(
        f"SELECT {PERSON_OF} AS person, MAX(CASE WHEN f.embedding_space = ? THEN 1 ELSE 0 END) "
        f"FROM faces f JOIN members m ON m.id = f.member_id GROUP BY {PERSON_OF} ORDER BY 1", (space,))
    for person, has_space in people:
        report.members += 1
        if has_space:
            report.already += 1
            continue
        reason: Skip | None = None
        if not survivorship.face_consent_of(db, person):
            reason = "no_consent"
        elif (jpeg := thumbnails.of_person(db, person)) is None:
            reason = "no_thumbnail"
        elif (made := embed_thumbnail(engine := engine or load_engine(), jpeg)) is None:
            reason = "no_face_found"
        else:
            vector, score = made
            enrolled.add_face(db, member_id=person, vector=vector, embedding_space=space, pack_id=pack.id,
                              det_score=score, source="reembedded")
            report.reembedded += 1
        if reason is not None:
            report.skipped.setdefault(reason, []).append(person)
    return report
