"""Label bitmaps: exact size and palette of the tag type, crisp inks, pixel-equal to the golden
images (drawn once by this renderer, inspected by eye, kept in tests/esl/golden)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.label_gateway import render as render_module
from kiosk.label_gateway.render import BLACK, RED, WHITE, FontMissing, RenderError, render, to_jpeg
from protocol.esl import TAG_TYPES, LabelProduct

GOLDEN = Path(__file__).parent / "golden"
#: Set to redraw the golden images after a deliberate layout change (then look at every one).
REGENERATE = os.environ.get("INSTORE_REGENERATE_GOLDEN") == "1"

PRODUCTS = {
    "full": LabelProduct(sku="SK-1001", name="修护精华露 50ml", price=1280, member_price=1088, badge="限时特惠",
                         qr="https://m.example.com/p/SK-1001"),
    "markdown": LabelProduct(sku="F-2001", name="鲜牛奶 950ml", price=19.8, member_price=13.9, badge="临期7折",
                             qr="SK:F-2001"),
    "plain": LabelProduct(sku="F-3010", name="有机草莓 250g 盒装 丹东九九", price=29.9),
}
CASES = [(tag, name) for tag in TAG_TYPES for name in PRODUCTS]


def png_bit_depth(path: Path) -> int:
    with path.open("rb") as f:
        header = f.read(26)
    assert header[12:16] == b"IHDR"
    return struct.unpack(">B", header[24:25])[0]


@pytest.mark.parametrize("tag_id, name", CASES)
def test_label_matches_its_golden_image(tag_id, name, tmp_path):
    tag = TAG_TYPES[tag_id]
    image = render(tag, PRODUCTS[name])
    golden = GOLDEN / f"{tag_id}-{name}.png"
    if REGENERATE:
        image.save(golden)
    assert image.size == (tag.width, tag.height)
    if tag.has_red:
        assert image.mode == "P"
        assert image.getpalette()[:9] == [255, 255, 255, 0, 0, 0, 255, 0, 0]
        assert set(np.unique(np.asarray(image))) <= {WHITE, BLACK, RED}
    else:
        assert image.mode == "1"
    saved = tmp_path / "label.png"
    image.save(saved)
    assert png_bit_depth(saved) == (2 if tag.has_red else 1)

    expected = Image.open(golden)
    assert expected.mode == image.mode and expected.size == image.size
    differ = np.count_nonzero(np.asarray(expected) != np.asarray(image))
    assert differ == 0, f"{differ} pixels differ from {golden.name}"


def test_every_ink_is_used_where_the_tag_has_it():
    wide = np.asarray(render(TAG_TYPES["epd29_bwr"], PRODUCTS["full"]))
    assert {WHITE, BLACK, RED} <= set(np.unique(wide))  # badge and member price in red
    plain = np.asarray(render(TAG_TYPES["epd29_bwr"], PRODUCTS["plain"]))
    assert RED not in set(np.unique(plain))  # no promotion, no red


def test_the_qr_code_is_drawn_and_a_too_long_payload_is_refused():
    from protocol.esl import TagType

    tiny = TagType(id="epd154_bw", diagonal_in=1.0, width=80, height=60, colors=("white", "black"))
    with pytest.raises(RenderError, match="QR payload"):
        render(tiny, PRODUCTS["full"].model_copy(update={"qr": "x" * 300}))


def test_the_jpeg_for_the_ap_decodes_back_to_the_same_inks():
    image = render(TAG_TYPES["epd42_bwr"], PRODUCTS["full"])
    decoded = Image.open(__import__("io").BytesIO(to_jpeg(image))).convert("RGB")
    inks = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]])
    nearest = np.argmin(((np.asarray(decoded)[:, :, None, :].astype(int) - inks) ** 2).sum(-1), axis=-1)
    assert np.array_equal(nearest, np.asarray(image))


def test_a_missing_font_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(render_module, "FONT_PATHS", (tmp_path / "nope.ttc",))
    monkeypatch.setattr(render_module.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(OSError("no fc-match")))
    render_module.font_file.cache_clear()
    try:
        with pytest.raises(FontMissing, match="fonts-wqy-zenhei"):
            render_module.font_file()
    finally:
        render_module.font_file.cache_clear()


@pytest.mark.parametrize("tag_id", TAG_TYPES)
def test_control_characters_in_a_name_or_badge_draw_as_spaces(tag_id):
    """A name pasted with a line break once failed inside Pillow's layout (fuzz finding)."""
    pasted = LabelProduct(sku="F-2001", name="鲜牛奶\n950ml\x0c", price=19.8, badge="临期\x1e7折")
    clean = LabelProduct(sku="F-2001", name="鲜牛奶 950ml", price=19.8, badge="临期 7折")
    tag = TAG_TYPES[tag_id]
    assert np.array_equal(np.asarray(render(tag, pasted)), np.asarray(render(tag, clean)))
