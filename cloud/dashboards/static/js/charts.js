// ECharts (vendored, loaded as the global `echarts` by a classic script tag) with the pages'
// fonts and colours. Animations are off: a dashboard is read, not watched, and a chart that is
// drawn at once makes "data ready" mean what it says.

const FONT = '"WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
const charts = new Map();

window.addEventListener("resize", () => {
  for (const chart of charts.values()) chart.resize();
});

/** Draw `option` into the element with `id`; resolves once ECharts has finished rendering. */
export function draw(id, option, { dark = false } = {}) {
  const node = document.getElementById(id);
  let chart = charts.get(id);
  if (!chart) {
    chart = window.echarts.init(node, dark ? "dark" : null, { renderer: "canvas" });
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
