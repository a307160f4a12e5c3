"""A synthetic brand for demos, tests and benchmarks, landed through the brand's own entry points.

Shaped like the brand material describes, not uniform noise: every person has a CRM member card;
some also buy on Tmall, in the WeChat mini program or on JD under accounts that share their
phone (sometimes masked, as Tmall exports it; a few with the placeholder ``00000000000``), so
OneID has real work to do. Orders follow each person's own repurchase cycle through a year with
seasonal peaks (Chinese New Year, 618, Double 11); a person's categories are skewed towards a
favourite. Everything is drawn with numpy from one seed (``draw_chunk``).

``generate`` hands the brand over as a brand would (``cloud.synthetic.exports``): the stores,
catalogue, staff and shift files, the CRM member list, and each channel's orders in its real export
layout, imported by the same functions ``instore cloud import`` and ``POST /v1/imports`` call, so
OneID, profiles and tags are resolved as the rows land; face consent is given through the
function behind the consent API; the shop floor's till orders go through the order stream
(``cloud.synthetic.floor``). So the demo and the tests exercise what a brand uses. The benchmarks
at a million persons load the same drawing with bulk copies instead (``cloud.synthetic.bulk``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.cdp import members as cdp_members
from cloud.clock import zone
from cloud.db import Database
from cloud.synthetic import exports, landing
from cloud.synthetic.drawn import Chunk, card
from cloud.synthetic.floor import TZ, draw_store_profiles, generate_floor

BRAND = "lumiere"
CATEGORIES = ("护肤", "彩妆", "香水", "面膜", "防晒", "洁面", "精华", "身体护理", "男士护理", "美发",
              "口红", "眼部护理", "卸妆", "美甲", "个护工具", "母婴护理", "礼盒", "旅行装", "配饰", "香氛蜡烛")
CITIES = ("上海", "北京", "广州", "深圳", "杭州", "成都", "南京", "武汉", "西安", "重庆")
SKUS_PER_CATEGORY = 100
CHUNK = 50_000
SOURCES = ("members", "tmall", "wechat", "jd")
CHANNEL_OF = {"members": "pos", "tmall": "tmall", "wechat": "wechat", "jd": "jd"}
_PEAKS = ((20, 10.0), (168, 6.0), (314, 12.0))  # day of year, width: CNY, 618, Double 11


def _season(days: int) -> np.ndarray:
    day = np.arange(days)
    weight = np.ones(days)
    for centre, width in _PEAKS:
        weight += 3.0 * np.exp(-0.5 * ((day - centre) / width) ** 2)
    return weight / weight.sum()


def draw_prices(rng: np.random.Generator) -> np.ndarray:
    return np.exp(rng.normal(np.log(180), 0.7, size=len(CATEGORIES) * SKUS_PER_CATEGORY)).round(0) + 9


#: persons' phones are 13_000_000_013 + idx * 7919 modulo this: distinct (7919 is a prime that does not divide it)
#: and all mainland mobiles, 13x-19x. It was 8_999_999_999, so from person 883,951 on the phones began with 2,
#: numbers the product's blocklist calls invalid; below that person the phones are what they were
_PHONE_SPAN = 6_999_999_000


def name_stores(stores: int, named: Sequence[str]) -> list[str]:
    return [*named[:stores], *(f"st-{i:04d}" for i in range(len(named), stores))]


def draw_chunk(rng: np.random.Generator, first: int, n: int, stores: int, sku_price: np.ndarray,
               season: np.ndarray, t0: int, end: datetime) -> Chunk:
    idx = np.arange(first, first + n)
    phones = (13_000_000_000 + idx * 7919 % _PHONE_SPAN + 13).astype(np.int64)
    home = rng.integers(0, stores, n)
    joined = t0 - rng.integers(0, 3 * 365, n) * 86400
    gender = rng.choice(np.array(["female", "male"]), n, p=[0.8, 0.2])
    consent = rng.random(n) < 0.2
    has = {"members": np.ones(n, bool), "tmall": rng.random(n) < 0.4, "wechat": rng.random(n) < 0.3,
           "jd": rng.random(n) < 0.1}
    masked = rng.random(n) < 0.3
    placeholder = rng.random(n) < 0.001
    signed_up = {s: joined + (0 if s == "members" else rng.integers(1, 300, n) * 86400) for s in SOURCES}

    # orders: each person's own cycle and favourite category, in a channel they hold (else the store)
    per_person = rng.poisson(4.0, n)
    total = int(per_person.sum())
    owner = np.repeat(np.arange(n), per_person)
    day = rng.choice(365, size=total, p=season)
    second = rng.integers(9 * 3600, 22 * 3600, total)  # local shop hours; t0 is a local midnight
    ts = t0 + day.astype(np.int64) * 86400 + second
    ts = np.where(ts >= int(end.timestamp()), ts - 86400, ts)  # the last day's evening has not happened yet
    pick = rng.choice(4, size=total, p=[0.55, 0.2, 0.15, 0.1])
    held = np.stack([has[s][owner] for s in SOURCES])[pick, np.arange(total)]
    channel = np.where(held, np.array([CHANNEL_OF[s] for s in SOURCES], dtype=object)[pick], "pos").astype(object)
    favourite = rng.integers(0, len(CATEGORIES), n)
    n_lines = 1 + rng.poisson(1.5, total)
    line_order = np.repeat(np.arange(total), n_lines)
    n_total_lines = len(line_order)
    fav_line = rng.random(n_total_lines) < 0.6
    category = np.where(fav_line, favourite[owner[line_order]], rng.integers(0, len(CATEGORIES), n_total_lines))
    sku = category * SKUS_PER_CATEGORY + rng.integers(0, SKUS_PER_CATEGORY, n_total_lines)
    qty = 1 + (rng.random(n_total_lines) < 0.15).astype(np.int64)
    price = sku_price[sku]
    paid = np.bincount(line_order, weights=price * qty, minlength=total).round(2)

    # visits of consenting members, recognised at their home store in the last 90 days
    visitors = np.flatnonzero(consent)
    who = np.repeat(visitors, rng.poisson(2.0, len(visitors)))
    when = int(end.timestamp()) - rng.integers(0, 90 * 86400, len(who))
    return Chunk(first, idx, phones, home, gender, consent, has, signed_up, masked, placeholder, owner, channel, ts,
                 paid, line_order, sku, category, qty, price, who, when)


def first_midnight(end: datetime) -> int:
    """The year's first local midnight (Unix seconds): the 365 local days up to ``end``'s."""
    day = end.astimezone(zone(TZ)).date() - timedelta(days=364)
    return int(datetime.combine(day, datetime.min.time(), tzinfo=zone(TZ)).timestamp())


def iso_us(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def write_recognised_visits(tx, chunk: Chunk, brand: str, shops: list[str], person_of: dict[int, str]) -> int:
    """The door camera's recognitions of consenting members (device events, as the ingest stores them)."""
    arrival_rows, visit_rows = [], []
    for k, (person, t) in enumerate(zip(chunk.visitor.tolist(), chunk.visit_ts.tolist())):
        event, stamp, shop = f"gen{chunk.first}x{k}", iso_us(t), shops[chunk.home[person]]
        arrival_rows.append((event, brand, shop, "edge-01", "door-1", stamp, stamp))
        visit_rows.append((f"v{event}", brand, shop, person_of[person], 0.8, stamp, event, "edge-01", "door-1",
                           f"c{event}"))
    tx.copy("arrivals", ("event_id", "brand", "store", "device", "camera", "ts", "received"), arrival_rows)
    tx.copy("visits", ("id", "brand", "store", "member_id", "confidence", "ts", "arrival_event_id", "device", "camera",
                       "card_id"), visit_rows)
    return len(visit_rows)


