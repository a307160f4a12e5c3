// HQ's page: every store ranked by health with its deltas, the same by region, the open anomalies
// (acknowledged here), and each store's name linking down to its own page.

import { get, query } from "./api.js";
import { loadAlerts } from "./alerts.js";
import { draw, PALETTE } from "./charts.js";
import { t } from "./i18n.js";
import { delta, el, fill, kpi, loadSections, money, num, param, startPage, table } from "./ui.js";

// the ranked day travels with the link (HQ never lands on an empty today)
let rankedDay = param("day");
const storeLink = (s) => el("a", { href: `store.html${query({ store: s.store, day: rankedDay })}`, text: s.name || s.store });

function summary(health) {
  const stores = health.stores;
  const scored = stores.filter((s) => s.overall !== null);
  const mean = scored.length ? scored.reduce((sum, s) => sum + s.overall, 0) / scored.length : null;
  fill("summary",
    kpi("hq.stores", num(stores.length)),
    kpi("hq.avg_overall", num(mean, 1)),
    kpi("hq.open_alerts", num(stores.reduce((sum, s) => sum + (s.open_alerts || 0), 0))),
    kpi("hq.total_sales", money(stores.reduce((sum, s) => sum + (s.sales || 0), 0))));
}

function ranking(stores) {
  const render = (rows) => fill("ranking", table([
    { label: "col.rank", cls: "num", value: (s) => String(s.rank ?? "–") },
    { label: "col.store", value: storeLink },
    { label: "col.city", value: (s) => s.city },
    { label: "col.region", value: (s) => s.region },
    { label: "col.overall", cls: "num", value: (s) => num(s.overall, 1) },
    { label: "col.experience", cls: "num", value: (s) => num(s.experience, 1) },
    { label: "col.customer", cls: "num", value: (s) => num(s.customer, 1) },
    { label: "col.team", cls: "num", value: (s) => num(s.team, 1) },
    { label: "col.product", cls: "num", value: (s) => num(s.product, 1) },
    { label: "col.operations", cls: "num", value: (s) => num(s.operations, 1) },
    { label: "col.vs_own", cls: "num", value: (s) => delta(s.overall_vs_own) },
    { label: "col.vs_peers", cls: "num", value: (s) => delta(s.overall_vs_peers) },
    { label: "col.open_alerts", cls: "num", value: (s) => num(s.open_alerts) },
    { label: "col.sales", cls: "num", value: (s) => money(s.sales) },
    { label: "col.footfall", cls: "num", value: (s) => num(s.footfall) },
  ], rows, { rowAttrs: (s) => ({ "data-store": s.store }) }));
  render(stores);
  document.getElementById("filter").addEventListener("input", (event) => {
    const needle = event.target.value.trim().toLowerCase();
    render(stores.filter((s) => [s.store, s.name, s.city, s.region].some((v) => String(v ?? "").toLowerCase().includes(needle))));
  });
}

/** Per region: stores, mean overall score, total sales and footfall, open alerts. */
export function byRegion(stores) {
  const groups = new Map();
  for (const s of stores) {
    const key = s.region || "–";
    const g = groups.get(key) || { region: key, stores: 0, scored: 0, overall: 0, sales: 0, footfall: 0, open_alerts: 0 };
    g.stores += 1;
    if (s.overall !== null) {
      g.scored += 1;
      g.overall += s.overall;
    }
    g.sales += s.sales || 0;
    g.footfall += s.footfall || 0;
    g.open_alerts += s.open_alerts || 0;
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({ ...g, overall: g.scored ? g.overall / g.scored : null }))
    .sort((a, b) => (b.overall ?? -1) - (a.overall ?? -1));
}

function regions(stores) {
  const rows = byRegion(stores);
  fill("regions", table([
    { label: "col.region", value: (r) => r.region },
    { label: "col.stores", cls: "num", value: (r) => num(r.stores) },
    { label: "col.overall", cls: "num", value: (r) => num(r.overall, 1) },
    { label: "col.sales", cls: "num", value: (r) => money(r.sales) },
    { label: "col.footfall", cls: "num", value: (r) => num(r.footfall) },
    { label: "col.open_alerts", cls: "num", value: (r) => num(r.open_alerts) },
  ], rows, { rowAttrs: (r) => ({ "data-region": r.region }) }));
  return draw("region-chart", {
    tooltip: {}, grid: { left: 80, right: 24, top: 8, bottom: 24 },
    xAxis: { type: "value", min: 0, max: 100 },
    yAxis: { type: "category", inverse: true, data: rows.map((r) => r.region) },
    series: [{ type: "bar", color: PALETTE[0], label: { show: true, position: "right", formatter: (p) => num(p.value, 1) },
      data: rows.map((r) => (r.overall === null ? null : Number(r.overall.toFixed(1)))) }],
  });
}

async function loadHealth(ranked) {
  const health = await ranked;
  rankedDay = health.day;
  fill("hq-day", health.day);
  summary(health);
  ranking(health.stores);
  await regions(health.stores);
}

if (startPage()) {
  // one ranking call: the ranking table, and the store names of the anomalies list
  const ranked = get(`/v1/health/stores${query({ day: param("day") })}`);
  loadSections([
    ["ranking", () => loadHealth(ranked)],
    ["anomalies", () => loadAlerts("anomalies", {
      limit: 200, storeNames: ranked.then((h) => new Map(h.stores.map((s) => [s.store, s.name])), () => new Map()),
    })],
  ]);
}
