/**
 * The dashboard: one HTML page with no build step, served by the collector through the internal socket.
 * It polls /dashboard/data every 5 seconds and draws request rate, error rate and latency per function
 * over the last 30 minutes with uPlot (served from the npm package), plus the recent errors with their
 * source-mapped stacks, the crons with their last runs and the health checks.
 */
export const REFRESH_MS = 5000;

const style = `
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f5f6f8; }
  header { display: flex; gap: 1rem; align-items: baseline; padding: .8rem 1.2rem; background: #1d232a; color: #fff; }
  header h1 { font-size: 1.1rem; margin: 0; }
  header .muted { color: #aab; }
  main { padding: 1rem 1.2rem; display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); }
  section { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: .8rem 1rem; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: .95rem; margin: 0 0 .6rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eef; font-variant-numeric: tabular-nums; }
  .ok { color: #18794e; } .bad { color: #c62828; } .muted { color: #667; }
  pre { background: #f7f7fa; padding: .5rem; overflow-x: auto; font-size: 12px; margin: .3rem 0 .8rem; }
  .error-head { font-weight: 600; }
`;

const script = `
const REFRESH_MS = ${REFRESH_MS};
const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"];
const charts = {};
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const fmt = (n, d = 1) => Number(n).toFixed(d);
const ago = (t) => t ? new Date(t).toLocaleString() : "";

function plot(id, data, key, unit) {
  const names = Object.keys(data.series.functions).sort();
  const values = [data.series.t, ...names.map((n) => data.series.functions[n][key])];
  const el = document.getElementById(id);
  const signature = names.join(",");
  if (!charts[id] || charts[id].signature !== signature) {
    charts[id]?.chart.destroy();
    const opts = {
      width: Math.max(300, el.clientWidth - 10), height: 220,
      scales: { x: { time: true } },
      axes: [{}, { label: unit, size: 60 }],
      // Error rate and latency have no value where a function had no requests: join across those gaps and
      // mark each value, so a lone busy interval still shows.
      series: [{}, ...names.map((n, i) => ({ label: n, stroke: colors[i % colors.length], width: 1.5, spanGaps: key !== "rps", points: { show: key !== "rps", size: 5 } }))],
    };
    charts[id] = { signature, chart: new uPlot(opts, values, el) };
  } else {
    charts[id].chart.setData(values);
  }
}

function render(data) {
  document.getElementById("updated").textContent = "updated " + new Date(data.now).toLocaleTimeString() + " · release " + data.release;
  document.querySelector("#functions tbody").innerHTML = data.functions.map((f) =>
    '<tr data-function="' + esc(f.name) + '"><td>' + esc(f.name) + '</td><td class="rate">' + fmt(f.requestsPerSecond, 2) +
    '</td><td class="error-rate ' + (f.errorRate > 0 ? "bad" : "") + '">' + fmt(100 * f.errorRate) + ' %</td><td>' + fmt(f.avgMs) +
    ' ms</td><td>' + fmt(f.maxMs, 0) + ' ms</td><td class="total">' + f.total + '</td></tr>').join("");
  plot("chart-rate", data, "rps", "req/s");
  plot("chart-errors", data, "errorRate", "% 5xx");
  plot("chart-latency", data, "avgMs", "ms (avg)");
  const health = data.health;
  document.getElementById("health").innerHTML = '<p class="' + (health.ok ? "ok" : "bad") + '">' + (health.ok ? "ready" : "NOT READY") + '</p><table>' +
    Object.entries(health.checks).map(([name, c]) => '<tr data-check="' + esc(name) + '"><td>' + esc(name) + '</td><td class="' + (c.ok ? "ok" : "bad") + '">' +
    (c.ok ? "ok" : "failing") + '</td><td>' + c.ms + ' ms</td><td class="muted">' + esc(c.error ?? "") + '</td></tr>').join("") + '</table>';
  document.getElementById("errors").innerHTML = data.errors.length === 0 ? '<p class="muted">No errors recorded.</p>' : data.errors.map((e) =>
    '<div class="error" data-fingerprint="' + esc(e.fingerprint) + '"><div class="error-head">' + esc(e.function) + ' · ' + esc(e.name) + ': ' + esc(e.message) +
    '</div><div class="muted">' + esc(e.kind) + ' · ' + e.count + ' times · last ' + ago(e.lastSeen) + ' · first ' + ago(e.firstSeen) +
    (e.location ? ' · at <code>' + esc(e.location) + '</code>' : '') + (e.latest?.requestId ? ' · request ' + esc(e.latest.requestId) : '') +
    '</div>' + (e.latest?.stack ? '<pre>' + esc(e.latest.stack) + '</pre>' : '') + '</div>').join("");
  document.getElementById("crons").innerHTML = data.crons.length === 0 ? '<p class="muted">No function declares crons.</p>' :
    '<table><tr><th>function</th><th>cron</th><th>last run</th><th>status</th><th>next</th></tr>' + data.crons.map((c) =>
    '<tr><td>' + esc(c.function) + '</td><td><code>' + esc(c.cron) + '</code></td><td>' + (c.last ? ago(c.last.startedAt) : '<span class="muted">never</span>') +
    '</td><td class="' + (c.last && c.last.status !== "ok" && c.last.status !== "running" ? "bad" : "ok") + '">' + esc(c.last?.status ?? "") +
    (c.last?.error ? ' <span class="muted">' + esc(c.last.error) + '</span>' : '') + '</td><td>' + ago(c.next) + '</td></tr>').join("") + '</table>';
}

async function refresh() {
  try {
    const res = await fetch("/dashboard/data", { credentials: "same-origin", cache: "no-store" });
    if (!res.ok) throw new Error("the internal socket answered " + res.status + (res.status === 401 ? ": open /dashboard?token=<token> again" : ""));
    render(await res.json());
    document.getElementById("problem").textContent = "";
  } catch (err) {
    document.getElementById("problem").textContent = String(err.message ?? err);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
`;

/** The page's HTML. */
export function dashboardPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>workyard dashboard</title>
<link rel="stylesheet" href="/dashboard/assets/uplot.css">
<style>${style}</style>
<script src="/dashboard/assets/uplot.js"></script>
</head>
<body>
<header><h1>workyard</h1><span class="muted" id="updated">loading…</span><span class="bad" id="problem"></span></header>
<main>
<section class="wide"><h2>Functions (last minute)</h2>
<table id="functions"><thead><tr><th>function</th><th>req/s</th><th>5xx</th><th>avg</th><th>max</th><th>total</th></tr></thead><tbody></tbody></table></section>
<section><h2>Request rate</h2><div id="chart-rate"></div></section>
<section><h2>Error rate (5xx)</h2><div id="chart-errors"></div></section>
<section><h2>Latency</h2><div id="chart-latency"></div></section>
<section><h2>Health</h2><div id="health"></div></section>
<section class="wide"><h2>Recent errors</h2><div id="errors"></div></section>
<section class="wide"><h2>Crons</h2><div id="crons"></div></section>
</main>
<script>${script}</script>
</body>
</html>`;
}
