"""The in-memory gallery of enrolled faces that every arrival is compared against.

Small galleries are searched exactly (one matrix product, faster than any index below ~50k
faces); large ones through a faiss inverted-file index over inner products, returning the nearest
candidates from which the best member and the best *other* member are taken.

Consistency across processes: the database keeps a gallery epoch, bumped whenever faces leave or
change owner (erasure, consent withdrawal, merge, split). ``refresh`` adds faces enrolled since
the last look (by any process), and on a new epoch re-reads who owns which face and drops the
ones gone; removed rows are masked, and the index is rebuilt once a fifth of it is dead weight.

Several photos per member (templates, at most ``enrolled.MAX_TEMPLATES``): each photo stays one row,
so candidates are found the same way; the member is then scored as the pack's ``template_mode``
says: ``max`` (their best photo) or ``mean`` (their photos' normalised mean template, from a running
sum of unit vectors per member, so no second index is kept).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import faiss
import numpy as np

from cloud.faces import enrolled

if TYPE_CHECKING:
    from cloud.db import Database

ANN_THRESHOLD = 50_000
_CANDIDATES = 32
_LATE_COMMIT_WINDOW = 1000  # face rows committed out of order by concurrent enrolments


@dataclass(frozen=True)
class SearchResult:
    member_id: str
    score: float
    runner_up: float | None  # best score of any *other* member; None when there is no other
    templates: int = 1  # photos the best member is enrolled with (picks the threshold)


class DimensionMismatch(ValueError):
    """A vector whose length differs from the gallery's: it comes from another model."""


