"use strict";
// The supervisor's board: every open case of the tenant (from the same live feed
// as the queue), the operators' presence, the SLA figures and the devices that
// need attention. The SLA and presence are re-read from the API after every
// case event (debounced) and on a timer, so the figures move without a reload.

const sup = { cases: new Map(), operators: new Map(), retry: 500, timers: {} };
const $ = (id) => document.getElementById(id);
const { el, since } = pers;
const STATUS = { new: "new", routed: "waiting", claimed: "claimed", in_call: "call-back requested", resolved: "resolved" };

function opName(id) {
  if (id == null) return null;
  const o = sup.operators.get(id);
  return o ? o.display_name : `operator #${id}`;
}

function fmtS(s) {
  if (s == null) return "–";
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)}m ${String(Math.round(s % 60)).padStart(2, "0")}s`;
}

function pct(w) {
  if (!w || w.pct == null) return "–";
  return `${w.pct}%`;
}

function cell(tr, text, cls) {
  const td = el("td", cls || null, text == null ? "" : String(text));
  tr.append(td);
  return td;
}

// --- the board -------------------------------------------------------------------------------
const rows = new Map();  // case id -> <tr>, reused so a focused link survives the ticking

function boardRow(c) {
  let tr = rows.get(c.id);
  if (!tr) {
    tr = el("tr");
    tr.dataset.caseId = c.id;
    for (let i = 0; i < 8; i++) tr.append(el("td"));
    const link = el("a");
    link.href = `/#case-${c.id}`;
    link.title = "Open the case in the queue";
    tr.children[2].append(link);
    rows.set(c.id, tr);
  }
  tr.className = `kind-${c.kind} ${c.claimed_by == null ? "unclaimed" : "claimed"}`;
  const td = tr.children;
  const set = (i, text, cls) => { td[i].textContent = text; td[i].className = cls || ""; };
  set(0, String(c.priority));
  set(1, c.kind.toUpperCase(), "kind");
  td[2].firstChild.textContent = c.wearer ? c.wearer.name : c.device_id;
  set(3, STATUS[c.status] || c.status, "status");
  set(4, c.claimed_by == null ? "nobody yet" : opName(c.claimed_by), c.claimed_by == null ? "bad owner" : "owner");
  const waited = since(c.opened_at, c.claimed_at);
  set(5, c.claimed_at ? `${waited} to claim` : waited, c.claimed_at ? "waiting" : "waiting ticking");
  set(6, c.centre ? c.centre.name : "–");
  set(7, c.escalation_level ? `level ${c.escalation_level}` : "–", c.escalation_level ? "bad" : "");
  return tr;
}

