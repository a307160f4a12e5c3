// The alerts list of the store and HQ pages, with the acknowledge button.

import { post, get, query } from "./api.js";
import { metricLabel, t } from "./i18n.js";
import { formatMetric } from "./metrics.js";
import { el, fill, num, showError, table } from "./ui.js";

function when(ts) {
  return String(ts || "").replace("T", " ").slice(0, 16);
}

/**
 * Load the alerts (`store` null: every store the key may see) into the element `target`;
 * `storeNames`, a promise of store id -> name, adds a store column linking to each store's page.
 */
export async function loadAlerts(target, { store = null, status = "open", limit = 100, storeNames = null } = {}) {
  const alerts = await get(`/v1/alerts${query({ store, status, limit })}`);
  const names = storeNames ? await storeNames : null;  // HQ: a column naming each alert's store
  const columns = [
    { label: "col.time", value: (a) => when(a.ts) },
    ...(names ? [{ label: "col.store", value: (a) => el("a", { href: alertLink(a), text: names.get(a.store) || a.store }) }] : []),
    { label: "col.metric", value: (a) => `${metricLabel(a.metric)}${a.device ? ` · ${a.device}` : ""}` },
    { label: "col.value", cls: "num", value: (a) => formatMetric(a.metric, a.value) },
    { label: "alert.baseline", cls: "num", value: (a) => formatMetric(a.metric, a.baseline) },
    { label: "col.direction", value: (a) => `${t(`alert.${a.direction}`)} (z ${num(a.z, 1)})` },
    { label: "col.severity", value: (a) => el("span", { class: `sev-${a.severity}`, text: t(`alert.${a.severity}`) }) },
    { label: "col.action", value: (a) => ackButton(a, () => loadAlerts(target, { store, status, limit, storeNames })) },
  ];
  fill(target, table(columns, alerts, { rowAttrs: (a) => ({ "data-alert": a.id }) }));
  return alerts;
}

/** The store page on the alert's store, day and metric (the link alert messages carry too). */
export function alertLink(a) {
  return `store.html${query({ store: a.store, day: String(a.ts).slice(0, 10), metric: a.metric, alert: a.id })}`;
}

function ackButton(alert, reload) {
  if (alert.status === "cleared" && !alert.acked_by) return el("span", { text: t("alert.cleared") });
  if (alert.status === "acked") return el("span", { text: `${t("alert.acked")} (${alert.acked_by || ""})` });
  const button = el("button", { class: "ack", type: "button", i18n: "alert.ack" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await post(`/v1/alerts/${encodeURIComponent(alert.id)}/ack`, { note: null });
      await reload();
    } catch (exc) {
      button.disabled = false;
      showError(exc, "ack");
    }
  });
  return button;
}
