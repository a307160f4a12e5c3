// The brand's sales big-screen (1920x1080, dark): today's sales against the target, channels,
// hours, hot products with their member price, member deals and the stores' progress (the day's
// imported sales and traffic targets); it refreshes itself.

import { get, query } from "./api.js";
import { draw, PALETTE } from "./charts.js";
import { t } from "./i18n.js";
import { clearErrors, clock, fill, kpi, loadSections, money, num, param, pct, showError, startPage, table } from "./ui.js";

const REFRESH_S = Number(param("refresh") || 30);
const TOP_STORES = 10;
const BIG = "big small";  // the wall's KPI figures, read from across the room
const AXIS = { axisLabel: { color: "#93c5fd", fontSize: 16 }, splitLine: { lineStyle: { color: "#1e3a8a" } } };

function headline(live) {
  fill("live-day", live.day);
  fill("sales", money(live.sales));
  fill("target", money(live.target));
  const share = live.target ? live.sales / live.target : null;
  fill("progress", pct(share));
  document.getElementById("progress-bar").style.width = `${Math.min(100, (share || 0) * 100)}%`;
  const online = live.by_channel.filter((c) => c.channel !== "pos").reduce((sum, c) => sum + c.sales, 0);
  const reached = live.stores.filter((s) => s.target && s.sales >= s.target).length;
  fill("live-kpis", kpi("live.orders", num(live.orders), BIG), kpi("live.avg_ticket", money(live.orders ? live.sales / live.orders : null), BIG),
    kpi("live.member_share", pct(live.member_sales_share), BIG),
    kpi("live.arrivals", live.traffic_target ? `${num(live.arrivals)} / ${num(live.traffic_target)}` : num(live.arrivals), BIG),
    kpi("live.online_share", pct(live.sales ? online / live.sales : null), BIG),
    kpi("live.stores_on_target", `${num(reached)} / ${num(live.stores.length)}`, BIG));
}

function lists(live) {
  fill("live-hot", table([
    { label: "col.product_name", value: (p) => p.name || p.sku },
    { label: "col.units", cls: "num", value: (p) => num(p.units) },
    { label: "col.sales", cls: "num", value: (p) => money(p.sales) },
    { label: "col.member_price", cls: "num", value: (p) => money(p.member_price) },
  ], live.hot_products.slice(0, 8), { rowAttrs: (p) => ({ "data-sku": p.sku }) }));
  fill("deals", table([
    { label: "col.product_name", value: (d) => d.name || d.sku },
    { label: "col.price", cls: "num", value: (d) => money(d.price) },
    { label: "col.member_price", cls: "num", value: (d) => money(d.member_price) },
  ], live.member_deals.slice(0, 8), { rowAttrs: (d) => ({ "data-sku": d.sku }) }));
}

function charts(live) {
  const hours = live.by_hour.map((h) => `${h.hour}:00`);
  const top = [...live.stores].sort((a, b) => b.sales - a.sales).slice(0, TOP_STORES);
  return Promise.all([
    draw("hour-chart", {
      tooltip: { trigger: "axis" }, grid: { left: 90, right: 20, top: 16, bottom: 36 },
      xAxis: { type: "category", data: hours, ...AXIS }, yAxis: { type: "value", ...AXIS },
      series: [{ name: t("chart.sales"), type: "bar", color: "#22d3ee", data: live.by_hour.map((h) => h.sales) }],
    }, { dark: true }),
    draw("channel-chart", {
      tooltip: { trigger: "item" }, color: PALETTE,
      legend: { bottom: 0, textStyle: { color: "#e5edff", fontSize: 16 } },
      series: [{ type: "pie", radius: ["34%", "58%"], center: ["50%", "44%"],
        label: { color: "#e5edff", fontSize: 16, overflow: "none", formatter: (p) => `${p.percent.toFixed(1)}%` },
        data: live.by_channel.map((c) => ({ name: t(`channel.${c.channel}`), value: c.sales })) }],
    }, { dark: true }),
    draw("stores-chart", {
      tooltip: { trigger: "axis" }, grid: { left: 160, right: 40, top: 30, bottom: 24 },
      legend: { top: 0, textStyle: { color: "#e5edff", fontSize: 16 } },
      xAxis: { type: "value", ...AXIS }, yAxis: { type: "category", inverse: true, data: top.map((s) => s.name || s.store), ...AXIS },
      series: [
        { name: t("col.sales"), type: "bar", color: "#fbbf24", data: top.map((s) => s.sales) },
        { name: t("col.target"), type: "bar", color: "#1d4ed8", data: top.map((s) => s.target) },
      ],
    }, { dark: true }),
  ]);
}

async function loadLive() {
  const live = await get(`/v1/brand/live${query({ day: param("day") })}`);
  headline(live);
  lists(live);
  await charts(live);
  fill("updated", clock());
}

function refresh() {
  setInterval(async () => {
    try {
      await loadLive();
      clearErrors();
    } catch (exc) {
      showError(exc, "refresh");
    }
  }, REFRESH_S * 1000);
}

if (startPage()) {
  loadSections([["live", loadLive]]).then(refresh);
}
