// The store manager's page: today vs last week, the health scores with what is behind them,
// the assistants' league, who is signed in on the guide screens, alerts, hot products and a live
// arrivals counter that polls.

import { get, query } from "./api.js";
import { loadAlerts } from "./alerts.js";
import { draw, PALETTE } from "./charts.js";
import { metricLabel, t } from "./i18n.js";
import { formatMetric } from "./metrics.js";
import { change, el, fill, loadSections, money, num, param, pct, setPrincipal, showError, startPage, table } from "./ui.js";

const KPI_METRICS = ["sales", "orders", "avg_ticket", "footfall", "arrivals", "conversion", "recognised_share", "greeted_share"];
const SUBS = ["experience", "customer", "team", "product", "operations"];
const POLL_S = Number(param("poll") || 30);

const store = param("store");
const day = param("day"); // none: the last complete day (the API's default), with "today so far" beside it
const focus = param("metric"); // an alert's link: the metric it is about, highlighted and opened
const focusAlert = param("alert");

const SO_FAR = ["sales", "orders", "footfall", "arrivals", "conversion"];

/** Today's closed hours against the same hours last week and the 4-week mean (one source: the rollup). */
function soFar(health) {
  const s = health.today_so_far;
  if (!s) return;
  document.getElementById("so-far-panel").hidden = false;
  fill("so-far-label", t("store.so_far.until").replace("{until}", s.until));
  fill("so-far", table([
    { label: "col.metric", value: (m) => metricLabel(m) },
    { label: "store.so_far.today", cls: "num", value: (m) => formatMetric(m, s.today[m]) },
    { label: "store.so_far.last_week", cls: "num", value: (m) => el("span", {}, `${formatMetric(m, s.last_week[m])} `, change(s.today[m], s.last_week[m])) },
    { label: "store.so_far.baseline", cls: "num", value: (m) => formatMetric(m, s.baseline[m]) },
  ], SO_FAR, { rowAttrs: (m) => ({ "data-so-far": m }) }));
}

/** An alert's link names a metric (and the alert): say so, open its sub-score and mark its row. */
function showFocus() {
  if (!focus) return;
  const note = document.getElementById("focus");
  note.hidden = false;
  fill("focus", t("store.focus").replace("{metric}", metricLabel(focus)));
  const row = document.querySelector(`#explain tr[data-metric="${focus}"]`);
  if (row) {
    row.classList.add("focused");
    row.closest("details")?.setAttribute("open", "");
  }
  const alertRow = focusAlert && document.querySelector(`#alerts tr[data-alert="${focusAlert}"]`);
  if (alertRow) alertRow.classList.add("focused");
  (row || alertRow || note).scrollIntoView({ block: "center" });
}

function kpis(dash) {
  const cards = KPI_METRICS.filter((m) => m in dash.today).map((m) => el("div", { class: "kpi", "data-metric": m },
    el("div", { class: "label", text: metricLabel(m) }),
    el("div", { class: "value", text: formatMetric(m, dash.today[m]) }),
    el("div", { class: "was" }, `${t("col.last_week")} ${formatMetric(m, dash.last_week?.[m])} `, change(dash.today[m], dash.last_week?.[m])),
  ));
  fill("kpis", ...cards);
}

function live(counts) {
  const item = (key, value) => el("div", { "data-live": key },
    el("div", { class: "value", text: num(value) }), el("div", { class: "label", i18n: `store.live.${key}` }));
  fill("live", item("arrivals", counts.arrivals_today), item("members", counts.members_today), item("visitors", counts.visitors_today));
}

