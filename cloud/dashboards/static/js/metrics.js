// How a metric's value reads: shares as percentages, money in yuan, seconds with their unit.
// The API's unit wins when it gives one; otherwise the metric's name says (docs/HEALTH.md).

import { money, num, pct } from "./ui.js";

const SHARE_UNITS = new Set(["share", "ratio", "fraction", "rate"]);
const MONEY_UNITS = new Set(["CNY", "cny", "yuan", "¥"]);
const MONEY_METRICS = new Set(["sales", "avg_ticket", "markdown_waste", "sales_per_assistant"]);
const SHARE_NAMES = /(_share|_rate|^conversion|^sell_through|^target_attainment)$/;

export function kindOf(metric, unit) {
  if (unit && SHARE_UNITS.has(unit)) return "share";
  if (unit && MONEY_UNITS.has(unit)) return "money";
  if (unit === "s" || metric.endsWith("_s")) return "seconds";
  if (MONEY_METRICS.has(metric)) return "money";
  if (SHARE_NAMES.test(metric)) return "share";
  return "number";
}

export function formatMetric(metric, value, unit) {
  if (value === null || value === undefined) return "–";
  switch (kindOf(metric, unit)) {
    case "share": return pct(value);
    case "money": return money(value);
    case "seconds": return `${num(value, 0)} s`;
    default: return num(value, Number.isInteger(value) ? 0 : 2);
  }
}
