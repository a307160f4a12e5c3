"""Member or visitor: the decision that puts a name on the guide screen.

Showing an assistant the wrong member's profile is the worst error the product can make; a missed
member is only treated as a visitor. So every doubt resolves to "visitor": a pack the cloud does
not know, a vector from another embedding space, a score under the threshold, a runner-up too
close to tell apart, a member who withdrew face consent. One exception asks instead of deciding:
a score in the band just under the threshold (``UNCERTAIN_FLOOR``), clear of the runner-up, for
a consenting member, is ``uncertain``: the card names no profile and asks the assistant to confirm.

A member enrolled with several photos is scored as the pack's ``templates`` mode says (mean template
or best photo) and judged by that mode's own calibrated threshold and margin (``ModelPack.bounds``).
Arrivals from a pack of another embedding space are searched in that space's gallery when members
were re-embedded for it before a rollout (``cloud.faces.reembed``), judged by that pack alone.
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


def uncertain_floor(pack: ModelPack, templates: int = 1) -> float:
    """For a member enrolled with ``templates`` photos: several are scored another way (the manifest's
    ``templates``), with their own FPIR-1% floor; without one, no band."""
    if templates >= 2 and pack.templates is not None:
        floor = pack.templates.floor
        return pack.templates.threshold if floor is None else min(pack.templates.threshold, floor)
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
        self._other_spaces: dict[str, FaceIndex] = {}  # galleries re-embedded for another pack's space
        self._commercial_only = commercial_only  # the brand's setting: a research pack's faces name nobody
        self._db = db
        self._gallery_pack = gallery_pack
        self.store_offsets = calibration.StoreOffsets(db, gallery_pack)

    def bounds(self, store: str | None, packs: tuple[ModelPack, ...] = (), templates: int = 1) -> tuple[float, float]:
        """The bar a member's face must reach at ``store`` (the packs' threshold for a member with
        ``templates`` photos, the stricter one, plus the store's offset) and the uncertain floor under
        which nobody is even asked about. ``packs``: the probe's and the gallery's (default the gallery's)."""
        packs = packs or (self._gallery_pack,)
        threshold = max(p.bounds(templates)[0] for p in packs)
        return threshold + self.store_offsets.get(store), max(uncertain_floor(p, templates) for p in packs)

    def match(self, vector: np.ndarray, pack_id: str, store: str | None = None) -> Match:
        """``store``: where the face was seen; its calibration (``cloud.faces.calibration``) may only
        demand more similarity than the packs do, and what it holds back is asked about, not dropped."""
        try:
            probe_pack = get_pack(pack_id)
        except PackError:
            return Match(None, 0.0, "unknown_pack")
        if self._commercial_only and not probe_pack.commercial_use:
            return Match(None, 0.0, "not_commercial")
        index, gallery_pack = self._gallery_for(probe_pack)
        if index is None:
            return Match(None, 0.0, "other_space")
        found = index.search(vector)
        if found is None:
            return Match(None, 0.0, "empty_gallery")
        confidence = float(np.clip(found.score, -1.0, 1.0))
        # Both packs' calibrations (for a member with this many photos) bound the decision: the stricter wins.
        (probe_t, probe_m), (gallery_t, gallery_m) = probe_pack.bounds(found.templates), gallery_pack.bounds(found.templates)
        threshold, margin = max(probe_t, gallery_t), max(probe_m, gallery_m)
        # Under the threshold but above both packs' uncertain floors (and clear of the runner-up): ask.
        bar, floor = self.bounds(store, (probe_pack, gallery_pack), found.templates)
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
        if found.score < threshold + feedback.threshold_penalty(self._db, member.id) * calibration.scale(gallery_pack):
            return Match(None, confidence, "doubted")  # assistants said "not this person" before
        return Match(member, confidence, "member", threshold=bar, floor=floor)

    def _gallery_for(self, probe_pack: ModelPack) -> tuple[FaceIndex | None, ModelPack]:
        """The gallery that can answer a face of ``probe_pack`` (caught up with the database), and the
        pack whose calibration it carries; None when no member has a face in that embedding space."""
        space, dim = probe_pack.recogniser.embedding_space, probe_pack.recogniser.embedding_dim
        if space == self._index.embedding_space:
            if dim != self._index.dim:
                return None, self._gallery_pack
            self._index.refresh()
            return self._index, self._gallery_pack
        index = self._other_spaces.get(space)
        if index is None:
            index = self._other_spaces[space] = FaceIndex(space, dim, db=self._db, template_mode=probe_pack.template_mode)
        index.refresh()
        return (index if len(index) else None), probe_pack
