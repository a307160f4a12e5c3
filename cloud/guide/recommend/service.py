"""What the card builder calls: a model per database, kept fresh, and one history read per arrival.

The model is built on first use (a second or so per million order lines; see docs/RECOMMEND.md)
and rebuilt in a background thread once older than ``MAX_AGE_S``, while the old one keeps
answering, so an arrival never waits for a rebuild after the first. ``refresh`` rebuilds at once
(a nightly job, or after a big import).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from datetime import datetime

from cloud.db import Database
from cloud.guide.recommend.history import Line, person_lines
from cloud.guide.recommend.model import RecoModel, build_model
from cloud.guide.recommend.rank import Pick, recommend
from cloud.guide.recommend.reasons import Lang
from protocol.messages import Recommendation

log = logging.getLogger(__name__)
MAX_AGE_S = 6 * 3600


class _Slot:
    def __init__(self) -> None:
        self.model: RecoModel | None = None
        self.lock = threading.Lock()
        self.rebuilding = False


_slots: weakref.WeakKeyDictionary[Database, _Slot] = weakref.WeakKeyDictionary()
_slots_lock = threading.Lock()


def _slot(db: Database) -> _Slot:
    with _slots_lock:
        return _slots.setdefault(db, _Slot())


def refresh(db: Database, *, now: int | None = None) -> RecoModel:
    """Rebuild the model now and serve it from the next arrival on."""
    model = build_model(db, now=now)
    _slot(db).model = model
    log.info("recommendation model: %d items, %d with neighbours, built in %.2f s",
             len(model.items), len(model.neighbours), model.build_s)
    return model


def model_for(db: Database) -> RecoModel:
    slot = _slot(db)
    if slot.model is None:
        with slot.lock:
            if slot.model is None:
                return refresh(db)
    model = slot.model
    if time.time() - model.built_at > MAX_AGE_S and not slot.rebuilding:
        slot.rebuilding = True
        threading.Thread(target=_rebuild, args=(db, slot), name="recommend-refresh", daemon=True).start()
    return model


def warm(db: Database) -> threading.Thread:
    """Build the model in the background now (at start-up), so the first arrival's card does not
    wait for it; an arrival that comes first waits on the same lock instead of building twice."""
    def build() -> None:
        try:
            model_for(db)
        except Exception:  # the runtime may be closing already; the first arrival builds it then
            log.warning("recommendation model warm-up failed; the first card will build it", exc_info=True)

    thread = threading.Thread(target=build, name="recommend-warm", daemon=True)
    thread.start()
    return thread


def _rebuild(db: Database, slot: _Slot) -> None:
    try:
        refresh(db)
    except Exception:  # a failed rebuild must not take the cards down: the old model keeps serving
        log.exception("recommendation model rebuild failed; keeping the previous one")
    finally:
        slot.rebuilding = False


def picks_for(db: Database, lines: list[Line], store: str | None, now: datetime, *, limit: int = 5,
              declared: Sequence[str] = ()) -> list[Pick]:
    """Structured picks (kind and facts too): what the sales script fills its placeholders from.
    ``lines``: the person's (``person_lines``; a card reads them with its other reads about the person)."""
    return recommend(model_for(db), lines, store=store, now=int(now.timestamp()), limit=limit, declared=declared)


def as_recommendations(picks: list[Pick], lang: Lang = "zh") -> list[Recommendation]:
    return [Recommendation(sku=p.sku, name=p.name, price=p.price, reason=p.reason(lang)) for p in picks]


def for_card(db: Database, person_id: str, store: str, now: datetime, *, limit: int = 3,
             lang: Lang = "zh") -> list[Recommendation]:
    return as_recommendations(picks_for(db, person_lines(db, person_id), store, now, limit=limit), lang)
