"use strict";
// The live queue. State comes from the WebSocket: a snapshot on every
// (re)connection, then one event per change, so a dropped connection resyncs
// by reconnecting.

const state = { me: null, csrf: null, cases: new Map(), selected: null, ws: null, retry: 500 };
const $ = (id) => document.getElementById(id);
const URGENT = new Set(["sos", "fall"]);

async function api(path, options = {}) {
  const headers = Object.assign({"Content-Type": "application/json"}, options.headers || {});
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch(path, Object.assign({credentials: "same-origin"}, options, {headers}));
  if (res.status === 401) { window.location.assign("/login"); throw new Error("not logged in"); }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new Error((data && typeof data.detail === "string") ? data.detail : `HTTP ${res.status}`);
  return data;
}

function since(iso) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  const m = Math.floor(s / 60);
  return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

function where(c) {
  if (!c.location) return "no position yet";
  const l = c.location;
  return `${l.lat.toFixed(5)}, ${l.lon.toFixed(5)} ±${l.acc != null ? Math.round(l.acc) : "?"} m (${l.src})`;
}

function sortedCases() {
  return [...state.cases.values()]
    .filter((c) => c.status !== "resolved")
    .sort((a, b) => a.priority - b.priority || Date.parse(a.opened_at) - Date.parse(b.opened_at));
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  const open = sortedCases();
  for (const c of open) {
    const li = el("li", `case kind-${c.kind} ${c.claimed_by == null ? "unclaimed" : "claimed"}`);
    li.dataset.caseId = c.id;
    if (state.selected === c.id) li.classList.add("selected");
    const row = el("div", "row");
    row.append(el("span", "kind", c.kind), el("span", "wearer", c.wearer ? c.wearer.name : c.device_id),
               el("span", "waiting", since(c.opened_at)));
    li.append(row, el("div", "where", where(c)),
              el("div", "state", `${c.status}${c.press_count > 1 ? ` · ${c.press_count} presses` : ""}` +
                                 `${c.wearer_cancelled ? " · wearer cancelled" : ""}${c.late ? " · late" : ""}`));
    li.addEventListener("click", () => select(c.id));
    list.append(li);
  }
  $("case-count").textContent = open.length;
  $("empty").hidden = open.length > 0;
  const alarm = open.some((c) => URGENT.has(c.kind) && c.claimed_by == null);
  document.body.dataset.alarm = alarm ? "on" : "off";
}

function renderDetail() {
  const c = state.cases.get(state.selected);
  $("detail").hidden = !c;
  if (!c) return;
  $("detail-title").textContent = `${c.kind.toUpperCase()} · ${c.wearer ? c.wearer.name : c.device_id}`;
  const badges = $("detail-badges");
  badges.replaceChildren(el("span", "status", c.status));
  if (c.wearer_cancelled) badges.append(el("span", "cancelled", "wearer cancelled"));
  if (c.late) badges.append(el("span", "late", "late"));
  const facts = $("detail-facts");
  facts.replaceChildren();
  const w = c.wearer || {};
  const rows = [["Wearer", w.name], ["Age", w.age], ["Language", w.language], ["Home", w.home_address],
                ["Medical notes", w.medical_notes], ["Position", where(c)], ["Battery", c.batt_pct != null ? `${c.batt_pct}%` : null],
                ["Heart rate", c.heart_rate != null ? `${c.heart_rate} bpm` : null], ["Network", c.net_profile],
                ["Presses", c.press_count], ["Waiting", since(c.opened_at)], ["Device", c.device_id]];
  for (const [k, v] of rows) {
    if (v == null || v === "") continue;
    facts.append(el("dt", null, k), el("dd", null, String(v)));
  }
  $("claim").disabled = c.claimed_by != null || c.status === "resolved";
  $("claim").textContent = c.claimed_by == null ? "Acknowledge" :
    (state.me && c.claimed_by === state.me.id ? "Acknowledged by you" : "Taken by another operator");
  $("resolve").disabled = c.status === "resolved";
  const tl = $("timeline");
  tl.replaceChildren();
  for (const e of (c.timeline || [])) {
    tl.append(el("li", null, `${new Date(e.at).toLocaleTimeString()} · ${e.actor} · ${e.action}`));
  }
}

async function select(id) {
  state.selected = id;
  renderQueue();
  renderDetail();
  try {
    const full = await api(`/api/cases/${id}`);
    state.cases.set(full.id, full);
    renderDetail();
  } catch (e) { showError(e); }
}

function showError(e) {
  const p = $("action-error");
  p.textContent = e.message; p.hidden = false;
  setTimeout(() => { p.hidden = true; }, 6000);
}

function upsert(c) {
  const old = state.cases.get(c.id);
  if (old && old.timeline && !c.timeline) c.timeline = old.timeline;
  state.cases.set(c.id, c);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/ws`);
  state.ws = ws;
  ws.onopen = () => { state.retry = 500; document.body.dataset.connection = "live"; $("conn").textContent = "live"; };
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "snapshot") {
      state.cases = new Map(ev.cases.map((c) => [c.id, c]));
    } else if (ev.type === "case") {
      upsert(ev.case);
    } else { return; }
    renderQueue();
    renderDetail();
  };
  ws.onclose = (ev) => {
    document.body.dataset.connection = "lost";
    $("conn").textContent = "connection lost, reconnecting…";
    if (ev.code === 4401) { window.location.assign("/login"); return; }
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 8000);
  };
}

async function claim() {
  if (state.selected == null) return;
  try { upsert(await api(`/api/cases/${state.selected}/claim`, {method: "POST"})); renderQueue(); renderDetail(); }
  catch (e) { showError(e); }
}

async function resolve() {
  if (state.selected == null) return;
  const body = JSON.stringify({outcome: $("outcome").value, note: $("note").value || null});
  try {
    upsert(await api(`/api/cases/${state.selected}/resolve`, {method: "POST", body}));
    $("note").value = ""; renderQueue(); renderDetail();
  } catch (e) { showError(e); }
}

// A short beep while an SOS or fall waits unclaimed. Browsers allow sound only
// after the operator has interacted with the page; the flash works regardless.
let audio = null;
function beep() {
  if (document.body.dataset.alarm !== "on") return;
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.15;
    o.connect(g); g.connect(audio.destination); o.start(); o.stop(audio.currentTime + 0.25);
  } catch (e) { /* no audio device: the flash remains */ }
}

async function main() {
  const me = await api("/api/me");
  state.me = me; state.csrf = me.csrf_token;
  $("operator-name").textContent = `${me.display_name} (${me.role})`;
  $("claim").addEventListener("click", claim);
  $("resolve").addEventListener("click", resolve);
  $("logout").addEventListener("click", async () => {
    try { await api("/api/auth/logout", {method: "POST"}); } finally { window.location.assign("/login"); }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT") return;
    if (ev.key === "a") claim();
    if (ev.key === "r") resolve();
    if (ev.key === "j" || ev.key === "k") {
      const ids = sortedCases().map((c) => c.id);
      if (!ids.length) return;
      const i = ids.indexOf(state.selected);
      select(ids[ev.key === "j" ? Math.min(i + 1, ids.length - 1) : Math.max(i - 1, 0)]);
    }
  });
  connect();
  setInterval(() => { renderQueue(); if (state.selected != null) renderDetail(); }, 1000);
  setInterval(beep, 2000);
}

main().catch(() => {});
