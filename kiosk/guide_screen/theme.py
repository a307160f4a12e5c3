"""Look of the guide screen: fonts, colours and the one stylesheet.

The screen is read at a glance from a couple of metres away, often in a bright shop, so everything
here is large and high-contrast: light text on a near-black background, one warm accent colour.
Widgets only set object names and dynamic properties; all styling lives in this module.
"""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QWidget

#: Tried in order: the first installed CJK-capable family renders all Chinese text. Without one,
#: Chinese characters become empty boxes, so ``pick_family`` warns when none is found.
CJK_FAMILIES = (
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Microsoft YaHei",
    "PingFang SC",
    "Droid Sans Fallback",
)

BACKGROUND = "#0B0F17"
SURFACE = "#161D2B"
SURFACE_RAISED = "#1F2940"
TEXT = "#F5F7FA"
MUTED = "#A9B4C7"
ACCENT = "#FFB020"
GOOD = "#2ECC71"
BAD = "#E5484D"


def pick_family() -> str | None:
    """The first CJK family this machine has, or None when Chinese would render as boxes."""
    installed = set(QFontDatabase.families())
    return next((family for family in CJK_FAMILIES if family in installed), None)


def base_font() -> QFont:
    """The application font: a CJK family first, the platform's sans-serif as a last resort."""
    font = QFont()
    font.setFamilies([*CJK_FAMILIES, "sans-serif"])
    font.setPixelSize(22)
    font.setStyleStrategy(QFont.StyleStrategy.PreferAntialias)
    return font


