// 营销活动效果: one campaign's result against its holdout: both groups' conversion and revenue per
// head in the window, the uplift with its 95% confidence interval, per stratum (value tier x
// lifecycle), the orders by channel, what the sends did and the coupons it issued.

import { get } from "./api.js";
import { t } from "./i18n.js";
import { el, fill, kpi, loadSections, money, num, param, pct, picker, startPage, table } from "./ui.js";

/** An uplift in percentage points with its interval: "+3.2 pp [1.1, 5.3]". */
export function uplift(u) {
  if (!u) return "–";
  const pp = (v) => num(v * 100, 1);
  const sign = u.estimate > 0 ? "+" : "";
  return `${sign}${pp(u.estimate)} pp` + (u.ci95 ? ` [${pp(u.ci95[0])}, ${pp(u.ci95[1])}]` : "");
}

async function load() {
  const listed = await get("/v1/campaigns");
  const chosen = param("campaign") || listed.find((c) => c.status !== "draft")?.id;
  picker("pick", "campaign", listed.map((c) => [c.id, `${c.name} · ${c.status}`]), chosen);
  if (!chosen) {
    fill("summary", el("div", { class: "empty", i18n: "campaign.none" }));
    return;
  }
  const r = await get(`/v1/campaigns/${encodeURIComponent(chosen)}/results`);
  const tr = r.groups.treatment;
  const co = r.groups.control;
  fill("summary",
    kpi("campaign.audience", num(r.campaign.audience)),
    kpi("campaign.control", num(r.campaign.control)),
    kpi("campaign.rate_treatment", pct(tr.rate)),
    kpi("campaign.rate_control", pct(co.rate)),
    kpi("campaign.uplift", uplift(r.uplift)),
    kpi("campaign.revenue_uplift", r.revenue_per_head_uplift === null ? "–" : money(r.revenue_per_head_uplift)));
  document.getElementById("window").textContent = `${t("campaign.window")} ${r.window.from.slice(0, 10)} – ${r.window.to.slice(0, 10)}`;
  fill("strata", table([
    { label: "campaign.stratum", value: (s) => s.stratum },
    { label: "campaign.n_treatment", cls: "num", value: (s) => num(s.treatment?.n) },
    { label: "campaign.n_control", cls: "num", value: (s) => num(s.control?.n) },
    { label: "campaign.rate_treatment", cls: "num", value: (s) => pct(s.treatment && s.treatment.n ? s.treatment.converted / s.treatment.n : null) },
    { label: "campaign.rate_control", cls: "num", value: (s) => pct(s.control && s.control.n ? s.control.converted / s.control.n : null) },
    { label: "campaign.uplift", cls: "num", value: (s) => uplift(s.uplift) },
  ], r.strata, { rowAttrs: (s) => ({ "data-stratum": s.stratum }) }));
  fill("channels", table([
    { label: "campaign.group", value: (c) => t(`campaign.group.${c.grp}`) },
    { label: "campaign.channel", value: (c) => c.channel },
    { label: "campaign.orders", cls: "num", value: (c) => num(c.orders) },
    { label: "campaign.paid", cls: "num", value: (c) => money(c.paid) },
  ], r.orders_by_channel));
  const sends = Object.entries(r.campaign.sends).map(([status, n]) => ({ status, n }));
  for (const [reason, n] of Object.entries(r.campaign.skipped)) sends.push({ status: `skipped: ${reason}`, n });
  sends.push({ status: t("campaign.coupons"), n: `${num(r.coupons.issued)} / ${num(r.coupons.redeemed)}` });
  fill("sends", table([
    { label: "campaign.send_status", value: (s) => s.status },
    { label: "campaign.count", cls: "num", value: (s) => (typeof s.n === "number" ? num(s.n) : s.n) },
  ], sends, { rowAttrs: (s) => ({ "data-send": s.status }) }));
}

if (startPage()) loadSections([["summary", load]]);
