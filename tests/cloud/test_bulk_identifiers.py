"""The bulk loader's identifiers are what the product would make of them (issue 15's 1M brand).

At 1M persons the drawn phones ran past 19999999999 (a fifth of a million identifiers began with 2)
and the loader flagged only masked and placeholder phones by hand, so those invalid numbers linked
79k records that any import would have blocked, and the benchmark's OneID figures counted them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np

from cloud.cdp import oneid
from cloud.db import Database
from cloud.synthetic.brand import _season, draw_chunk, draw_prices, first_midnight
from cloud.synthetic.bulk import load_for_benchmark

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def test_the_loader_flags_identifiers_as_the_brands_blocklist_does(db: Database) -> None:
    load_for_benchmark(db, persons=400, stores=2, seed=5, end=datetime(2026, 12, 1, tzinfo=UTC), resolve=False)
    flagged = dict(db.rows("SELECT blocked, COUNT(*) FROM identifiers WHERE blocked IS NOT NULL GROUP BY blocked"))
    assert flagged.get("masked", 0) > 0  # the drawing has Tmall's masked phones
    with db.transaction() as tx:
        assert oneid.reclassify(tx) == 0  # the blocklist applied again changes no flag


def test_a_million_persons_have_distinct_mainland_mobiles() -> None:
    end = datetime(2026, 12, 1, tzinfo=UTC)
    rng = np.random.default_rng(7)
    # around the person from whom the old span gave numbers beginning with 2, and the last of a million
    phones = np.concatenate([draw_chunk(rng, first, 2_000, 10, draw_prices(rng), _season(365), first_midnight(end),
                                        end).phones for first in (882_000, 998_000)])
    assert all(MAINLAND_MOBILE.match(str(p)) for p in phones)
    assert len(set(phones.tolist())) == len(phones)
