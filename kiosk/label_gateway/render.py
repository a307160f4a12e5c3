"""Draws a label's product into the exact bitmap of its tag type.

E-paper has no grey: every pixel is one of the panel's inks. So the image is drawn directly in
palette indices (Pillow renders text without anti-aliasing into palette images) and never
dithered: a 1-bit image for black/white tags, a three-entry palette (white, black, red; saved
as a 2-bit PNG) for black/white/red tags. Chinese product names need a CJK font; without one the
renderer refuses to start instead of drawing empty boxes on every shelf.
"""

from __future__ import annotations

import io
import subprocess
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

from protocol.esl import LabelProduct, TagType

FONT_FAMILY = "WenQuanYi Zen Hei"
#: Where Debian's fonts-wqy-zenhei puts it, for machines without fontconfig's fc-match.
FONT_PATHS = (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),)

WHITE, BLACK, RED = 0, 1, 2
PALETTE_RGB = {WHITE: (255, 255, 255), BLACK: (0, 0, 0), RED: (255, 0, 0)}
#: Smallest text that still reads on a shelf edge, in pixels.
MIN_FONT_PX = 10


class FontMissing(RuntimeError):
    """No CJK font: Chinese names would render as boxes."""


class RenderError(ValueError):
    """The product does not fit the tag (e.g. a QR payload too long for the space)."""


@lru_cache(maxsize=1)
def font_file() -> Path:
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", FONT_FAMILY], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        found = ""
    candidates = ([Path(found)] if found and "zenhei" in found.lower() else []) + list(FONT_PATHS)
    for path in candidates:
        if path.is_file():
            return path
    raise FontMissing(
        f"font {FONT_FAMILY!r} not found (fc-match and {', '.join(map(str, FONT_PATHS))}); "
        "install it with: apt-get install fonts-wqy-zenhei"
    )


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_file()), size, index=0)


def fitted_font(text: str, max_width: int, max_size: int) -> ImageFont.FreeTypeFont:
    """The largest font (down to MIN_FONT_PX) in which ``text`` is at most ``max_width`` wide."""
    size = max_size
    while size > MIN_FONT_PX and font(size).getlength(text) > max_width:
        size -= 1
    return font(size)


MEMBER_CAPTION = "会员价"


def price_text(price: float) -> str:
    """Whole yuan without decimals (bigger digits), otherwise to the fen."""
    return f"¥{price:.0f}" if price == int(price) else f"¥{price:.2f}"


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Inks:
    """Which palette index plays which role on this tag: red where there is red, else black."""

    text: int
    accent: int
    accent_text: int


def new_canvas(tag: TagType) -> Image.Image:
    """A white palette image to draw in; ``finish`` stores black/white tags as 1-bit."""
    image = Image.new("P", (tag.width, tag.height), WHITE)
    image.putpalette([c for index in (WHITE, BLACK, RED) for c in PALETTE_RGB[index]])
    return image


def finish(tag: TagType, image: Image.Image) -> Image.Image:
    """Convert the palette drawing to the tag's storage mode without any dithering."""
    if tag.has_red:
        return image
    return image.point(lambda index: 0 if index == BLACK else 255, mode="1")


def shown(text: str) -> str:
    """``text`` as a label can show it: control characters (a newline, a form feed) become spaces.
    Pillow's text layout fails on them outright ("raqm_layout() failed"), which turned a product
    name pasted with a line break into an unexplained gateway error instead of a drawn label."""
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text).strip()


