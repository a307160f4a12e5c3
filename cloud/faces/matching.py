"""Member or visitor: the decision that puts a name on the guide screen.

Showing an assistant the wrong member's profile is the worst error the product can make; a missed
member is only treated as a visitor. So every doubt resolves to "visitor": a pack the cloud does
not know, a vector from another embedding space, a score under the threshold, a runner-up too
close to tell apart, a member who withdrew face consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cloud.arrivals import feedback
from cloud.cdp import members
from cloud.cdp.members import Member
from cloud.db import Database
from cloud.faces.gallery import FaceIndex
from protocol.facepack import PackError, get_pack
from protocol.facepack.manifests import ModelPack

Reason = Literal[
    "member", "unknown_pack", "other_space", "empty_gallery", "below_threshold", "ambiguous", "no_consent",
    "doubted",
]


@dataclass(frozen=True)
class Match:
    member: Member | None
    confidence: float  # the best cosine similarity seen; 0.0 when nothing was compared
    reason: Reason


class Matcher:
    def __init__(self, index: FaceIndex, db: Database, gallery_pack: ModelPack) -> None:
        self._index = index
        self._db = db
        self._gallery_pack = gallery_pack

    def match(self, vector: np.ndarray, pack_id: str) -> Match:
        try:
            probe_pack = get_pack(pack_id)
        except PackError:
            return Match(None, 0.0, "unknown_pack")
        space = probe_pack.recogniser.embedding_space
        if space != self._index.embedding_space or probe_pack.recogniser.embedding_dim != self._index.dim:
            return Match(None, 0.0, "other_space")
        self._index.refresh()
        found = self._index.search(vector)
        if found is None:
            return Match(None, 0.0, "empty_gallery")
        confidence = float(np.clip(found.score, -1.0, 1.0))
        # Both packs' calibrations bound the decision: the stricter one wins.
        threshold = max(probe_pack.match_threshold, self._gallery_pack.match_threshold)
        margin = max(probe_pack.match_margin, self._gallery_pack.match_margin)
        if found.score < threshold:
            return Match(None, confidence, "below_threshold")
        if found.runner_up is not None and found.score - found.runner_up < margin:
            return Match(None, confidence, "ambiguous")
        member = members.member(self._db, found.member_id)
        if member is None or not member.face_consent:
            return Match(None, confidence, "no_consent")
        if found.score < threshold + feedback.threshold_penalty(self._db, member.id):
            return Match(None, confidence, "doubted")  # assistants said "not this person" before
        return Match(member, confidence, "member")