class FaceIndex:
    def __init__(self, embedding_space: str, dim: int, *, db: Database | None = None,
                 ann_threshold: int = ANN_THRESHOLD, template_mode: Literal["mean", "max"] = "max") -> None:
        self.embedding_space = embedding_space
        self.dim = dim
        self.template_mode = template_mode
        self._db = db
        self._ann_threshold = ann_threshold
        self._lock = threading.Lock()
        self._matrix = np.empty((0, dim), np.float32)
        self._owners: list[str | None] = []  # None = removed
        self._face_ids: dict[str, int] = {}
        self._ann: faiss.Index | None = None
        self._ann_rows = 0
        self._epoch = -1
        self._last_n = 0
        self._live = 0
        self._sums: dict[str, np.ndarray] = {}  # member -> sum of their unit vectors (the mean's direction)
        self._counts: dict[str, int] = {}  # member -> live templates

    @classmethod
    def from_database(cls, db: Database, embedding_space: str, dim: int, *, ann_threshold: int = ANN_THRESHOLD,
                      template_mode: Literal["mean", "max"] = "max") -> FaceIndex:
        index = cls(embedding_space, dim, db=db, ann_threshold=ann_threshold, template_mode=template_mode)
        index.refresh()
        return index

    def __len__(self) -> int:
        return self._live

    @property
    def mode(self) -> str:
        return "ann" if self._ann is not None else "exact"

    def add(self, member_id: str, vector: np.ndarray, face_id: str | None = None) -> None:
        """Add one face now (the enrolling process sees it without waiting for a refresh)."""
        with self._lock:
            self._append([(face_id, member_id, self._unit(vector))])

    def refresh(self) -> None:
        """Catch up with the database: new faces from any process, removals and owner changes."""
        if self._db is None:
            return
        epoch = enrolled.gallery_epoch(self._db)
        faces = enrolled.faces(self._db, self.embedding_space, after=max(0, self._last_n - _LATE_COMMIT_WINDOW),
                               known=self._face_ids)
        with self._lock:
            fresh: list[tuple[str | None, str, np.ndarray]] = [
                (f.id, f.member_id, self._unit(f.vector)) for f in faces if f.id not in self._face_ids]
            if faces:
                self._last_n = max(self._last_n, faces[-1].n)
            self._append(fresh)
            if epoch != self._epoch:
                self._reown(enrolled.face_owners(self._db, self.embedding_space))
                self._epoch = epoch

    def _append(self, faces: list[tuple[str | None, str, np.ndarray]]) -> None:
        if not faces:
            return
        start = len(self._owners)
        rows = np.stack([v for _, _, v in faces]).astype(np.float32)
        self._matrix = np.vstack([self._matrix, rows])
        for offset, (face_id, owner, vector) in enumerate(faces):
            self._owners.append(owner)
            self._count_in(owner, vector)
            if face_id is not None:
                self._face_ids[face_id] = start + offset
        self._live += len(faces)
        if self._ann is not None:
            self._ann.add(rows)
            self._ann_rows += len(rows)
        elif len(self._owners) >= self._ann_threshold:
            self._build_ann()

    def _reown(self, owners: dict[str, str]) -> None:
        for face_id, row in list(self._face_ids.items()):
            owner = owners.get(face_id)
            if owner is None:
                del self._face_ids[face_id]
                if self._owners[row] is not None:
                    self._live -= 1
            self._owners[row] = owner
        self._sums, self._counts = {}, {}
        for row, live in enumerate(self._owners):
            if live is not None:
                self._count_in(live, self._matrix[row])
        if len(self._owners) - self._live > max(1000, len(self._owners) // 5):
            self._compact()

    def _count_in(self, owner: str, vector: np.ndarray) -> None:
        total = self._sums.get(owner)
        self._sums[owner] = vector.astype(np.float64) if total is None else total + vector
        self._counts[owner] = self._counts.get(owner, 0) + 1

    def _compact(self) -> None:
        keep = [i for i, owner in enumerate(self._owners) if owner is not None]
        ids = {row: face_id for face_id, row in self._face_ids.items()}
        self._matrix = self._matrix[keep]
        self._owners = [self._owners[i] for i in keep]
        self._face_ids = {ids[i]: new for new, i in enumerate(keep) if i in ids}
        self._ann = None
        if len(self._owners) >= self._ann_threshold:
            self._build_ann()

    def _build_ann(self) -> None:
        n = len(self._matrix)
        nlist = max(16, int(np.sqrt(n)))
        quantizer = faiss.IndexFlatIP(self.dim)
        ann = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = self._matrix[np.random.default_rng(0).choice(n, size=min(n, 40 * nlist), replace=False)]
        ann.train(sample)
        ann.add(self._matrix)
        ann.nprobe = 16
        self._ann, self._ann_rows = ann, n

    def search(self, vector: np.ndarray) -> SearchResult | None:
        """The best-matching member and the best score of anyone else; None for an empty gallery.

        A member enrolled with several photos counts once, with their best photo's score (``max``)
        or their mean template's (``mean``), so that more photos of one person never push a
        runner-up margin towards zero. Candidates are the owners of the best-scoring photos.
        """
        probe = self._unit(vector)
        with self._lock:
            if not self._live:
                return None
            if self._ann is not None:
                scores, rows = self._ann.search(probe[None, :], _CANDIDATES)
                pairs = [(float(s), int(r)) for s, r in zip(scores[0], rows[0]) if r >= 0]
            else:
                # einsum's own loop, not ``@``: OpenBLAS spreads a matrix-vector product of more than
                # ~3,600 faces over threads, and on a busy machine waiting for them cost 5-25 ms a
                # search (p95) where one thread takes 0.1 ms (docs/PERFORMANCE.md, cost curves).
                all_scores = np.einsum("ij,j->i", self._matrix, probe)
                k = min(len(all_scores), _CANDIDATES * 4)
                top = np.argpartition(-all_scores, k - 1)[:k]
                pairs = [(float(all_scores[i]), int(i)) for i in top]
            best: dict[str, float] = {}
            for score, row in pairs:
                owner = self._owners[row]
                if owner is not None and score > best.get(owner, -np.inf):
                    best[owner] = score
            if self.template_mode == "mean":
                best = {owner: self._mean_score(owner, probe, score) for owner, score in best.items()}
            counts = {owner: self._counts.get(owner, 1) for owner in best}
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
        runner_up = ranked[1][1] if len(ranked) > 1 else None
        return SearchResult(ranked[0][0], ranked[0][1], runner_up, counts[ranked[0][0]])

    def _mean_score(self, owner: str, probe: np.ndarray, best_photo: float) -> float:
        """Cosine with the member's mean template: the probe against their unit vectors' sum, normalised."""
        total = self._sums.get(owner)
        norm = float(np.linalg.norm(total)) if total is not None else 0.0
        return float(total @ probe) / norm if total is not None and norm > 0 else best_photo

    def _unit(self, vector: np.ndarray) -> np.ndarray:
        vec = np.asarray(vector, dtype=np.float32).ravel()
        if vec.size != self.dim:
            raise DimensionMismatch(
                f"vector has {vec.size} dimensions, the {self.embedding_space} gallery has {self.dim}"
            )
        return vec / np.linalg.norm(vec)