function scores(health) {
  const score = (name, value, extra) => el("div", { class: `score ${name}`, "data-score": name },
    el("div", { class: "value", text: num(value, 1) }), el("div", { class: "label", text: t(name === "overall" ? "store.overall" : `sub.${name}`) }), extra);
  fill("scores", score("overall", health.overall),
    ...health.sub_scores.map((s) => score(s.name, s.score, el("div", { class: "label", text: `${t("col.weight")} ${num(s.weight, 2)}` }))));
  fill("rank", `${health.day ?? ""} · ${t("store.rank")} ${health.rank ?? "–"} / ${health.of} · ${t("store.peer_group")} ${health.peer_group?.key ?? "–"}`);
  const columns = [
    { label: "col.metric", value: (m) => metricLabel(m.metric) },
    { label: "col.value", cls: "num", value: (m) => formatMetric(m.metric, m.value, m.unit) },
    { label: "col.baseline", cls: "num", value: (m) => formatMetric(m.metric, m.own_baseline, m.unit) },
    { label: "col.peer_median", cls: "num", value: (m) => formatMetric(m.metric, m.peer_median, m.unit) },
    { label: "col.score", cls: "num", value: (m) => num(m.score, 1) },
    { label: "col.weight", cls: "num", value: (m) => num(m.weight, 2) },
  ];
  fill("explain", el("div", { class: "label", i18n: "store.explain" }), ...health.sub_scores.map((s) => el("details", { class: "explain", "data-sub": s.name, open: s.name === "experience" ? "" : null },
    el("summary", { text: `${t(`sub.${s.name}`)} · ${num(s.score, 1)}` }),
    table(columns, s.metrics, { rowAttrs: (m) => ({ "data-metric": m.metric, class: m.incident ? "incident" : null, title: m.incident }) }),
    s.name === "operations" ? incidents(health.incidents || []) : null)));
}

/** The alerts that made the operations score: each one's part of the day's opening hours. */
function incidents(rows) {
  const clockTime = (ts) => new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return el("div", { "data-incidents": String(rows.length) }, el("div", { class: "label", i18n: "store.incidents" }),
    table([
      { label: "col.metric", value: (i) => metricLabel(i.metric) + (i.device ? ` · ${i.device}` : "") },
      { label: "col.severity", value: (i) => i.severity },
      { label: "col.time", value: (i) => `${clockTime(i.start)}–${clockTime(i.end)}` },
      { label: "col.value", cls: "num", value: (i) => num(i.minutes, 0) },
    ], rows, { rowAttrs: (i) => ({ "data-alert": i.alert_id }) }));
}

function history(health) {
  const days = health.history.map((h) => h.day.slice(5));
  const series = ["overall", ...SUBS].map((name, i) => ({
    name: t(name === "overall" ? "store.overall" : `sub.${name}`), type: "line", smooth: true, showSymbol: false,
    lineStyle: { width: name === "overall" ? 3 : 1.5 }, color: PALETTE[i], data: health.history.map((h) => h[name]),
  }));
  return draw("history-chart", {
    tooltip: { trigger: "axis" }, legend: { top: 0 }, grid: { left: 40, right: 16, top: 36, bottom: 24 },
    xAxis: { type: "category", data: days }, yAxis: { type: "value", min: 0, max: 100 }, series,
  });
}

/** The hours worth a column: from the first to the last hour with anything, today or last week. */
function openHours(hourly) {
  const busy = hourly.filter((h) => h.footfall || h.arrivals || h.sales || h.last_week_sales || h.last_week_footfall);
  if (!busy.length) return hourly;
  const first = Math.max(0, busy[0].hour - 1);
  const last = Math.min(23, busy[busy.length - 1].hour + 1);
  return hourly.filter((h) => h.hour >= first && h.hour <= last);
}

function hourly(dash) {
  const rows = openHours(dash.hourly);
  const hours = rows.map((h) => `${h.hour}:00`);
  return draw("hourly-chart", {
    tooltip: { trigger: "axis" }, legend: { top: 0 }, grid: { left: 56, right: 56, top: 36, bottom: 24 },
    xAxis: { type: "category", data: hours },
    yAxis: [{ type: "value", name: "¥" }, { type: "value", splitLine: { show: false } }],
    series: [
      { name: t("chart.footfall_today"), type: "bar", yAxisIndex: 1, color: "#cbd5e1", data: rows.map((h) => h.footfall) },
      { name: t("chart.sales_today"), type: "line", color: PALETTE[0], data: rows.map((h) => h.sales) },
      { name: t("chart.sales_last_week"), type: "line", color: PALETTE[1], lineStyle: { type: "dashed" }, data: rows.map((h) => h.last_week_sales) },
    ],
  });
}

