/**
 * The dashboard: one HTML page with no build step, served by the collector through the internal socket.
 * It polls /dashboard/data?window=… every 5 seconds and shows, over the chosen window (from the first request,
 * or the last 5, 15 or 60 minutes; kept in the address's #window= so a reload keeps it), per function its
 * requests, 4xx, 5xx and latency percentiles, and plots of request rate, 5xx rate and p95 latency drawn with
 * uPlot (served from the npm package), sized to their cards; then the health checks, the queues (depth, in flight,
 * delayed, dead letters, this node's counts), the upstreams functions call (breaker state and for how long, calls, failures,
 * timeouts, refusals, retries), the crons with their last
 * runs and the recent errors with their source-mapped stacks.
 */
export const REFRESH_MS = 5000;

const style = `
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f5f6f8; }
  header { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; padding: .8rem 1.2rem; background: #1d232a; color: #fff; }
  header h1 { font-size: 1.1rem; margin: 0; }
  header .muted { color: #aab; }
  header .bad { color: #ff8a80; }
  header label { margin-left: auto; }
  header select { font: inherit; margin-left: .4rem; padding: .15rem .3rem; border-radius: 4px; }
  main { padding: 1rem 1.2rem; display: grid; gap: 1rem; }
  .row { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); }
  section { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: .8rem 1rem; min-width: 0; }
  section.chart { display: flex; flex-direction: column; }
  .plot { position: relative; flex: 1 1 auto; min-height: 280px; }
  /* Out of the flow: the plot is sized to its box, so the box's size never depends on the plot. */
  .plot > .uplot, .plot > .empty { position: absolute; inset: 0; width: auto; }
  .plot > .empty { display: flex; align-items: center; justify-content: center; text-align: center; padding: 1rem;
    border: 1px dashed #ccd; border-radius: 4px; color: #667; }
  .uplot .u-legend { font-size: 12px; }
  h2 { font-size: .95rem; margin: 0 0 .6rem; }
  h2 .muted { font-weight: normal; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eef; font-variant-numeric: tabular-nums; }
  #functions th:not(:first-child), #functions td:not(:first-child) { text-align: right; }
  #functions th[title] { text-decoration: underline dotted #99a; cursor: help; }
  .ok { color: #18794e; } .bad { color: #c62828; } .muted { color: #667; }
  pre { background: #f7f7fa; padding: .5rem; overflow-x: auto; font-size: 12px; margin: .3rem 0 .8rem; }
  .error-head { font-weight: 600; }
`;

