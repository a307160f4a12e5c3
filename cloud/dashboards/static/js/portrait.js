// 人群画像: a saved segment against the whole base, facet by facet (city tier, age band, gender,
// favourite channel, tier, lifecycle): the segment's share beside the base's, and the index
// (segment share / base share x 100; above 100 the segment leans that way).

import { get, query } from "./api.js";
import { lang, t } from "./i18n.js";
import { el, fill, kpi, loadSections, num, param, pct, picker, startPage } from "./ui.js";

const FACETS = ["city_tier", "age_band", "gender", "channel", "tier", "lifecycle"];

function valueLabel(facet, value) {
  if (value === "unknown") return t("portrait.unknown");
  const key = `portrait.${facet}.${value}`;
  const label = t(key);
  if (label !== key) return label;
  if (facet === "city_tier") {
    const n = value.replace(/^tier/i, "");
    return lang() === "zh" ? `${n}线城市` : `Tier ${n}`;
  }
  return value;
}

function bars(facet, values) {
  const rows = values.map((v) => el("div", { class: "facet-row", "data-value": v.value },
    el("div", { class: "facet-label", text: valueLabel(facet, v.value) }),
    el("div", { class: "facet-bars" },
      el("div", { class: "bar seg", style: `width:${Math.round(v.segment_share * 100)}%`, title: `${v.segment}` }),
      el("div", { class: "bar base", style: `width:${Math.round(v.base_share * 100)}%`, title: `${v.base}` })),
    el("div", { class: "facet-num", "data-share": "segment", text: pct(v.segment_share) }),
    el("div", { class: "facet-num muted", "data-share": "base", text: pct(v.base_share) }),
    el("div", { class: "facet-num" + (v.index !== null && v.index >= 120 ? " hi" : v.index !== null && v.index <= 80 ? " lo" : ""),
      "data-index": "", text: v.index === null ? "–" : num(v.index, 0) })));
  const head = el("div", { class: "facet-row head" }, el("div", {}), el("div", { class: "legend" },
    el("span", { class: "dot seg" }), el("span", { i18n: "portrait.segment" }),
    el("span", { class: "dot base" }), el("span", { i18n: "portrait.base" })),
    el("div", { class: "facet-num", i18n: "portrait.segment" }), el("div", { class: "facet-num", i18n: "portrait.base" }),
    el("div", { class: "facet-num", i18n: "portrait.index" }));
  return [head, ...rows];
}

async function load() {
  const saved = (await get(`/v1/segments${query({ limit: 200 })}`)).items;
  const chosen = param("segment") || saved[0]?.id;
  picker("segment-pick", "segment", saved.map((s) => [s.id, s.name]), chosen);
  if (!chosen) {
    fill("summary", el("div", { class: "empty", i18n: "portrait.none" }));
    return;
  }
  const [portrait, catalogue] = await Promise.all([get(`/v1/segments/${encodeURIComponent(chosen)}/portrait`),
    get("/v1/segments/dimensions")]);
  const segment = saved.find((s) => s.id === chosen);
  fill("summary",
    kpi("portrait.segment_size", num(portrait.segment)),
    kpi("portrait.base_size", num(portrait.base)),
    kpi("portrait.coverage", pct(portrait.base ? portrait.segment / portrait.base : null)),
    kpi("portrait.dimensions", num(catalogue.count)));
  document.getElementById("condition").textContent = segment ? JSON.stringify(segment.condition) : "";
  for (const facet of FACETS) {
    document.querySelector(`[data-facet="${facet}"] .facet`).replaceChildren(...bars(facet, portrait.facets[facet] || []));
  }
}

if (startPage()) loadSections([["summary", load]]);
