// 人群效果追踪: a cohort (a segment on a day, a livestream's orders, an influencer's coupon, a
// campaign's audience) against its matched control over 30/60/90/180 days: buyer (repurchase)
// rate, orders and LTV per head, and the channel mix of those orders.

import { get } from "./api.js";
import { t } from "./i18n.js";
import { el, fill, kpi, loadSections, money, num, param, pct, picker, startPage, table } from "./ui.js";

const mix = (m) => Object.entries(m || {}).map(([c, share]) => `${c} ${pct(share, 0)}`).join(" · ") || "–";

async function load() {
  const listed = await get("/v1/cohorts");
  const chosen = param("cohort") || listed[0]?.id;
  const options = listed.map((c) => [c.id, c.name]);
  if (chosen && !listed.some((c) => c.id === chosen)) options.unshift([chosen, chosen]);  // a link to one not listed
  picker("pick", "cohort", options, chosen);
  if (!chosen) {
    fill("summary", el("div", { class: "empty", i18n: "cohort.none" }));
    return;
  }
  const c = await get(`/v1/cohorts/${encodeURIComponent(chosen)}`);
  const [mine, other] = c.horizons.length && "treatment" in c.horizons[0] ? ["treatment", "control"] : ["cohort", "control"];
  const first = c.horizons[0] || {};
  fill("summary",
    kpi("cohort.persons", num(first[mine]?.persons)),
    kpi("cohort.control_persons", num(first[other]?.persons)),
    kpi("cohort.measures", c.measures ? t(`cohort.measures.${c.measures}`) : "–"));
  fill("horizons", table([
    { label: "cohort.days", cls: "num", value: (h) => `${h.days}${h.complete ? "" : " *"}` },
    { label: "cohort.rate", cls: "num", value: (h) => pct(h[mine].buyer_rate) },
    { label: "cohort.rate_control", cls: "num", value: (h) => pct(h[other].buyer_rate) },
    { label: "cohort.ltv", cls: "num", value: (h) => money(h[mine].ltv_per_head) },
    { label: "cohort.ltv_control", cls: "num", value: (h) => money(h[other].ltv_per_head) },
    { label: "cohort.orders", cls: "num", value: (h) => num(h[mine].orders_per_head, 2) },
    { label: "cohort.mix", value: (h) => mix(h[mine].channel_mix) },
    { label: "cohort.mix_control", value: (h) => mix(h[other].channel_mix) },
  ], c.horizons, { rowAttrs: (h) => ({ "data-days": String(h.days) }) }));
  document.title = `${t("cohort.title")} · ${c.name || c.campaign || chosen}`;
}

if (startPage()) loadSections([["summary", load]]);