function renderBoard() {
  const tbody = $("board").tBodies[0];
  const open = [...sup.cases.values()].filter((c) => c.status !== "resolved")
    .sort((a, b) => a.priority - b.priority || Date.parse(a.opened_at) - Date.parse(b.opened_at));
  const keep = new Set(open.map((c) => c.id));
  for (const [id, tr] of rows) if (!keep.has(id)) { tr.remove(); rows.delete(id); }
  open.forEach((c, i) => {
    const tr = boardRow(c);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  $("board-count").textContent = open.length;
  $("board-empty").hidden = open.length > 0;
}

// --- SLA ---------------------------------------------------------------------------------------
function slaRow(tbody, first, b) {
  const tr = el("tr");
  cell(tr, first);
  cell(tr, b.alarms + (b.pending ? ` (+${b.pending} waiting)` : ""));
  const w10 = b.within_10s, w40 = b.within_40s;
  cell(tr, w10 ? `${pct(w10)} (${w10.count})` : "–", w10 && w10.pct != null ? (w10.met ? "ok" : "bad") : null);
  cell(tr, w40 ? `${pct(w40)} (${w40.count})` : "–", w40 && w40.pct != null ? (w40.met ? "ok" : "bad") : null);
  cell(tr, fmtS(b.median_time_to_claim_s));
  tbody.append(tr);
}

function renderSla(r) {
  const t = r.total;
  const last = new Date(Date.parse(r.to) - 86400000).toISOString().slice(0, 10);
  $("sla-period").textContent = `${r.from.slice(0, 10)} – ${last} (UTC days)`;
  $("sla-alarms").textContent = t.alarms;
  $("sla-pending").textContent = t.pending;
  for (const target of r.targets) {
    const key = `within_${Math.round(target.within_s)}s`;
    const w = t[key];
    const id = `sla-${Math.round(target.within_s)}`;
    if (!$(id) || !w) continue;
    $(`${id}-target`).textContent = target.pct;
    $(`${id}-pct`).textContent = pct(w);
    $(`${id}-count`).textContent = `${w.count} of ${t.alarms}`;
    $(id).dataset.met = w.pct == null ? "none" : String(w.met);
  }
  $("sla-median").textContent = `${fmtS(t.median_time_to_claim_s)} / ${fmtS(t.max_time_to_claim_s)}`;
  const days = $("sla-days").tBodies[0];
  days.replaceChildren();
  for (const d of r.by_day.slice().reverse()) slaRow(days, d.day, d);
  const ops = $("sla-operators").tBodies[0];
  ops.replaceChildren();
  for (const o of r.by_operator) {
    slaRow(ops, o.operator_id == null ? "never claimed" : (opName(o.operator_id) || o.username), o);
    ops.lastChild.dataset.operatorId = o.operator_id == null ? "" : o.operator_id;
  }
}

async function loadSla() {
  try {
    renderSla(await pers.api("/api/supervisor/sla"));
    $("sla-error").hidden = true;
  } catch (e) { $("sla-error").textContent = `SLA figures unavailable: ${e.message}`; $("sla-error").hidden = false; }
}

// --- operators and devices ----------------------------------------------------------------------
async function loadOperators() {
  try {
    const ops = await pers.api("/api/supervisor/operators");
    sup.operators = new Map(ops.map((o) => [o.id, o]));
    const tbody = $("operators").tBodies[0];
    tbody.replaceChildren();
    for (const o of ops) {
      const tr = el("tr", o.active ? null : "inactive");
      tr.dataset.operatorId = o.id;
      cell(tr, o.display_name);
      cell(tr, o.role);
      cell(tr, !o.active ? "deactivated" : (o.present ? "online" : "away"), o.present ? "ok presence" : "presence");
      cell(tr, o.last_seen_at ? `${since(o.last_seen_at)} ago` : "never");
      cell(tr, o.open_cases);
      tbody.append(tr);
    }
    renderBoard();
  } catch (e) { /* keep the last list */ }
}

// Why a device is listed, in words the supervisor can act on.
function deviceReason(d) {
  const why = [];
  if (d.problems.includes("offline")) why.push(`offline${d.last_seen ? ` since ${new Date(d.last_seen).toLocaleString()}` : ""}`);
  if (d.problems.includes("suspect")) why.push("possibly offline: silent or its connection dropped");
  if (d.problems.includes("low_battery")) why.push(`battery low (${d.batt_pct}%): ask the wearer to charge it`);
  return why.join("; ") || "–";
}

async function loadDevices() {
  try {
    const r = await pers.api("/api/supervisor/devices");
    $("low-batt-pct").textContent = r.low_battery_pct;
    const tbody = $("devices").tBodies[0];
    tbody.replaceChildren();
    for (const d of r.items) {
      const tr = el("tr");
      tr.dataset.deviceId = d.id;
      cell(tr, d.id);
      cell(tr, d.wearer_name || "unassigned");
      const presence = d.presence === "suspect" ? "possibly offline" : d.presence;
      cell(tr, presence, d.presence === "offline" || d.presence === "suspect" ? "bad presence" : "presence");
      const low = d.problems.includes("low_battery");
      const at = d.batt_at ? ` at ${new Date(d.batt_at).toTimeString().slice(0, 5)}` : "";  // when it was read
      cell(tr, d.batt_pct == null ? "–" : `${d.batt_pct}%${low ? " low" : ""}${at}`, low ? "bad battery" : "battery");
      cell(tr, d.last_seen ? `${since(d.last_seen)} ago` : "never");
      cell(tr, d.fw || "–");
      cell(tr, deviceReason(d), "reason");
      tbody.append(tr);
    }
    $("devices-count").textContent = r.items.length;
    $("devices-empty").hidden = r.items.length > 0;
  } catch (e) { /* keep the last list */ }
}

async function loadQuarantine() {
  try {
    const items = await pers.api("/api/quarantine?limit=50");
    const tbody = $("quarantine").tBodies[0];
    tbody.replaceChildren();
    for (const d of items) {
      const tr = el("tr");
      tr.dataset.deadLetter = d.id;
      cell(tr, `${since(d.last_at)} ago`);
      cell(tr, d.device_id || "–");
      cell(tr, `${d.reason}: ${d.detail || ""}`.slice(0, 160));
      cell(tr, String(d.count));
      cell(tr, d.case_id != null ? `#${d.case_id}` : "–");
      cell(tr, d.payload.slice(0, 120));
      tbody.append(tr);
    }
    $("quarantine-count").textContent = items.length;
    $("quarantine-empty").hidden = items.length > 0;
  } catch (e) { /* keep the last list */ }
}

// Forwarding to the alarm centres' receivers that failed (docs/forwarding.md): what the
// server still has unacknowledged and alerted on, then each failure as it is reported live.
function forwardLine(f, at) {
  const what = f.event === "poll" ? "supervision poll" : f.event === "test" ? "test report" : `${f.event} alarm`;
  const li = el("li", null, `${at} · ${f.receiver}: ${what}${f.case_id != null ? ` of case #${f.case_id}` : ""} ` +
                            `not acknowledged: ${f.reason || f.last_error || "no answer"}` +
                            `${f.retrying === false || f.status === "failed" ? " (given up)" : " (still trying)"}`);
  $("forwarding").prepend(li);
  $("forwarding-box").hidden = false;
}

async function loadForwarding() {
  try {
    const items = await pers.api("/api/supervisor/forwarding");
    for (const f of items.filter((x) => x.alerted).reverse()) forwardLine(f, `${since(f.created_at)} ago`);
  } catch (e) { /* the live feed still reports new failures */ }
}

// At most one reload per `ms` however busy the feed: a burst of case events costs one request, and a
// steady stream cannot postpone the refresh forever (a debounce could).
function soon(name, fn, ms = 400) {
  if (sup.timers[name]) return;
  sup.timers[name] = setTimeout(() => { sup.timers[name] = null; fn(); }, ms);
}

// --- live feed ----------------------------------------------------------------------------------
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/ws`);
  ws.onopen = () => { sup.retry = 500; document.body.dataset.connection = "live"; $("conn").textContent = "live"; };
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "snapshot") {
      sup.cases = new Map(ev.cases.map((c) => [c.id, c]));
      document.body.dataset.synced = "yes";  // the board shows the server's state again
      soon("sla", loadSla); soon("ops", loadOperators);
    } else if (ev.type === "case") {
      const known = sup.cases.get(ev.case.id);
      sup.cases.set(ev.case.id, Object.assign(known || {}, ev.case));
      soon("sla", loadSla); soon("ops", loadOperators);
      if ((ev.case.flags || []).length) soon("quarantine", loadQuarantine);
      if (ev.case.battery) soon("devices", loadDevices);  // an alarm's battery reading may make a watch need attention
    } else if (ev.type === "escalation") {
      const c = sup.cases.get(ev.case_id);
      const who = c && c.wearer ? c.wearer.name : `case #${ev.case_id}`;
      const li = el("li", null, `${new Date().toLocaleTimeString()} · ${who}: unclaimed for ${Math.round(ev.unclaimed_s || 0)} s, ` +
                                `escalated to level ${ev.level}${ev.to_centre ? " (moved to a backup centre)" : " (no backup centre left)"}`);
      $("escalations").prepend(li);
      $("escalations-box").hidden = false;
      return;
    } else if (ev.type === "forward_failed") {
      forwardLine(ev, new Date().toLocaleTimeString());
      return;
    } else if (ev.type === "vsim_low") {
      if (window.vsimLow) window.vsimLow(ev);  // supervisor-vsim.js
      return;
    } else if (ev.type === "device") {
      soon("devices", loadDevices);
      return;
    } else { return; }
    renderBoard();
  };
  ws.onclose = (ev) => {
    document.body.dataset.connection = "lost";
    $("conn").textContent = "connection lost, reconnecting…";
    if (ev.code === 4401) { window.location.assign("/login"); return; }
    setTimeout(connect, sup.retry);
    sup.retry = Math.min(sup.retry * 2, 8000);
  };
}

async function main() {
  const me = await pers.whoami();
  $("operator-name").textContent = me.display_name.includes(me.role) ? me.display_name : `${me.display_name} (${me.role})`;
  $("admin-link").hidden = me.role !== "admin";
  $("logout").addEventListener("click", pers.logout);
  await Promise.all([loadOperators(), loadSla(), loadDevices(), loadQuarantine(), loadForwarding()]);
  connect();
  setInterval(renderBoard, 1000);  // the waiting times tick
  setInterval(loadSla, 15000);     // unclaimed alarms become counted once their longest target passes
  setInterval(loadOperators, 15000);
  setInterval(loadDevices, 20000);
  setInterval(loadQuarantine, 30000);
}

main().catch(() => {});
