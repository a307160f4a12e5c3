"""The one i18n dictionary covers every label the pages use, in both languages, and every metric
the health model serves (a missing label would show a raw key to a store manager)."""

from __future__ import annotations

import re

from cloud.dashboards import STATIC
from cloud.health.metrics import METRICS

_ENTRY = re.compile(r'^\s+"([a-z_.]+)": "', re.M)


def dictionary() -> dict[str, set[str]]:
    source = (STATIC / "js" / "i18n.js").read_text(encoding="utf-8")
    zh, en = source.split("\n  en: {", 1)
    return {"zh": set(_ENTRY.findall(zh)), "en": set(_ENTRY.findall(en))}


def used_keys() -> set[str]:
    """Keys in data-i18n attributes of the pages and in t("...")/i18n: "..." calls of the scripts."""
    keys: set[str] = set()
    for page in STATIC.glob("*.html"):
        keys |= set(re.findall(r'data-i18n(?:-placeholder)?="([a-z_.]+)"', page.read_text(encoding="utf-8")))
    for script in (STATIC / "js").glob("*.js"):
        text = script.read_text(encoding="utf-8")
        keys |= set(re.findall(r'\bt\("([a-z_.]+)"\)', text))
        keys |= set(re.findall(r'\b(?:i18n|label): "([a-z_.]+)"', text))
        keys |= set(re.findall(r'kpi\("([a-z_.]+)"', text))
    return keys


def test_both_languages_have_the_same_labels() -> None:
    labels = dictionary()
    assert labels["zh"] == labels["en"]
    assert len(labels["zh"]) > 100


def test_every_label_the_pages_use_is_in_the_dictionary() -> None:
    used = used_keys()
    assert {"store.title", "hq.ranking", "live.sales", "col.overall"} <= used  # the scan finds them
    assert used - dictionary()["zh"] == set()


def test_every_metric_of_the_health_model_has_a_name_for_people() -> None:
    named = {k.removeprefix("metric.") for k in dictionary()["en"] if k.startswith("metric.")}
    missing = {m.name for m in METRICS} - named
    assert missing == set()
