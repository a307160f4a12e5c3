"""The drawn brand's shapes and names, shared by its writers: a chunk of persons as drawn
(``cloud.synthetic.brand.draw_chunk``) and the ids a brand's systems give them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def card(i: int) -> str:
    """Person ``i``'s CRM member card number."""
    return f"MC{i:010d}"


def account(source: str, i: int) -> str:
    """Person ``i``'s account id in a channel: Tmall nick, WeChat unionid, JD pin."""
    return {"tmall": f"tb{i:x}", "wechat": f"u{i:x}", "jd": f"jd{i:x}"}[source]


def sku_name(sku: int) -> str:
    return f"SKU{sku:05d}"


@dataclass
class Chunk:
    """Persons ``first`` .. ``first + n - 1`` as drawn: who they are, the channel accounts they hold,
    a year of their orders (one row per order, one per line) and their recognised visits."""

    first: int
    idx: np.ndarray
    phones: np.ndarray
    home: np.ndarray
    gender: np.ndarray
    consent: np.ndarray
    has: dict[str, np.ndarray]  # per source: whether the person holds an account there
    signed_up: dict[str, np.ndarray]  # per source: when the account was opened (Unix seconds)
    masked: np.ndarray  # Tmall shows this person's phone masked
    placeholder: np.ndarray  # ... or as the placeholder 00000000000
    owner: np.ndarray  # per order: the person (index into the chunk)
    channel: np.ndarray  # per order: pos, tmall, wechat, jd
    ts: np.ndarray
    paid: np.ndarray
    line_order: np.ndarray  # per line: its order
    sku: np.ndarray
    category: np.ndarray
    qty: np.ndarray
    price: np.ndarray
    visitor: np.ndarray  # per recognised visit: the person
    visit_ts: np.ndarray

    def tmall_phone(self, j: int) -> str:
        """The phone as the Tmall export shows it (masked for some, the placeholder for a few)."""
        phone = str(self.phones[j])
        if self.placeholder[j]:
            return "00000000000"
        return phone[:3] + "****" + phone[-4:] if self.masked[j] else phone

    def order_no(self, k: int) -> str:
        return f"g{self.first}-{k}"
