"""The in-memory gallery of enrolled faces that every arrival is compared against.

A brand's gallery is tens of thousands of 128-d vectors at most, a few megabytes: one matrix
product per arrival is faster than any database query. The gallery is replaced, never mutated,
when a face is enrolled, so the ingest thread can search while the API thread enrols without
either waiting for the other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from cloud.store import Store


@dataclass(frozen=True)
class SearchResult:
    member_id: str
    score: float
    runner_up: float | None  # best score of any *other* member; None when there is no other


@dataclass(frozen=True)
class _Gallery:
    matrix: np.ndarray  # (faces, dim) float32, rows L2-normalised
    owner: np.ndarray  # (faces,) index into members
    members: tuple[str, ...]
    slot: dict[str, int]  # member id -> index into members


class DimensionMismatch(ValueError):
    """A vector whose length differs from the gallery's: it comes from another model."""


class FaceIndex:
    def __init__(self, embedding_space: str, dim: int) -> None:
        self.embedding_space = embedding_space
        self.dim = dim
        self._write_lock = threading.Lock()
        self._gallery = _Gallery(np.empty((0, dim), np.float32), np.empty(0, np.intp), (), {})

    @classmethod
    def from_store(cls, store: Store, embedding_space: str, dim: int) -> "FaceIndex":
        index = cls(embedding_space, dim)
        index._extend([(face.member_id, face.vector) for face in store.faces(embedding_space)])
        return index

    def __len__(self) -> int:
        return len(self._gallery.matrix)

    def add(self, member_id: str, vector: np.ndarray) -> None:
        self._extend([(member_id, vector)])

    def _extend(self, faces: list[tuple[str, np.ndarray]]) -> None:
        if not faces:
            return
        rows = np.stack([self._unit(vector) for _, vector in faces])
        with self._write_lock:
            old = self._gallery
            members, slot = list(old.members), dict(old.slot)
            for member_id, _ in faces:
                if member_id not in slot:
                    slot[member_id] = len(members)
                    members.append(member_id)
            self._gallery = _Gallery(
                matrix=np.vstack([old.matrix, rows]),
                owner=np.concatenate([old.owner, [slot[m] for m, _ in faces]]).astype(np.intp),
                members=tuple(members),
                slot=slot,
            )

    def search(self, vector: np.ndarray) -> SearchResult | None:
        """The best-matching member and the best score of anyone else; None for an empty gallery.

        A member enrolled with several photos counts once, with their best photo's score, so
        that more photos of one person never push a runner-up margin towards zero.
        """
        gallery = self._gallery
        if not gallery.members:
            return None
        scores = gallery.matrix @ self._unit(vector)
        per_member = np.full(len(gallery.members), -np.inf, dtype=np.float32)
        np.maximum.at(per_member, gallery.owner, scores)
        order = np.argsort(per_member)[::-1]
        runner_up = float(per_member[order[1]]) if len(order) > 1 else None
        return SearchResult(gallery.members[order[0]], float(per_member[order[0]]), runner_up)

    def _unit(self, vector: np.ndarray) -> np.ndarray:
        vec = np.asarray(vector, dtype=np.float32).ravel()
        if vec.size != self.dim:
            raise DimensionMismatch(
                f"vector has {vec.size} dimensions, the {self.embedding_space} gallery has {self.dim}"
            )
        return vec / np.linalg.norm(vec)
