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

Members have a slot each (a row of the per-member arrays: sum, count, normalised mean) and every face
row knows its owner's slot, so a search picks each candidate member's best photo and scores their
mean templates in a few array operations: the means are normalised when faces come or go, not per
search (that rescoring was 18 % of an arrival's ingest CPU, docs/PERFORMANCE.md, ninth pass).
"""

from __future__ import annotations

import bisect
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
        self._row_slot = np.empty(0, np.int64)  # face row -> its owner's slot, -1 = removed
        self._face_ids: dict[str, int] = {}
        self._face_ns: dict[str, int] = {}  # face id -> its number in the database, where known
        self._known_ns: list[int] = []  # those numbers, sorted: how many known faces a refresh window holds
        self._ann: faiss.Index | None = None
        self._ann_rows = 0
        self._epoch = -1
        self._last_n = 0
        self._live = 0
        self._slots: dict[str, int] = {}  # member -> their row in the arrays below
        self._members: list[str] = []  # slot -> member
        self._sums = np.empty((0, dim), np.float64)  # slot -> sum of their unit vectors (the mean's direction)
        self._norms = np.empty(0, np.float64)  # slot -> that sum's length (0: no mean, the best photo counts)
        self._means = np.empty((0, dim), np.float64)  # slot -> the sum normalised: their mean template
        self._counts = np.empty(0, np.int64)  # slot -> live templates

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

    def add(self, member_id: str, vector: np.ndarray, face_id: str | None = None, n: int | None = None) -> None:
        """Add one face now (the enrolling process sees it without waiting for a refresh); ``n``, its
        number in the database, lets refreshes count it as known instead of listing the window."""
        with self._lock:
            self._append([(face_id, n, member_id, self._unit(vector))])

    def refresh(self) -> None:
        """Catch up with the database: new faces from any process, removals and owner changes."""
        if self._db is None:
            return
        after = max(0, self._last_n - _LATE_COMMIT_WINDOW)
        with self._lock:
            seen = (self._epoch, len(self._known_ns) - bisect.bisect_right(self._known_ns, after))
        epoch, faces = enrolled.catch_up(self._db, self.embedding_space, after=after, known=self._face_ids, seen=seen)
        with self._lock:
            fresh: list[tuple[str | None, int | None, str, np.ndarray]] = [
                (f.id, f.n, f.member_id, self._unit(f.vector)) for f in faces if f.id not in self._face_ids]
            if faces:
                self._last_n = max(self._last_n, faces[-1].n)
            self._append(fresh)
            if epoch != self._epoch:
                self._reown(enrolled.face_owners(self._db, self.embedding_space))
                self._epoch = epoch

    def template(self, member_id: str) -> np.ndarray | None:
        """The member's mean template as kept for the ``mean`` mode (unit length; None for a member
        with no live face or photos that cancel out), so it can be checked against the stored faces."""
        with self._lock:
            slot = self._slots.get(member_id)
            if slot is None or not self._counts[slot] or not self._norms[slot]:
                return None
            return self._means[slot].copy()

    def _append(self, faces: list[tuple[str | None, int | None, str, np.ndarray]]) -> None:
        """Faces as (face id, number in the database, owner, unit vector)."""
        if not faces:
            return
        start = len(self._row_slot)
        rows = np.stack([v for _, _, _, v in faces]).astype(np.float32)
        slots = np.array([self._slot(owner) for _, _, owner, _ in faces], np.int64)
        self._matrix = np.vstack([self._matrix, rows])
        self._row_slot = np.concatenate([self._row_slot, slots])
        self._count_in(slots, rows)
        for offset, (face_id, n, _, _) in enumerate(faces):
            if face_id is not None:
                self._face_ids[face_id] = start + offset
                if n is not None:
                    self._face_ns[face_id] = n
                    bisect.insort(self._known_ns, n)
        self._live += len(faces)
        if self._ann is not None:
            self._ann.add(rows)
            self._ann_rows += len(rows)
        elif len(self._row_slot) >= self._ann_threshold:
            self._build_ann()

    def _reown(self, owners: dict[str, str]) -> None:
        names: list[str | None] = [self._members[slot] if slot >= 0 else None for slot in self._row_slot]
        for face_id, row in list(self._face_ids.items()):
            owner = owners.get(face_id)
            if owner is None:
                del self._face_ids[face_id]
                self._face_ns.pop(face_id, None)
                if names[row] is not None:
                    self._live -= 1
            names[row] = owner
        self._known_ns = sorted(self._face_ns.values())
        self._slots, self._members = {}, []
        self._resize(0)
        self._row_slot = np.array([-1 if name is None else self._slot(name) for name in names], np.int64)
        live = self._row_slot >= 0
        self._count_in(self._row_slot[live], self._matrix[live])
        if len(self._row_slot) - self._live > max(1000, len(self._row_slot) // 5):
            self._compact()

    def _slot(self, member_id: str) -> int:
        """The member's row in the per-member arrays, made (zeroed) on first sight."""
        slot = self._slots.get(member_id)
        if slot is None:
            slot = self._slots[member_id] = len(self._members)
            self._members.append(member_id)
            if slot >= len(self._counts):
                self._resize(max(16, 2 * slot))
        return slot

    def _resize(self, capacity: int) -> None:
        """Per-member arrays of ``capacity`` slots, the existing ones kept (0 empties them)."""
        kept = min(capacity, len(self._counts))

        def grown(old: np.ndarray) -> np.ndarray:
            new = np.zeros((capacity, *old.shape[1:]), old.dtype)
            new[:kept] = old[:kept]
            return new

        self._sums, self._norms = grown(self._sums), grown(self._norms)
        self._means, self._counts = grown(self._means), grown(self._counts)

    def _count_in(self, slots: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors to their owners' sums and renormalise those owners' means, once each."""
        np.add.at(self._sums, slots, vectors.astype(np.float64))
        np.add.at(self._counts, slots, 1)
        touched = np.unique(slots)
        norms = np.linalg.norm(self._sums[touched], axis=1)
        self._norms[touched] = norms
        self._means[touched] = np.divide(self._sums[touched], norms[:, None], out=np.zeros((len(touched), self.dim)),
                                         where=norms[:, None] > 0)

    def _compact(self) -> None:
        keep = np.flatnonzero(self._row_slot >= 0)
        new_row = {int(old): new for new, old in enumerate(keep)}
        self._matrix = self._matrix[keep]
        self._row_slot = self._row_slot[keep]
        self._face_ids = {face_id: new_row[row] for face_id, row in self._face_ids.items() if row in new_row}
        self._ann = None
        if len(self._row_slot) >= self._ann_threshold:
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
                found, nearest = self._ann.search(probe[None, :], _CANDIDATES)
                rows, scores = nearest[0][nearest[0] >= 0], found[0][nearest[0] >= 0]
            else:
                # einsum's own loop, not ``@``: OpenBLAS spreads a matrix-vector product of more than
                # ~3,600 faces over threads, and on a busy machine waiting for them cost 5-25 ms a
                # search (p95) where one thread takes 0.1 ms (docs/PERFORMANCE.md, cost curves).
                all_scores = np.einsum("ij,j->i", self._matrix, probe)
                k = min(len(all_scores), _CANDIDATES * 4)
                rows = np.argpartition(-all_scores, k - 1)[:k]
                scores = all_scores[rows]
            slots = self._row_slot[rows]
            live = slots >= 0
            if not live.any():
                return None
            # each candidate member once, with their best photo: by slot, best score first in each
            order = np.lexsort((-scores[live], slots[live]))
            slots, scores = slots[live][order], scores[live][order].astype(np.float64)
            first = np.concatenate([[True], slots[1:] != slots[:-1]])
            members, member_scores = slots[first], scores[first]
            if self.template_mode == "mean":
                # einsum again: the candidates' means against the probe in one single-threaded product
                means = np.einsum("ij,j->i", self._means[members], probe.astype(np.float64))
                member_scores = np.where(self._norms[members] > 0, means, member_scores)
            ranked = np.argsort(-member_scores, kind="stable")[:2]
            best = int(members[ranked[0]])
            return SearchResult(self._members[best], float(member_scores[ranked[0]]),
                                float(member_scores[ranked[1]]) if len(ranked) > 1 else None,
                                int(self._counts[best]))

    def _unit(self, vector: np.ndarray) -> np.ndarray:
        vec = np.asarray(vector, dtype=np.float32).ravel()
        if vec.size != self.dim:
            raise DimensionMismatch(
                f"vector has {vec.size} dimensions, the {self.embedding_space} gallery has {self.dim}"
            )
        return vec / np.linalg.norm(vec)
