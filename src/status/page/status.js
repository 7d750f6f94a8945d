// The status page: polls the JSON API once a second and redraws. No framework, no
// external resources: login nodes are often offline.
"use strict";
const TOKEN = document.querySelector('meta[name="hyperion-token"]').content;
const STATES = ["queued", "running", "done", "failed", "held", "cancelled"];
// The token came in the address for the first load; the cookie carries it now.
if (location.search.includes("token=")) history.replaceState(null, "", "/");

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const child of children) node.append(child === null || child === undefined ? "" : child);
  return node;
}
const secs = (s) => s === null || s === undefined ? "" : s < 60 ? s.toFixed(1) + " s" : s < 3600 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(2) + " h";
const short = (service) => service.replace(/^service-/, "");

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "X-Hyperion-Token": TOKEN, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function act(path, body, button) {
  if (button) button.disabled = true;
  try { await api(path, body); } catch (err) { alert(err.message); }
  refresh();
}

function drawChart(progress, total, now) {
  const canvas = $("chart"), ctx = canvas.getContext("2d");
  const ratio = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * ratio; canvas.height = h * ratio; ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, w, h);
  const left = 44, bottom = 22, top = 8, right = 10, pw = w - left - right, ph = h - top - bottom;
  const tmax = Math.max(now, 1), ymax = Math.max(total, 1);
  ctx.strokeStyle = "#e2e6ec"; ctx.fillStyle = "#6b7585"; ctx.font = "11px system-ui, sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + pw, y); ctx.stroke();
    ctx.fillText(String(Math.round((ymax * i) / 4)), 4, y + 4);
  }
  ctx.fillText("0 s", left, h - 6); ctx.fillText(secs(tmax), left + pw - 40, h - 6);
  ctx.strokeStyle = "#2e9d5b"; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(left, top + ph);
  let last = 0;
  for (const [t, done] of progress) {
    const x = left + (pw * t) / tmax, y = top + ph - (ph * done) / ymax;
    ctx.lineTo(x, top + ph - (ph * last) / ymax); ctx.lineTo(x, y); last = done;
  }
  ctx.lineTo(left + pw, top + ph - (ph * last) / ymax); ctx.stroke();
}

function render(status, active) {
  const run = status.run, counts = run.counts;
  const total = STATES.reduce((sum, s) => sum + (counts[s] || 0), 0) + run.tasks_unlisted;
  $("program").textContent = run.program;
  const started = run.started_unix ? new Date(run.started_unix * 1000).toLocaleString() : "";
  const elapsed = run.started_unix ? Date.now() / 1000 - run.started_unix : run.now;
  $("run-line").textContent = `${run.args.join(" ")} · launcher ${run.launcher || "?"} · started ${started} · ${secs(elapsed)} ago`;
  $("count-done").textContent = counts.done || 0;
  $("count-total").textContent = total;
  $("counts").replaceChildren(...STATES.map((s) => el("span", { class: "count state-" + s, id: "count-" + s + "-chip" }, `${s} ${counts[s] || 0}`)));
  drawChart(status.progress, total, Math.max(run.now, elapsed));

  $("held-count").textContent = status.held.length;
  $("held-empty").hidden = status.held.length > 0;
  $("held").hidden = status.held.length === 0;
  $("retry-all").hidden = status.held.length < 2;
  $("held").tBodies[0].replaceChildren(...status.held.map((h) => el("tr", { "data-id": h.id },
    el("td", { class: "mono" }, short(h.id)), el("td", { class: "error" }, h.error),
    el("td", {}, "at " + secs(h.since)), el("td", { class: "mono" }, h.tasks.join(", ")),
    el("td", {}, el("button", { class: "retry", "data-id": h.id, onclick: (e) => act("/api/held/retry", { id: h.id }, e.target) }, "retry"), " ",
      el("button", { class: "cancel", "data-id": h.id, onclick: (e) => act("/api/held/cancel", { id: h.id }, e.target) }, "cancel")))));

  $("workers-count").textContent = status.workers.length;
  $("workers-alive").textContent = status.workers.filter((w) => w.state === "connected").length;
  $("workers").tBodies[0].replaceChildren(...status.workers.map((w) => el("tr", { "data-service": w.service },
    el("td", { class: "mono" }, short(w.service)), el("td", {}, w.host || ""), el("td", { class: "mono" }, w.job || ""),
    el("td", {}, el("span", { class: "pill state-" + w.state }, w.state)), el("td", {}, "at " + secs(w.since)),
    el("td", { class: "mono" }, w.task || ""),
    el("td", {}, w.log_file ? el("button", { class: "small", onclick: () => showLog(w.service) }, "log") : ""))));

  $("active-count").textContent = active.length;
  $("tasks").tBodies[0].replaceChildren(...active.map((t) => el("tr", { "data-key": t.key },
    el("td", { class: "mono" }, t.key), el("td", {}, t.label), el("td", {}, el("span", { class: "pill state-" + t.state }, t.state)),
    el("td", {}, t.attempts), el("td", { class: "mono" }, t.worker ? short(t.worker) : ""),
    el("td", {}, t.state === "running" && t.started_at !== null ? secs(run.now - t.started_at) : ""),
    el("td", { class: "error" }, t.error || ""),
    el("td", {}, t.state === "cancelled" ? "" : el("button", { class: "cancel small", onclick: (e) => act("/api/tasks/cancel", { key: t.key }, e.target) }, "cancel")))));
}

async function showLog(service) {
  const pre = $("log");
  try {
    const log = await api("/api/workers/log?service=" + encodeURIComponent(service) + "&lines=200");
    pre.textContent = `${log.file}\n\n${log.lines.join("\n")}`;
  } catch (err) { pre.textContent = err.message; }
  pre.hidden = false;
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const [status, active] = await Promise.all([api("/api/status"), api("/api/tasks?state=active&limit=200")]);
    render(status, active);
    $("link-state").textContent = "live"; $("link-state").className = "badge ok";
  } catch (err) {
    $("link-state").textContent = "master unreachable"; $("link-state").className = "badge lost";
  } finally { busy = false; }
}
$("retry-all").onclick = (e) => act("/api/held/retry-all", {}, e.target);
refresh();
setInterval(refresh, 1000);
