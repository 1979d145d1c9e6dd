// The operators' dashboard: reads the admin API with the token kept in session storage (sent as a
// header, never in a URL) and draws small SVG charts. No third-party code: it works offline.
"use strict";

const TOKEN_KEY = "onemin-relay-admin-token";
const DAYS = 30;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const fmt = (value) => Number(value || 0).toLocaleString(undefined, { maximumFractionDigits: 1 });

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": `Bearer ${token()}`, "Content-Type": "application/json" },
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((body.error && body.error.message) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function lastDays(count) {
  const days = [];
  const today = new Date();
  for (let back = count - 1; back >= 0; back--) {
    const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - back));
    days.push(day.toISOString().slice(0, 10));
  }
  return days;
}

// Vertical bars, one per day; `series` are [field, class] drawn side by side.
function dayChart(svg, rows, series) {
  svg.replaceChildren();
  const width = svg.clientWidth || 480;
  const height = svg.clientHeight || 180;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const byDay = new Map(rows.map((row) => [row.group, row]));
  const days = lastDays(DAYS);
  const top = Math.max(1, ...days.flatMap((day) => series.map(([field]) => (byDay.get(day) || {})[field] || 0)));
  const left = 36, bottom = 18, plotWidth = width - left - 4, plotHeight = height - bottom - 8;
  const slot = plotWidth / days.length;
  const barWidth = Math.max(1, (slot - 2) / series.length);
  svg.append(svgEl("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" }));
  svg.append(svgEl("text", { x: 0, y: 14 }, fmt(top)));
  svg.append(svgEl("text", { x: 0, y: height - bottom }, "0"));
  days.forEach((day, index) => {
    const row = byDay.get(day) || {};
    series.forEach(([field, className], position) => {
      const value = row[field] || 0;
      const barHeight = (value / top) * plotHeight;
      const bar = svgEl("rect", {
        x: left + index * slot + position * barWidth + 1,
        y: height - bottom - barHeight,
        width: barWidth,
        height: barHeight,
        class: `bar ${className}`,
        "data-day": day,
        "data-value": value,
      });
      bar.append(svgEl("title", {}, `${day}: ${fmt(value)} ${field}`));
      svg.append(bar);
    });
    if (index % 7 === days.length % 7) {
      svg.append(svgEl("text", { x: left + index * slot, y: height - 4 }, day.slice(5)));
    }
  });
}

function horizontalBars(container, rows, label) {
  container.replaceChildren();
  const top = Math.max(1, ...rows.map((row) => row.credits));
  if (!rows.length) container.append(el("p", { class: "muted" }, "No calls yet."));
  for (const row of rows.slice(0, 12)) {
    const line = el("div", { class: "hbar", "data-group": row.group });
    const track = el("div", { class: "track" });
    const fill = el("div", { class: "fill" });
    fill.style.width = `${(row.credits / top) * 100}%`;
    track.append(fill);
    line.append(el("span", { class: "name", title: label(row.group) }, label(row.group)), track,
      el("span", { class: "num" }, `${fmt(row.credits)} cr · ${row.requests} req`));
    container.append(line);
  }
}

function budgetCell(spent, budget) {
  const cell = el("td", { class: "num" });
  if (budget === null || budget === undefined) {
    cell.textContent = `${fmt(spent)} cr`;
    return cell;
  }
  const box = el("div", { class: "budget" });
  box.append(el("span", {}, `${fmt(spent)} / ${fmt(budget)} cr`));
  const track = el("div", { class: "track" });
  const fill = el("div", { class: spent >= budget ? "fill over" : "fill" });
  fill.style.width = `${Math.min(100, budget ? (spent / budget) * 100 : 100)}%`;
  track.append(fill);
  box.append(track);
  cell.append(box);
  return cell;
}

function keysTable(keys) {
  const body = $("keys").tBodies[0];
  body.replaceChildren();
  for (const key of keys) {
    const row = el("tr", { "data-key-id": key.id });
    row.append(el("td", {}, key.name), el("td", {}, key.hint),
      el("td", { class: `state-${key.state}` }, key.state),
      budgetCell(key.spent_today, key.daily_budget), budgetCell(key.spent_this_month, key.monthly_budget),
      el("td", {}, key.models.length ? key.models.join(", ") : "all"));
    const actions = el("td");
    if (key.state === "active") {
      const revoke = el("button", { class: "danger", type: "button", "data-revoke": key.id }, "Revoke");
      revoke.addEventListener("click", async () => {
        if (!window.confirm(`Revoke the key of ${key.name}? Its holder is refused from now on.`)) return;
        await api(`/admin/keys/${encodeURIComponent(key.id)}/revoke`, { method: "POST" });
        await refresh();
      });
      actions.append(revoke);
    }
    row.append(actions);
    body.append(row);
  }
}