function league(dash) {
  const rows = [...dash.assistants].sort((a, b) => (b.sales ?? 0) - (a.sales ?? 0));
  fill("assistants", table([
    { label: "col.rank", value: (a) => String(rows.indexOf(a) + 1) },
    { label: "col.assistant", value: (a) => a.name || a.assistant },
    { label: "col.claimed", cls: "num", value: (a) => num(a.claimed) },
    { label: "col.greeted", cls: "num", value: (a) => num(a.greeted) },
    { label: "col.served", cls: "num", value: (a) => num(a.served) },
    { label: "col.sold", cls: "num", value: (a) => num(a.sold) },
    { label: "col.conversion", cls: "num", value: (a) => pct(a.conversion) },
    { label: "col.sales", cls: "num", value: (a) => money(a.sales) },
    { label: "col.ttg", cls: "num", value: (a) => num(a.median_time_to_greet_s, 0) },
  ], rows, { rowAttrs: (a) => ({ "data-assistant": a.assistant }) }));
}

/** Who is signed in (上岗) on the store's guide screens now, and since when. */
async function loadStaff() {
  const staff = await get(`/v1/stores/${encodeURIComponent(store)}/staff`);
  const since = (ts) => new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  fill("staff", staff.signed_in.length ? table([
    { label: "col.assistant", value: (s) => s.name || s.assistant },
    { label: "col.time", value: (s) => since(s.since) },
    { label: "col.screen", value: (s) => s.screen },
  ], staff.signed_in, { rowAttrs: (s) => ({ "data-signed-in": s.assistant }) }) : el("p", { class: "sub", i18n: "store.staff.none" }));
}

function hotProducts(target, products) {
  fill(target, table([
    { label: "col.product_name", value: (p) => p.name || p.sku },
    { label: "col.sku", value: (p) => p.sku },
    { label: "col.units", cls: "num", value: (p) => num(p.units) },
    { label: "col.sales", cls: "num", value: (p) => money(p.sales) },
  ], products, { rowAttrs: (p) => ({ "data-sku": p.sku }) }));
}

async function loadHealth() {
  const health = await get(`/v1/health/stores/${encodeURIComponent(store)}${query({ day })}`);
  fill("store-name", health.name || store);
  scores(health);
  soFar(health);
  await history(health);
}

async function loadDashboard() {
  const dash = await get(`/v1/stores/${encodeURIComponent(store)}/dashboard${query({ day })}`);
  fill("store-name", dash.name || store);
  fill("store-day", dash.day);
  fill("kpi-basis", dash.complete ? t("store.complete_day").replace("{day}", dash.day) : t("store.partial").replace("{until}", dash.until ?? "00:00"));
  kpis(dash);
  live(dash.live);
  league(dash);
  hotProducts("hot", dash.hot_products);
  await hourly(dash);
}

/** The live counter: the dashboard again every POLL_S seconds, only the arrivals redrawn. */
function poll() {
  setInterval(async () => {
    try {
      live((await get(`/v1/stores/${encodeURIComponent(store)}/dashboard${query({ day })}`)).live);
    } catch (exc) {
      showError(exc, "live");
    }
  }, POLL_S * 1000);
}

if (startPage()) {
  if (!store) {
    showError(new Error(t("store.no_store")));
    document.body.dataset.ready = "true";
  } else {
    fill("store-name", store);
    const hqLink = document.getElementById("hq-link");
    hqLink.hidden = true;  // until the key is known to be HQ's: a store manager has no HQ page
    get("/v1/whoami").then((who) => {
      setPrincipal(who);
      hqLink.hidden = who.role === "store_manager";
    }).catch(() => null).finally(async () => {
      const results = await loadSections([
        ["dashboard", loadDashboard],
        ["health", loadHealth],
        ["alerts", () => loadAlerts("alerts", { store, status: focusAlert ? "all" : "open" })],
        ["staff", loadStaff],
      ]);
      showFocus();
      if (results[0].status === "fulfilled") poll();
    });
  }
}