const script = `
const REFRESH_MS = ${REFRESH_MS};
const WINDOWS = { auto: "since the first request", "5m": "last 5 minutes", "15m": "last 15 minutes", "60m": "last 60 minutes" };
const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"];
const charts = {};
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const fmt = (n, d = 1) => Number(n).toFixed(d);
const ms = (v) => v === null || v === undefined ? "–" : (v < 10 ? fmt(v, 1) : fmt(v, 0)) + " ms";
const ago = (t) => t ? new Date(t).toLocaleString() : "";
const clock = (t) => new Date(t).toLocaleTimeString();

// The window: from the address (#window=15m), so that a reload or a shared link keeps it.
const fromHash = () => new URLSearchParams(location.hash.slice(1)).get("window");
let windowChoice = Object.hasOwn(WINDOWS, fromHash()) ? fromHash() : "auto";
let latest = null;
let asked = 0;
let timer;

function windowTitle(w) {
  if (w.choice !== "auto") return WINDOWS[w.choice];
  if (w.firstRequest === null) return "no requests yet";
  return "since " + clock(w.firstRequest) + " (" + Math.max(1, Math.round((w.to - w.firstRequest) / 60000)) + " min)";
}

function showEmpty(id, text) {
  charts[id]?.observer.disconnect();
  charts[id]?.chart.destroy();
  delete charts[id];
  const el = document.getElementById(id);
  el.innerHTML = '<div class="empty">' + esc(text) + '</div>';
}

/** Sizes a chart to its box: the canvas gets the width, and the height the legend leaves. */
function fit(id) {
  const c = charts[id];
  if (!c) return;
  const el = document.getElementById(id);
  const legend = el.querySelector(".u-legend")?.offsetHeight ?? 0;
  c.chart.setSize({ width: el.clientWidth, height: Math.max(120, el.clientHeight - legend) });
}

function plot(id, data, key, unit, yRange) {
  const names = Object.keys(data.series.functions).sort();
  if (data.window.firstRequest === null) return showEmpty(id, "No requests yet: the plot starts with the first request to a function.");
  if (names.length === 0) return showEmpty(id, "No requests in the " + WINDOWS[data.window.choice] + ": choose a longer window above.");
  const values = [data.series.t, ...names.map((n) => data.series.functions[n][key])];
  const el = document.getElementById(id);
  const signature = names.join(",");
  if (!charts[id] || charts[id].signature !== signature) {
    showEmpty(id, "");
    el.innerHTML = "";
    const opts = {
      width: el.clientWidth, height: el.clientHeight,
      // The time axis spans the window asked for, wherever the data is.
      scales: { x: { time: true, range: () => [latest.window.from / 1000, latest.window.to / 1000] }, y: { range: yRange } },
      axes: [{ stroke: "#445", grid: { stroke: "#eef" } }, { label: unit, size: 60, stroke: "#445", grid: { stroke: "#eef" } }],
      cursor: { sync: { key: "dashboard" }, drag: { x: false, y: false } },
      legend: { live: true },
      // Error rate and latency have no value where a function had no requests: join across those gaps and
      // mark each value, so a lone busy interval still shows.
      series: [{ label: "time", value: (u, v) => v === null ? "–" : clock(v * 1000) },
        ...names.map((n, i) => ({ label: n, stroke: colors[i % colors.length], width: 1.5, spanGaps: key !== "rps", points: { show: key !== "rps", size: 5 },
          value: (u, v) => v === null ? "–" : fmt(v, key === "rps" ? 2 : 1) }))],
      hooks: {
        // What the axis shows, for people reading the page's DOM (and for the tests).
        setScale: [(u, key) => { if (key === "x") { el.dataset.from = String(u.scales.x.min); el.dataset.to = String(u.scales.x.max); } }],
      },
    };
    const chart = new uPlot(opts, values, el);
    const observer = new ResizeObserver(() => fit(id));
    observer.observe(el);
    charts[id] = { signature, chart, observer };
    fit(id);
  } else {
    charts[id].chart.setData(values);
  }
}

function render(data) {
  latest = data;
  document.getElementById("updated").textContent = "updated " + clock(data.now) + " · release " + data.release;
  document.getElementById("window-title").textContent = windowTitle(data.window);
  document.querySelector("#functions tbody").innerHTML = data.functions.length === 0 ? '<tr><td colspan="10" class="muted">No functions in the live release.</td></tr>' :
    data.functions.map((f) =>
    '<tr data-function="' + esc(f.name) + '"><td>' + esc(f.name) + '</td><td class="requests">' + f.requests + '</td><td class="rate">' + fmt(f.requestsPerSecond, 2) +
    '</td><td class="client-errors">' + f.clientErrors + '</td><td class="server-errors ' + (f.serverErrors > 0 ? "bad" : "") + '">' + f.serverErrors +
    '</td><td class="error-rate ' + (f.errorRate > 0 ? "bad" : "") + '">' + (f.requests > 0 ? fmt(100 * f.errorRate) + " %" : "–") +
    '</td><td class="p50">' + ms(f.p50Ms) + '</td><td class="p95">' + ms(f.p95Ms) + '</td><td class="p99">' + ms(f.p99Ms) +
    '</td><td class="max">' + ms(f.maxMs) + '</td></tr>').join("");
  plot("chart-rate", data, "rps", "req/s", (u, min, max) => [0, max > 0 ? max * 1.15 : 1]);
  plot("chart-errors", data, "errorRate", "% of requests", () => [0, 100]);
  plot("chart-latency", data, "p95Ms", "ms (p95)", (u, min, max) => [0, max > 0 ? max * 1.15 : 1]);
  const health = data.health;
  document.getElementById("health").innerHTML = !health ? '<p class="muted">No health checks: they come through the internal socket.</p>' :
    '<p class="' + (health.ok ? "ok" : "bad") + '">' + (health.ok ? "ready" : "NOT READY") + '</p><table>' +
    Object.entries(health.checks).map(([name, c]) => '<tr data-check="' + esc(name) + '"><td>' + esc(name) + '</td><td class="' + (c.ok ? "ok" : "bad") + '">' +
    (c.ok ? "ok" : "failing") + '</td><td>' + c.ms + ' ms</td><td class="muted">' + esc(c.error ?? "") + '</td></tr>').join("") + '</table>';
  document.getElementById("errors").innerHTML = data.errors.length === 0 ? '<p class="muted">No errors recorded.</p>' : data.errors.map((e) =>
    '<div class="error" data-fingerprint="' + esc(e.fingerprint) + '"><div class="error-head">' + esc(e.function) + ' · ' + esc(e.name) + ': ' + esc(e.message) +
    '</div><div class="muted">' + esc(e.kind) + ' · ' + e.count + ' times · last ' + ago(e.lastSeen) + ' · first ' + ago(e.firstSeen) +
    (e.location ? ' · at <code>' + esc(e.location) + '</code>' : '') + (e.latest?.requestId ? ' · request ' + esc(e.latest.requestId) : '') +
    '</div>' + (e.latest?.stack ? '<pre>' + esc(e.latest.stack) + '</pre>' : '') + '</div>').join("");
  document.getElementById("queues").innerHTML = data.queues.length === 0 ? '<p class="muted">No function consumes a queue.</p>' :
    '<table><tr><th>queue</th><th>consumer</th><th>ready</th><th>in flight</th><th>delayed</th><th>dead letters</th><th>oldest</th><th>sent / acked / failed here</th></tr>' +
    data.queues.map((q) => '<tr data-queue="' + esc(q.queue) + '"><td>' + esc(q.queue) + '</td><td>' + (q.consumer ? esc(q.consumer) : '<span class="muted">none</span>') +
    '</td><td>' + q.ready + '</td><td>' + q.inFlight + '</td><td>' + q.delayed + '</td><td class="' + (q.deadLetters > 0 ? "bad" : "") + '">' + q.deadLetters +
    '</td><td>' + (q.oldestMs > 0 ? Math.round(q.oldestMs / 1000) + ' s' : '') + '</td><td>' + q.sent + ' / ' + q.acked + ' / ' + q.failed + '</td></tr>').join("") + '</table>';
  const stateClass = { closed: "ok", open: "bad", half_open: "bad" };
  document.getElementById("upstreams").innerHTML = data.upstreams.length === 0 ? '<p class="muted">No function has called an upstream through the outbound helper.</p>' :
    '<table><tr><th>upstream</th><th>called by</th><th>breaker</th><th>for</th><th>calls</th><th>ok</th><th>failures</th><th>timeouts</th><th>refused</th><th>busy</th><th>retries</th><th>fallbacks</th></tr>' +
    data.upstreams.map((u) => '<tr data-upstream="' + esc(u.upstream) + '"><td>' + esc(u.upstream) + '</td><td>' + esc(u.functions.join(", ")) +
    '</td><td class="state ' + stateClass[u.state] + '">' + esc(u.state.replace("_", "-")) + (u.scope === "isolate" ? ' <span class="muted">(per isolate)</span>' : '') +
    '</td><td>' + (u.since > 0 ? Math.max(0, Math.round((data.now - u.since) / 1000)) + ' s' : '') + '</td><td>' + u.calls + '</td><td>' + u.ok + '</td><td class="' + (u.failures > 0 ? "bad" : "") + '">' + u.failures +
    '</td><td class="' + (u.timeouts > 0 ? "bad" : "") + '">' + u.timeouts + '</td><td>' + u.refused + '</td><td>' + u.busy + '</td><td>' + u.retries + '</td><td>' + u.fallbacks + '</td></tr>').join("") + '</table>';
  document.getElementById("crons").innerHTML = data.crons.length === 0 ? '<p class="muted">No function declares crons.</p>' :
    '<table><tr><th>function</th><th>cron</th><th>last run</th><th>status</th><th>next</th></tr>' + data.crons.map((c) =>
    '<tr><td>' + esc(c.function) + '</td><td><code>' + esc(c.cron) + '</code></td><td>' + (c.last ? ago(c.last.startedAt) : '<span class="muted">never</span>') +
    '</td><td class="' + (c.last && c.last.status !== "ok" && c.last.status !== "running" ? "bad" : "ok") + '">' + esc(c.last?.status ?? "") +
    (c.last?.error ? ' <span class="muted">' + esc(c.last.error) + '</span>' : '') + '</td><td>' + ago(c.next) + '</td></tr>').join("") + '</table>';
}

async function refresh() {
  clearTimeout(timer);
  const mine = ++asked;
  try {
    const res = await fetch("/dashboard/data?window=" + encodeURIComponent(windowChoice), { credentials: "same-origin", cache: "no-store" });
    if (!res.ok) throw new Error("the internal socket answered " + res.status + (res.status === 401 ? ": open /dashboard?token=<token> again" : ""));
    const data = await res.json();
    // A window changed while this was on its way: the newer request draws.
    if (mine !== asked) return;
    render(data);
    document.getElementById("problem").textContent = "";
  } catch (err) {
    if (mine === asked) document.getElementById("problem").textContent = String(err.message ?? err);
  } finally {
    if (mine === asked) timer = setTimeout(refresh, REFRESH_MS);
  }
}

const select = document.getElementById("window");
select.value = windowChoice;
select.addEventListener("change", () => {
  windowChoice = select.value;
  history.replaceState(null, "", "#window=" + windowChoice);
  refresh();
});
refresh();
`;