function latencyTable(rows) {
  const body = $("latency").tBodies[0];
  body.replaceChildren();
  for (const row of rows) {
    const line = el("tr");
    line.append(el("td", {}, row.group || "(none)"), el("td", { class: "num" }, row.requests),
      el("td", { class: "num" }, fmt(row.latency_ms_p50)), el("td", { class: "num" }, fmt(row.latency_ms_p95)),
      el("td", { class: "num" }, fmt(row.upstream_ms_p50)),
      el("td", { class: "num" }, `${row.errors} (${(row.error_rate * 100).toFixed(1)}%)`));
    body.append(line);
  }
}

function balances(report) {
  const body = $("balances").tBodies[0];
  body.replaceChildren();
  let remaining = null;
  for (const balance of report.data) {
    remaining = (remaining || 0) + balance.remaining;
    const line = el("tr");
    line.append(el("td", {}, balance.key_hash), el("td", { class: "num" }, fmt(balance.remaining)),
      el("td", { class: "num" }, fmt(balance.used_credit)), el("td", { class: "num" }, fmt(balance.credit_limit)),
      el("td", {}, new Date(balance.seen_at * 1000).toLocaleString()));
    body.append(line);
  }
  if (!report.data.length) {
    const line = el("tr");
    line.append(el("td", { colspan: "5", class: "muted" }, "Not reported yet (shown after the relay's own keys answer a call)."));
    body.append(line);
  }
  $("tile-balance").textContent = remaining === null ? "–" : fmt(remaining);
}

let lastPerDay = [];

function drawDayCharts() {
  dayChart($("chart-credits-day"), lastPerDay, [["credits", "credits"]]);
  dayChart($("chart-requests-day"), lastPerDay, [["requests", "requests"], ["errors", "errors"]]);
}

async function refresh() {
  const since = lastDays(DAYS)[0];
  const [perDay, perKey, perModel, total, keys, balance] = await Promise.all([
    api(`/admin/usage?group_by=day&since=${since}`),
    api(`/admin/usage?group_by=key&since=${since}`),
    api(`/admin/usage?group_by=model&since=${since}`),
    api(`/admin/usage?since=${since}`),
    api("/admin/keys"),
    api("/admin/balance"),
  ]);
  const names = new Map(keys.data.map((key) => [key.id, key.name]));
  const today = (perDay.data.find((row) => row.group === balance.today)) || {};
  $("period").textContent = `last ${DAYS} days · UTC · ${balance.auth_mode} mode`;
  $("tile-credits-today").textContent = fmt(today.credits);
  $("tile-requests-today").textContent = fmt(today.requests);
  const overall = total.data[0];
  $("tile-error-rate").textContent = overall ? `${(overall.error_rate * 100).toFixed(1)}%` : "–";
  lastPerDay = perDay.data;
  drawDayCharts();
  horizontalBars($("chart-keys"), perKey.data, (id) => names.get(id) || id);
  horizontalBars($("chart-models"), perModel.data, (model) => model || "(none)");
  latencyTable(perModel.data);
  keysTable(keys.data);
  balances(balance);
}

function show(signedIn) {
  $("sign-in").hidden = signedIn;
  $("board").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
}

async function start() {
  if (!token()) { show(false); return; }
  try {
    show(true);
    await refresh();
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    show(false);
    $("sign-in-error").textContent = error.message;
  }
}

function number(value) { return value === "" ? null : Number(value); }

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); show(false); });
  $("create-key").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const spec = {
      name: form.get("name"),
      models: String(form.get("models")).split(",").map((item) => item.trim()).filter(Boolean),
      rate_limit: form.get("rate_limit"),
      daily_budget: number(form.get("daily_budget")),
      monthly_budget: number(form.get("monthly_budget")),
      expires_in_days: number(form.get("expires_in_days")),
    };
    $("create-error").textContent = "";
    try {
      const created = await api("/admin/keys", { method: "POST", body: JSON.stringify(spec) });
      $("new-secret-value").textContent = created.key;
      $("new-secret").hidden = false;
      event.target.reset();
      await refresh();
    } catch (error) {
      $("create-error").textContent = error.message;
    }
  });
  let resizing = null;
  window.addEventListener("resize", () => {  // charts are drawn to the width they have
    clearTimeout(resizing);
    resizing = setTimeout(drawDayCharts, 100);
  });
  start();
});