def render(tag: TagType, product: LabelProduct) -> Image.Image:
    """The label bitmap: name and badge on top, big price, member price, QR on the right."""
    inks = Inks(text=BLACK, accent=RED if tag.has_red else BLACK, accent_text=WHITE)
    image = new_canvas(tag)
    draw = ImageDraw.Draw(image)
    w, h = tag.width, tag.height
    pad = max(3, h // 32)

    # Top band: promotion badge (filled pill, right) and product name (left, elided to fit).
    top_size = max(MIN_FONT_PX, round(min(h * 0.13, w * 0.1, 30)))
    band_h = top_size + 2 * pad
    badge_w = 0
    if badge := shown(product.badge or ""):
        badge_font = fitted_font(badge, w // 2, top_size)
        badge_w = round(badge_font.getlength(badge)) + 3 * pad
        box = (w - badge_w, 0, w - 1, band_h)
        draw.rounded_rectangle(box, radius=pad * 2, fill=inks.accent)
        draw.text(((box[0] + box[2]) / 2, band_h / 2), badge, font=badge_font, fill=inks.accent_text, anchor="mm")
    name_width = w - badge_w - 3 * pad
    draw.text((pad, band_h / 2), elide(shown(product.name), name_width, font(top_size)), font=font(top_size),
              fill=inks.text, anchor="lm")
    draw.line((0, band_h + 1, w, band_h + 1), fill=inks.text, width=max(1, h // 100))

    body = (pad, band_h + pad + 2, w - pad, h - pad)
    if w >= 1.6 * h:
        _wide_body(draw, image, product, inks, body, pad)
    else:
        _tall_body(draw, image, product, inks, body, pad)
    return finish(tag, image)


def _wide_body(draw: ImageDraw.ImageDraw, image: Image.Image, product: LabelProduct, inks: Inks, body: Box, pad: int) -> None:
    """Shelf-edge strips (2.9"): QR square on the right, price above member price on the left."""
    left, top, right, bottom = body
    qr_side = qr_box_side(product.qr, min(bottom - top, (right - left) * 0.4)) if product.qr else 0
    if qr_side and product.qr:
        draw_qr(image, product.qr, (right - qr_side, top + (bottom - top - qr_side) // 2), qr_side)
        right -= qr_side + pad
    split = top + round((bottom - top) * 0.62) if product.member_price is not None else bottom
    _price(draw, product.price, inks, (left, top, right, split))
    if product.member_price is not None:
        _member_price(draw, product.member_price, inks, (left, split, right, bottom), pad)


def _tall_body(draw: ImageDraw.ImageDraw, image: Image.Image, product: LabelProduct, inks: Inks, body: Box, pad: int) -> None:
    """Square-ish tags (1.54", 4.2"): price across the width, member price and QR below it."""
    left, top, right, bottom = body
    lower = bottom - top if product.qr or product.member_price is not None else 0
    split = bottom - round(lower * 0.45)
    _price(draw, product.price, inks, (left, top, right, split))
    if product.qr:
        qr_side = qr_box_side(product.qr, bottom - split)
        draw_qr(image, product.qr, (right - qr_side, bottom - qr_side), qr_side)
        right -= qr_side + pad
    if product.member_price is not None:
        _member_price(draw, product.member_price, inks, (left, split, right, bottom), pad)


def _price(draw: ImageDraw.ImageDraw, price: float, inks: Inks, box: Box) -> None:
    left, top, right, bottom = box
    text = price_text(price)
    face = fitted_font(text, right - left, round((bottom - top) * 0.85))
    draw.text((left, (top + bottom) / 2), text, font=face, fill=inks.text, anchor="lm")


def _member_price(draw: ImageDraw.ImageDraw, price: float, inks: Inks, box: Box, pad: int) -> None:
    """A filled "会员价" tab followed by the member price in the accent ink."""
    left, top, right, bottom = box
    size = max(MIN_FONT_PX, round(min(bottom - top, (right - left) / 4.5) * 0.7))
    caption = font(max(MIN_FONT_PX, round(size * 0.75)))
    tab_w = round(caption.getlength(MEMBER_CAPTION)) + pad
    middle = (top + bottom) / 2
    tab = (left, round(middle - size / 2), left + tab_w, round(middle + size / 2))
    draw.rectangle(tab, fill=inks.accent)
    draw.text(((tab[0] + tab[2]) / 2, middle), MEMBER_CAPTION, font=caption, fill=inks.accent_text, anchor="mm")
    text = price_text(price)
    face = fitted_font(text, right - tab[2] - pad, size)
    draw.text((tab[2] + pad // 2 + 1, middle), text, font=face, fill=inks.accent, anchor="lm")


def elide(text: str, width: int, face: ImageFont.FreeTypeFont) -> str:
    if face.getlength(text) <= width:
        return text
    while text and face.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def qr_box_side(payload: str, room: float) -> int:
    """The largest whole-pixel QR (2-module quiet zone) that fits ``room``; RenderError if none."""
    modules = int(segno.make(payload, error="m", micro=False).symbol_size(scale=1, border=2)[0])
    scale = int(room // modules)
    if scale < 1:
        raise RenderError(f"QR payload of {len(payload)} characters needs {modules} px, the tag has {int(room)}")
    return modules * scale


def draw_qr(image: Image.Image, payload: str, origin: tuple[int, int], side: int) -> None:
    qr = segno.make(payload, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=2)[0]
    scale = side // modules
    draw = ImageDraw.Draw(image)
    x0, y0 = origin
    for row, bits in enumerate(qr.matrix_iter(scale=1, border=2)):
        for col, dark in enumerate(bits):
            if dark:
                x, y = x0 + col * scale, y0 + row * scale
                draw.rectangle((x, y, x + scale - 1, y + scale - 1), fill=BLACK)


def to_jpeg(image: Image.Image) -> bytes:
    """What the OpenEPaperLink AP accepts: a baseline JPEG, full chroma so red edges stay sharp."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=100, subsampling=0)
    return buffer.getvalue()
