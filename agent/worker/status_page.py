"""The operator's view of a worker: ``GET /`` on the status server, a page that renders the
live ``/status`` every few seconds (breakers per provider endpoint, credential fingerprint
and org config; last error class; retry-in; usage spool depth; calls in progress).

The page holds no data itself: its script fetches ``/status`` (with the ``STATUS_TOKEN``
the operator types in, kept in this browser tab only), so it shows exactly what the JSON
route shows — redacted, never a key."""

from __future__ import annotations

REFRESH_SECONDS = 2

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Voice agent worker: status</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2430; background: #f6f7f9; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 18px 20px; }
h1 { font-size: 20px; margin: 0 0 4px; }
.muted { color: #5d6778; }
.cards { display: flex; gap: 12px; margin: 14px 0; flex-wrap: wrap; }
.card { background: white; border: 1px solid #d9dee7; border-radius: 8px; padding: 10px 14px;
  min-width: 150px; }
.card b { display: block; font-size: 22px; }
table { border-collapse: collapse; width: 100%; background: white; border: 1px solid #d9dee7; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid #e6e9ef;
  vertical-align: top; }
th { font-size: 12px; color: #5d6778; font-weight: 600; }
td.key { font: 12px ui-monospace, monospace; color: #5d6778; word-break: break-all; }
.state { font-weight: 600; border-radius: 10px; padding: 1px 8px; font-size: 12px; }
.state.closed { background: #eef8f2; color: #1f7a4d; }
.state.open { background: #fdf0ef; color: #b3261e; }
.state.half-open, .state.half_open { background: #fff6e5; color: #9a5b00; }
#error { color: #b3261e; margin: 8px 0; }
#token-row { margin: 8px 0; display: none; }
</style>
</head>
<body>
<main>
<h1>Voice agent worker <span class="muted">status</span></h1>
<p class="muted">Live from <code>/status</code>, refreshed every __REFRESH__ s.
  <span id="updated"></span></p>
<div id="token-row">This worker wants its <code>STATUS_TOKEN</code>:
  <input id="token" type="password" autocomplete="off"> <button id="use-token">Use</button></div>
<div id="error" role="alert"></div>
<div class="cards">
  <div class="card"><span class="muted">calls in progress</span><b id="calls">-</b></div>
  <div class="card"><span class="muted">usage records waiting</span><b id="pending">-</b></div>
  <div class="card"><span class="muted">open call records</span><b id="open">-</b></div>
  <div class="card"><span class="muted">providers down</span><b id="down">-</b></div>
</div>
<p class="muted" id="worker"></p>
<table>
<thead><tr><th>kind</th><th>provider</th><th>state</th><th>failures</th><th>last error</th>
  <th>retry in</th><th>breaker (endpoint, key fingerprint or org config)</th></tr></thead>
<tbody id="providers"><tr><td colspan="7" class="muted">loading…</td></tr></tbody>
</table>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const cell = (tr, text, cls) => {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
  return td;
};
function render(data) {
  const spool = data.usageSpool || {};
  $("calls").textContent = data.callsInProgress ?? "-";
  $("pending").textContent = spool.pending ?? 0;
  $("open").textContent = spool.open ?? 0;
  const providers = data.providers || [];
  $("down").textContent = providers.filter((p) => !p.up).length;
  $("worker").textContent = `worker pid ${data.pid}, executor ${data.executor}, ` +
    `usage spool ${spool.path || "none"}${spool.backend ? "" : " (no backend: kept locally)"}`;
  const body = $("providers");
  body.textContent = "";
  if (!providers.length) {
    const tr = document.createElement("tr");
    cell(tr, "no provider used yet", "muted").colSpan = 7;
    body.append(tr);
  }
  for (const p of providers) {
    const tr = document.createElement("tr");
    tr.dataset.provider = p.provider;
    tr.dataset.state = p.state;
    cell(tr, p.kind);
    cell(tr, p.provider);
    const state = cell(tr, "");
    const badge = document.createElement("span");
    badge.className = `state ${p.state}`;
    badge.textContent = p.state;
    state.append(badge);
    cell(tr, String(p.failures));
    cell(tr, p.lastError ? `${p.lastError}${p.lastErrorAt ? " at " + p.lastErrorAt : ""}` : "-");
    cell(tr, p.state === "open" ? `${p.retryInSeconds} s` : "-");
    cell(tr, p.key, "key");
    body.append(tr);
  }
  $("updated").textContent = `Last update ${data.generatedAt}.`;
}
async function refresh() {
  const token = sessionStorage.getItem("statusToken");
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    const resp = await fetch("__PATH__", { headers, cache: "no-store" });
    if (resp.status === 401) {
      $("token-row").style.display = "block";
      $("error").textContent = "The status route wants a token (STATUS_TOKEN).";
      return;
    }
    render(await resp.json());
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = `No answer from the worker (${e}). Is it still running?`;
  }
}
$("use-token").addEventListener("click", () => {
  sessionStorage.setItem("statusToken", $("token").value);
  $("token").value = "";
  refresh();
});
refresh();
setInterval(refresh, __REFRESH__ * 1000);
</script>
</body>
</html>
"""


def page(status_path: str) -> str:
    return PAGE.replace("__REFRESH__", str(REFRESH_SECONDS)).replace("__PATH__", status_path)
