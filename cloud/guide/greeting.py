"""How the guide addresses a member: the polite title on the card and in the sales scripts."""

from __future__ import annotations

import re

_HONORIFIC = {"female": "女士", "male": "先生"}
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 独孤 南宫 西门 轩辕 百里".split()
)
_HAN_NAME = re.compile(r"^[\u4e00-\u9fff]{2,5}$")


def title_for(name: str | None, gender: str | None) -> str:
    """王芳 + female -> 王女士; without a known gender or a Chinese name, the name itself; without a
    name, the honorific alone (女士) or nothing: templates write ``{title}您好``, so an empty title
    reads 您好, never 您您好."""
    name = (name or "").strip()
    honorific = _HONORIFIC.get(gender or "")
    if not name:
        return honorific or ""
    if honorific is None or not _HAN_NAME.match(name):
        return name
    surname = name[:2] if name[:2] in _COMPOUND_SURNAMES else name[0]
    return surname + honorific
