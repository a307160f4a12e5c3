// ECharts (vendored, a classic script setting the global `echarts`) with the pages' fonts and
// colours. Animations are off: a dashboard is read, not watched, and a chart that is
// drawn at once makes "data ready" mean what it says.

const FONT = '"WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
const LIBRARY = "vendor/echarts/echarts.common.min.js";
const charts = new Map();

/**
 * The library, loaded once by a script element started as soon as this module runs: parsing its
 * 715 KB overlaps with the page's API calls instead of delaying them (a blocking or deferred
 * script tag would run first). Sets the global `echarts`.
 */
const library = new Promise((resolve, reject) => {
  const script = document.createElement("script");
  script.src = LIBRARY;
  script.onload = () => resolve(window.echarts);
  script.onerror = () => reject(new Error(`the chart library ${LIBRARY} did not load`));
  document.head.append(script);
});
library.catch(() => null); // a failed load is reported by the draw() that needed it, not as an unhandled rejection

window.addEventListener("resize", () => {
  for (const chart of charts.values()) chart.resize();
});

/** Draw `option` into the element with `id`; resolves once ECharts has finished rendering. */
export async function draw(id, option, { dark = false } = {}) {
  const echarts = await library;
  const node = document.getElementById(id);
  let chart = charts.get(id);
  if (!chart) {
    chart = echarts.init(node, dark ? "dark" : null, { renderer: "canvas" });
    charts.set(id, chart);
  }
  chart.off("finished");
  // 'finished' may never come for an element with no size; the page must not wait for ever then.
  const done = new Promise((resolve) => {
    chart.on("finished", resolve);
    setTimeout(resolve, 3000);
  });
  chart.setOption({
    animation: false,
    backgroundColor: "transparent",
    textStyle: { fontFamily: FONT },
    ...option,
  }, true);
  node.dataset.drawn = "true";
  return done;
}

export const PALETTE = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16"];
