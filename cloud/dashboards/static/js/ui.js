// What every page shares: the top bar (its links, language switch, sign out), the error banner, number
// formats, tables built with textContent (store and product names come from data, never HTML),
// and the data-ready marker the tests and the load benchmark wait for.

import { ApiError, apiKey, forgetApiKey, query } from "./api.js";
import { applyLabels, lang, setLang, t } from "./i18n.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === "text") node.textContent = value;
    else if (name === "i18n") {
      node.dataset.i18n = value;
      node.textContent = t(value);
    } else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** The pages a top bar may link to, by the name its `data-nav` lists (the label is `nav.<name>`). */
const PAGES = {
  hq: "hq.html", portrait: "portrait.html", campaign: "campaign.html", cohort: "cohort.html",
  live: "live.html", owners: "owners.html",
};

/**
 * Every page's top bar ends the same: its links (`<header class="top" data-nav="hq cohort">`, each
 * `#<name>-link`), the language switch and, on a signed-in page, sign-out; the error banner follows
 * the bar. The page's own part of the bar (title, pickers, its day) stays in its HTML.
 */
function topBar(signedIn) {
  const header = document.querySelector("header.top");
  const links = (header.dataset.nav || "").split(" ").filter(Boolean)
    .map((name) => el("a", { id: `${name}-link`, href: PAGES[name], i18n: `nav.${name}` }));
  const language = el("button", { id: "lang-switch", type: "button", i18n: "lang.switch", onclick: () => {
    setLang(lang() === "zh" ? "en" : "zh");
    location.reload();
  } });
  const logout = signedIn ? el("button", { id: "logout", type: "button", i18n: "nav.logout", onclick: () => {
    forgetApiKey();
    location.href = "./";
  } }) : null;
  header.append(el("nav", {}, ...links, language, logout));
  header.after(el("div", { id: "banner", hidden: "" }));
}

/** The top bar and every label; a page without a key goes to the sign-in page. */
export function startPage({ needsKey = true } = {}) {
  topBar(needsKey);
  applyLabels();
  if (needsKey && apiKey() === null) {  // "" is a sign-in without a key: the API's open local demo mode
    location.replace("./");
    return false;
  }
  return true;
}

let principal = null;

/** Who the key belongs to (from /v1/whoami): lets a refusal name the store the key may open. */
export function setPrincipal(who) {
  principal = who;
}

/** One clear line per failure at the top of the page: what went wrong and what to do. */
export function showError(error, context) {
  const banner = document.getElementById("banner");
  const kind = error instanceof ApiError ? error.kind : "other";
  let text;
  if (kind === "forbidden_store") {
    const own = principal?.store || /store (\S+)/.exec(error.message || "")?.[1] || "?";
    text = t("err.forbidden_store").replace("{store}", own);
  } else if (kind === "unauthorized") text = t("err.unauthorized");
  else if (kind === "forbidden") text = t("err.forbidden");
  else if (kind === "server") text = t("err.server");
  else if (kind === "network") text = t("err.network");
  else if (kind === "not_found") text = t("err.not_found");
  else if (error instanceof ApiError) text = `${t("err.other")}: ${error.message}`;
  else text = String(error.message || error);  // the page's own finding, already in words for people
  const status = error instanceof ApiError && error.status ? ` (HTTP ${error.status})` : "";
  const line = el("div", { class: `banner-line banner-${kind}`, "data-kind": kind, "data-context": context }, el("span", { text: text + status }));
  if (kind === "unauthorized") line.append(" ", el("a", { href: "./", i18n: "err.relogin" }));
  if (kind === "forbidden_store" && principal?.store) {
    line.append(" ", el("a", { href: `store.html?store=${encodeURIComponent(principal.store)}`, text: principal.store }));
  }
  // Nothing on the page can be right without a valid key for this store: show only the refusal.
  if (kind === "forbidden_store" || kind === "unauthorized") document.querySelector("main")?.setAttribute("hidden", "");
  for (const existing of banner.children) if (existing.textContent === line.textContent) return;
  banner.append(line);
  banner.hidden = false;
}

export function clearErrors() {
  const banner = document.getElementById("banner");
  banner.replaceChildren();
  banner.hidden = true;
}

const locale = () => (lang() === "zh" ? "zh-CN" : "en-US");

/** The time of day, 24-hour, for "updated at" lines. */
export const clock = () => new Date().toLocaleTimeString(locale(), { hour12: false });

export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const money = (value) => (value === null || value === undefined ? "–" : "¥" + num(value, 0));
export const pct = (value, digits = 1) => (value === null || value === undefined ? "–" : num(value * 100, digits) + "%");

/** A signed difference, with a class saying whether it is good news. */
export function delta(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return el("span", { class: "delta", text: "–" });
  const sign = value > 0 ? "+" : value < 0 ? "−" : "±";
  return el("span", { class: `delta ${value > 0 ? "up" : value < 0 ? "down" : ""}`, text: sign + num(Math.abs(value), digits) });
}

/** Change from `before` to `now` as a signed percentage element. */
export function change(now, before) {
  if (now === null || now === undefined || !before) return el("span", { class: "delta", text: "–" });
  const value = ((now - before) / Math.abs(before)) * 100;
  const node = delta(value, 1);
  node.textContent += "%";
  return node;
}

/**
 * A table: columns are {label (i18n key), value(row) -> string|Node, cls}.
 * An empty list shows the "no data" row rather than nothing.
 */
export function table(columns, rows, { rowAttrs } = {}) {
  const head = el("tr", {}, ...columns.map((c) => el("th", { i18n: c.label, class: c.cls })));
  const body = el("tbody");
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: columns.length, class: "empty", i18n: "empty" })));
  for (const row of rows) {
    const tr = el("tr", rowAttrs ? rowAttrs(row) : {});
    for (const c of columns) {
      const value = c.value(row);
      tr.append(el("td", { class: c.cls }, value instanceof Node ? value : String(value ?? "–")));
    }
    body.append(tr);
  }
  return el("table", { class: "grid" }, el("thead", {}, head), body);
}

/** A KPI card: its label (the i18n key, also its `data-kpi`) over its value. */
export function kpi(key, value, valueClass = "value") {
  return el("div", { class: "kpi", "data-kpi": key }, el("div", { class: "label", i18n: key }), el("div", { class: valueClass, text: value }));
}

/**
 * The top bar's picker `#id` of what the page shows: one option per [value, text], `chosen`
 * selected; choosing another reloads the page with `?<name>=<value>`.
 */
export function picker(id, name, options, chosen) {
  const pick = document.getElementById(id);
  pick.replaceChildren(...options.map(([value, text]) => el("option", { value, text })));
  if (chosen) pick.value = chosen;
  pick.addEventListener("change", () => { location.search = query({ [name]: pick.value }); });
}

export function fill(id, ...nodes) {
  document.getElementById(id).replaceChildren(...nodes);
}

/**
 * Run each section's loader on its own: one failing endpoint shows its banner line and leaves the
 * rest of the page working. The body's data-ready marker is set when every loader has settled.
 */
export async function loadSections(loaders) {
  document.body.dataset.ready = "false";
  const results = await Promise.allSettled(loaders.map(([name, load]) => load().catch((exc) => {
    const section = document.querySelector(`[data-section="${name}"]`);
    if (section) section.dataset.state = "error";
    showError(exc, name);
    throw exc;
  })));
  // Milliseconds from the start of navigation to everything drawn: what bench/dashboard_load.py reports.
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "true";
  return results;
}

export function param(name) {
  return new URLSearchParams(location.search).get(name);
}