const windowOptions = `<option value="auto">since the first request</option><option value="5m">last 5 minutes</option>
<option value="15m">last 15 minutes</option><option value="60m">last 60 minutes</option>`;

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
<header><h1>workyard</h1><span class="muted" id="updated">loading…</span><span class="bad" id="problem"></span>
<label>Window<select id="window">${windowOptions}</select></label></header>
<main>
<section><h2>Functions <span class="muted">· <span id="window-title"></span></span></h2>
<table id="functions"><thead><tr><th>function</th><th>requests</th><th title="requests over the window's length">req/s</th><th>4xx</th><th>5xx</th>
<th title="5xx answers over requests">5xx rate</th><th title="half the requests took at most this (from a histogram: within 19 %)">p50</th>
<th title="95 % of requests took at most this">p95</th><th title="99 % of requests took at most this">p99</th><th>max</th></tr></thead><tbody></tbody></table></section>
<div class="row">
<section class="chart"><h2>Requests per second</h2><div class="plot" id="chart-rate"></div></section>
<section class="chart"><h2>5xx error rate</h2><div class="plot" id="chart-errors"></div></section>
<section class="chart"><h2>Latency, p95</h2><div class="plot" id="chart-latency"></div></section>
</div>
<div class="row">
<section><h2>Health</h2><div id="health"></div></section>
<section><h2>Crons</h2><div id="crons"></div></section>
</div>
<section><h2>Queues</h2><div id="queues"></div></section>
<section><h2>Upstreams <span class="muted">· since the supervisor started</span></h2><div id="upstreams"></div></section>
<section><h2>Recent errors</h2><div id="errors"></div></section>
</main>
<script>${script}</script>
</body>
</html>`;
}