def restyle(widget: QWidget) -> None:
    """Re-apply the stylesheet after a dynamic property changed (Qt does not do it by itself)."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def stylesheet() -> str:
    """The whole screen's style, keyed by object names set in ``screen`` and ``card_view``.

    Only the window paints the page background; every container inside stays transparent so
    that chips and panels sit on their card's colour rather than on black strips.
    """
    families = ", ".join(f'"{family}"' for family in CJK_FAMILIES)
    return f"""
    QWidget {{ color: {TEXT}; font-family: {families}, sans-serif; }}
    #guideScreen {{ background: {BACKGROUND}; }}

    #header {{ background: {SURFACE}; border-bottom: 3px solid {ACCENT}; }}
    #storeName {{ font-size: 34px; font-weight: bold; }}
    #screenRole {{ font-size: 19px; color: {MUTED}; }}
    #clock {{ font-size: 42px; font-weight: bold; }}
    #date {{ font-size: 19px; color: {MUTED}; }}
    #visitorCount {{ font-size: 40px; font-weight: bold; color: {ACCENT}; }}
    #visitorLabel {{ font-size: 19px; color: {MUTED}; }}
    #connection {{ font-size: 22px; font-weight: bold; padding: 8px 18px; border-radius: 21px; }}
    #connection[online="true"] {{ background: #143D27; color: {GOOD}; }}
    #connection[online="false"] {{ background: #4A1518; color: #FF8A8E; }}

    #offlineBanner {{
        background: {BAD}; color: white; font-size: 26px; font-weight: bold; padding: 8px;
    }}

    #emptyHint {{ font-size: 36px; color: {MUTED}; }}

    #card {{ background: {SURFACE}; border: 2px solid {SURFACE_RAISED}; border-radius: 18px; }}
    #card[newest="true"] {{ border: 3px solid {ACCENT}; }}
    #memberTitle {{ font-size: 40px; font-weight: bold; }}
    #memberName {{ font-size: 20px; color: {MUTED}; }}
    #memberHistory {{ font-size: 18px; color: {TEXT}; }}
    #liveCrop {{ border: 2px solid {ACCENT}; border-radius: 6px; background: {BACKGROUND}; }}
    #liveCropCaption {{ font-size: 15px; font-weight: bold; color: #1A1200; background: {ACCENT}; }}
    #tier {{
        font-size: 20px; font-weight: bold; color: #1A1200; background: {ACCENT};
        border-radius: 6px; padding: 2px 10px;
    }}
    #standing {{
        font-size: 18px; font-weight: bold; color: {ACCENT}; border: 1px solid {ACCENT};
        border-radius: 6px; padding: 2px 8px;
    }}
    #confidence {{ font-size: 22px; font-weight: bold; color: {GOOD}; }}
    #evidence {{ font-size: 18px; font-weight: bold; color: {GOOD}; }}
    #arrivedAt {{ font-size: 18px; color: {MUTED}; }}
    #tag {{
        font-size: 18px; color: {TEXT}; background: {SURFACE_RAISED};
        border: 1px solid #3A4A6B; border-radius: 15px; padding: 3px 12px;
    }}
    #reco {{ border: 0px; border-left: 4px solid {ACCENT}; }}
    #recoName, #recoPrice {{ font-size: 22px; font-weight: bold; }}
    #recoPrice {{ color: {ACCENT}; }}
    #recoReason {{ font-size: 18px; color: {MUTED}; }}
    #script {{
        font-size: 20px; color: {TEXT}; background: #26324D; border-radius: 8px; padding: 6px 12px;
    }}
    #cardButton {{
        font-size: 22px; font-weight: bold; min-height: 52px; border-radius: 12px;
        background: {SURFACE_RAISED}; color: {TEXT}; border: 2px solid #3A4A6B;
    }}
    #cardButton:pressed {{ background: #33415F; }}
    #cardButton[role="primary"] {{ background: {ACCENT}; color: #1A1200; border: none; }}
    #cardButton[role="primary"]:disabled {{ background: #143D27; color: {GOOD}; }}
    #cardButton[role="sale"] {{ background: #12324A; color: #7CC4FF; border: 2px solid #2A5E85; }}
    #cardButton[role="sale"]:disabled {{ background: {GOOD}; color: #062412; border: none; }}
    #card[claimed="true"] {{ border: 3px solid #7CC4FF; }}
    #card[greeted="true"] {{ border: 3px solid {GOOD}; }}
    #card[sold="true"] {{ border: 3px solid {GOOD}; background: #13261E; }}
    #card[visitor="true"] {{ border: 2px dashed #3A4A6B; background: #1A2236; }}
    #dismissButton {{
        font-size: 24px; font-weight: bold; min-width: 52px; max-width: 52px; min-height: 52px; max-height: 52px;
        border-radius: 26px; background: {SURFACE_RAISED}; color: {MUTED}; border: 2px solid #3A4A6B;
    }}
    #dismissButton:pressed {{ background: #33415F; }}
    #claimedBy {{
        font-size: 20px; font-weight: bold; color: #0B1A2A; background: #7CC4FF;
        border-radius: 6px; padding: 2px 10px;
    }}

    #overlay {{ background: rgba(5, 8, 14, 210); }}
    #overlayPanel {{ background: {SURFACE}; border: 3px solid {ACCENT}; border-radius: 24px; min-width: 620px; }}
    #overlayTitle {{ font-size: 36px; font-weight: bold; }}
    #amountDisplay, #receiptDisplay {{
        font-size: 64px; font-weight: bold; color: {ACCENT}; background: {BACKGROUND}; text-align: right;
        border-radius: 12px; padding: 8px 24px; min-height: 96px; border: 3px solid {BACKGROUND};
    }}
    #receiptDisplay {{ font-size: 34px; min-height: 64px; color: {TEXT}; }}
    #amountDisplay[active="false"], #receiptDisplay[active="false"] {{ color: {MUTED}; }}
    #amountDisplay[active="true"], #receiptDisplay[active="true"] {{ border: 3px solid {ACCENT}; }}
    #keyButton:disabled {{ color: #3A4A6B; }}
    #pickButton, #keyButton, #overlayButton {{
        font-size: 34px; font-weight: bold; min-height: 96px; min-width: 180px; border-radius: 16px;
        background: {SURFACE_RAISED}; color: {TEXT}; border: 2px solid #3A4A6B;
    }}
    #keyButton {{ font-size: 44px; }}
    #joinCode {{ background: white; border-radius: 12px; padding: 12px; }}
    #joinHint {{ font-size: 22px; color: {MUTED}; max-width: 620px; }}
    #pickButton:pressed, #keyButton:pressed, #overlayButton:pressed {{ background: #33415F; }}
    #overlayButton[role="primary"] {{ background: {ACCENT}; color: #1A1200; border: none; }}
    #overlayButton[role="primary"]:disabled {{ background: #3A3320; color: #7A6A40; }}
    """
