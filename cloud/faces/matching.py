"""Member or visitor: the decision that puts a name on the guide screen.

Showing an assistant the wrong member's profile is the worst error the product can make; a missed
member is only treated as a visitor. So every doubt resolves to "visitor": a pack the cloud does
not know, a vector from another embedding space, a score under the threshold, a runner-up too
close to tell apart, a member who withdrew face consent. One exception asks instead of deciding:
a score in the band just under the threshold (``UNCERTAIN_FLOOR``), clear of the runner-up, for
a consenting member, is ``uncertain``: the card names no profile and asks the assistant to confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cloud.arrivals import feedback
from cloud.cdp import members
from cloud.cdp.members import Member
from cloud.db import Database
from cloud.faces import calibration
from cloud.faces.gallery import FaceIndex
from protocol.facepack import PackError, get_pack
from protocol.facepack.manifests import ModelPack

Reason = Literal[
    "member", "unknown_pack", "other_space", "empty_gallery", "below_threshold", "ambiguous", "no_consent",
    "doubted", "uncertain", "not_commercial",
    "wifi",  # an uncertain face that the member's phone in the store raised (``cloud.arrivals.fusion``)
]

#: The lower bound of the "uncertain" band per pack: the threshold at which 1% of strangers pass on the
#: dev set (bench/openset.py, docs/RECOGNITION.md's score curve). Between it and the pack's threshold a
#: face that also clears the margin is neither shown as the member nor dropped as a visitor: the card
#: asks the assistant "可能是 王女士？请确认". A pack without a measured bound has no band (yunet-dlib:
#: its curve never reaches FPIR 1% with the margin, so the floor is its threshold).
UNCERTAIN_FLOOR: dict[str, float] = {"scrfd500m-mbf": 0.458, "yunet-mbf": 0.448}


def uncertain_floor(pack: ModelPack) -> float:
    return min(pack.match_threshold, UNCERTAIN_FLOOR.get(pack.id, pack.match_threshold))


@dataclass(frozen=True)
class Match:
    member: Member | None
    confidence: float  # the best cosine similarity seen; 0.0 when nothing was compared
    reason: Reason
    #: "uncertain": who it might be, to be confirmed on the card; never shown as the member
    candidate: Member | None = None
    #: the bar applied (both packs' threshold plus the store's offset) and the uncertain floor, for a
    #: member or uncertain match: what Wi-Fi fusion (``cloud.arrivals.fusion``) measures the score from
    threshold: float = 0.0
    floor: float = 0.0


class Matcher:
    def __init__(self, index: FaceIndex, db: Database, gallery_pack: ModelPack, *, commercial_only: bool = False) -> None:
        self._index = index
        self._commercial_only = commercial_only  # the brand's setting: a research pack's faces name nobody
        self._db = db
        self._gallery_pack = gallery_pack
        self.store_offsets = calibration.StoreOffsets(db, gallery_pack)

    def bounds(self, store: str | None, probe_pack: ModelPack | None = None) -> tuple[float, float]:
        """The bar a member's face must reach at ``store`` (both packs' threshold plus the store's
        offset) and the uncertain floor under which nobody is even asked about."""
        packs = (probe_pack or self._gallery_pack, self._gallery_pack)
        threshold = max(p.match_threshold for p in packs)
        return threshold + self.store_offsets.get(store), max(uncertain_floor(p) for p in packs)

    def match(self, vector: np.ndarray, pack_id: str, store: str | None = None) -> Match:
        """``store``: where the face was seen; its calibration (``cloud.faces.calibration``) may only
        demand more similarity than the packs do, and what it holds back is asked about, not dropped."""
        try:
            probe_pack = get_pack(pack_id)
        except PackError:
            return Match(None, 0.0, "unknown_pack")
        if self._commercial_only and not probe_pack.commercial_use:
            return Match(None, 0.0, "not_commercial")
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
        # Under the threshold but above both packs' uncertain floors (and clear of the runner-up): ask.
        bar, floor = self.bounds(store, probe_pack)
        if found.score < floor:
            return Match(None, confidence, "below_threshold")
        if found.runner_up is not None and found.score - found.runner_up < margin:
            return Match(None, confidence, "ambiguous" if found.score >= threshold else "below_threshold")
        member = members.member(self._db, found.member_id)
        if member is None or not member.face_consent:
            return Match(None, confidence, "no_consent" if found.score >= threshold else "below_threshold")
        if found.score < bar:
            return Match(None, confidence, "uncertain", candidate=member, threshold=bar, floor=floor)
        # per member: each "不是本人" demands a pack-scaled step more (DOUBT_STEP is a MobileFaceNet cosine)
        if found.score < threshold + feedback.threshold_penalty(self._db, member.id) * calibration.scale(
                self._gallery_pack):
            return Match(None, confidence, "doubted")  # assistants said "not this person" before
        return Match(member, confidence, "member", threshold=bar, floor=floor)