def generate(db: Database, *, persons: int, stores: int = 50, seed: int = 7, end: datetime | None = None,
             progress: bool = False, floor_days: int = 0, brand: str = BRAND,
             store_ids: Sequence[str] = (), arrivals_per_day: float = 60.0, out: Path | None = None
             ) -> dict[str, object]:
    """The brand as files in ``out`` (a temporary folder if None), imported through the importers;
    with ``floor_days``, also that many days of shop floor up to ``end`` (``cloud.synthetic.floor``):
    store attributes and staff in the stores and staff files, arrivals, feedback and footfall as the
    ingest stores them, till orders through the order stream, stock and targets as files.
    ``store_ids`` name the first stores (the others are ``st-NNNN``), so a demo's own store can be
    one of them; ``arrivals_per_day`` is an average store's door count on a weekday."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="instore-brand-") as tmp:
            made = generate(db, persons=persons, stores=stores, seed=seed, end=end, progress=progress,
                            floor_days=floor_days, brand=brand, store_ids=store_ids,
                            arrivals_per_day=arrivals_per_day, out=Path(tmp))
        made.pop("files")  # gone with the temporary folder
        return made
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    t0 = first_midnight(end)
    shops = name_stores(stores, store_ids)
    sku_price = draw_prices(rng)
    season = _season(365)
    profiles = draw_store_profiles(seed, [(s, CITIES[i % len(CITIES)]) for i, s in enumerate(shops)],
                                   arrivals_per_day) if floor_days else {}
    files = exports.BrandFiles(out, brand=brand, cities=CITIES, categories=CATEGORIES)
    files.stores(shops, profiles)
    files.staff(profiles)
    end_day = end.astimezone(zone(TZ)).date()
    files.shifts(profiles, [end_day - timedelta(days=k) for k in range(floor_days)][::-1])
    chunks: list[Chunk] = []
    sold = np.zeros(len(sku_price), np.int64)
    for first in range(0, persons, CHUNK):
        chunk = draw_chunk(rng, first, min(CHUNK, persons - first), len(shops), sku_price, season, t0, end)
        files.add(chunk, shops)
        np.add.at(sold, chunk.sku, chunk.qty)
        chunks.append(chunk)
    files.products(sku_price, np.arange(len(sku_price)) // SKUS_PER_CATEGORY, sold)
    files.close()

    counts: dict[str, object] = {"persons": persons, "stores": stores, "files": str(out)}
    counts["imported"] = landing.import_files(db, files.imports, progress=progress)
    counts["visits"] = _consent_and_visits(db, chunks, brand, shops)
    counts.update(db.query("SELECT (SELECT COUNT(*) FROM members) AS records, "
                           "(SELECT COUNT(*) FROM identifiers) AS identifiers, "
                           "(SELECT COUNT(*) FROM orders) AS orders, (SELECT COUNT(*) FROM order_lines) AS lines, "
                           "(SELECT COUNT(*) FROM members WHERE merged_into IS NULL) AS persons_resolved")[0])
    if floor_days:
        floor = generate_floor(db, landing.EntryPoints(db, out), days=floor_days, profiles=profiles, seed=seed,
                               end_day=end_day, until=end)
        counts.update({k: v for k, v in floor.items() if k != "seconds"})
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _consent_and_visits(db: Database, chunks: list[Chunk], brand: str, shops: list[str]) -> int:
    """Face consent through the function behind the consent API, then the door's recognitions of
    the consenting members, by person (as the ingest records a recognised face)."""
    person_of_card = dict(db.rows("SELECT m.source_key, COALESCE(m.merged_into, m.id) FROM members m "
                                  "WHERE m.source = 'members'"))
    visits = 0
    for chunk in chunks:
        person_of: dict[int, str] = {}
        for j in np.flatnonzero(chunk.consent).tolist():
            person = person_of_card.get(f"member_card:{card(int(chunk.idx[j]))}")
            if person is None:
                continue
            cdp_members.set_face_consent(db, person, True, store=shops[chunk.home[j]], actor="generate")
            person_of[j] = person
        seen = np.array([int(p) in person_of for p in chunk.visitor.tolist()], bool)
        kept = replace(chunk, visitor=chunk.visitor[seen], visit_ts=chunk.visit_ts[seen])
        with db.transaction() as tx:
            visits += write_recognised_visits(tx, kept, brand, shops, person_of)
    return visits
