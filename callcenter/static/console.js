"use strict";
// The operator's live queue and case view. State comes from the WebSocket: a
// snapshot on every (re)connection, then one event per change, so a dropped
// connection resyncs by reconnecting. Actions go through the REST API and their
// answer (the updated case) is shown at once.

const state = { cases: new Map(), changes: new Map(), selected: null, retry: 500, operators: new Map(), map: null, layers: null,
                config: {} };
const $ = (id) => document.getElementById(id);
const { el, since } = pers;
const URGENT = new Set(["sos", "fall"]);
function operatorName(id) {
  if (id == null) return null;
  if (pers.me && id === pers.me.id) return "you";
  const op = state.operators.get(id);
  return op ? op.display_name : `operator #${id}`;
}

// Position and distance in words (case-words.js): never finer than the fix.
const where = (c) => words.position(c);
const fromHome = (c) => (c.location_label ? c.location_label.from_home : null);

function sortedCases() {
  return queueView.order([...state.cases.values()].filter((c) => c.status !== "resolved"));
}

const cards = new Map();  // case id -> <li>, reused so focus and clicks survive the ticking

function card(c) {
  let li = cards.get(c.id);
  if (!li) {
    li = el("li");
    li.dataset.caseId = c.id;
    li.tabIndex = 0;
    const row = el("div", "row");
    row.append(el("span", "kind"), el("span", "wearer"), el("span", "waiting"));
    li.append(row, el("div", "where"), el("div", "state"));
    li.addEventListener("click", () => select(c.id));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") select(c.id); });
    cards.set(c.id, li);
  }
  li.className = `case kind-${c.kind} ${c.claimed_by == null ? "unclaimed" : "claimed"}` +
                 (state.selected === c.id ? " selected" : "");
  const owner = c.claimed_by == null ? "waiting for an operator" : `taken by ${operatorName(c.claimed_by)}`;
  const flags = [words.status(c.status), owner];
  if (c.press_count > 1) flags.push(`${c.press_count} presses`);
  if (c.wearer_cancelled) flags.push("wearer cancelled");
  if (c.late) flags.push("late");
  for (const w of (c.warnings || [])) flags.push(w);
  li.firstChild.children[1].textContent = c.wearer ? c.wearer.name : c.device_id;
  queueView.decorate(li, c);  // kind (icon and words), waiting time against the targets
  const zone = words.zone(c) || c.reason;  // a safe zone left, or a welfare alarm's reason
  li.children[1].textContent = zone ? `${zone} · ${where(c)}` : where(c);
  li.children[2].textContent = flags.join(" · ");
  return li;
}

function renderQueue() {
  const list = $("queue");
  const open = sortedCases();
  const keep = new Set(open.map((c) => c.id));
  for (const [id, li] of cards) if (!keep.has(id)) { li.remove(); cards.delete(id); }
  open.forEach((c, i) => {
    const li = card(c);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  $("case-count").textContent = open.length;
  $("empty").hidden = open.length > 0;
  const alarm = open.some((c) => URGENT.has(c.kind) && c.claimed_by == null);
  document.body.dataset.alarm = alarm ? "on" : "off";
  if (!alarm) document.body.dataset.sound = "off";
  queueView.rendered(open);
}

function fact(dl, label, value, cls) {
  if (value == null || value === "") return;
  dl.append(el("dt", null, label), el("dd", cls || null, String(value)));
}

// The wearer's photo (same origin or data: URL, per the page's CSP); initials when
// there is none or it does not load.
function renderAvatar(name, url) {
  const box = $("avatar");
  const initials = name.split(/\s+/).map((p) => p[0]).join("").slice(0, 2).toUpperCase();
  if (box.dataset.key === `${name}|${url || ""}`) return;
  box.dataset.key = `${name}|${url || ""}`;
  box.replaceChildren();
  box.textContent = initials;
  if (url) {
    const img = el("img");
    img.alt = `Photo of ${name}`;
    img.onerror = () => { img.remove(); box.textContent = initials; box.removeAttribute("data-photo"); };
    img.onload = () => { box.textContent = ""; box.append(img); box.dataset.photo = "shown"; };
    img.src = url;
  }
}

function renderDetail() {
  const c = state.cases.get(state.selected);
  $("detail").hidden = !c;
  if (!c) return;
  const w = c.wearer || {};
  renderAvatar(w.name || c.device_id, w.photo_url);
  $("detail-title").textContent = `${words.kind(c.kind)} · ${w.name || c.device_id}`;
  const badges = $("detail-badges");
  // "in_call" starts with the call-back's request; only the watch's own report says
  // that a call is connected (callstate.js).
  const connected = c.status === "in_call" && callState.connected(c.timeline || []);
  badges.replaceChildren(el("span", "status", connected ? "in a call (the watch reports it connected)"
                                                          : words.status(c.status)));
  if (c.claimed_by != null) badges.append(el("span", "owner", `taken by ${operatorName(c.claimed_by)}`));
  if (c.wearer_cancelled) badges.append(el("span", "cancelled", "wearer cancelled"));
  if (c.late) badges.append(el("span", "late", "late"));
  if (c.press_count > 1) badges.append(el("span", "presses", `${c.press_count} presses`));
  // What the watch got wrong (a wrong clock, an unusable position): the operator must know.
  for (const w of (c.warnings || [])) badges.append(el("span", "warning", w));

  const facts = $("detail-facts");
  facts.replaceChildren();
  fact(facts, "Age", w.age != null ? `${w.age} years` : null);
  fact(facts, "Language", w.language);
  fact(facts, "Home", w.home_address);
  fact(facts, "Medical notes", w.medical_notes, "medical");
  fact(facts, "Safe zone", words.zone(c));
  fact(facts, "Why", c.reason);
  fact(facts, "Position", where(c));
  if (c.location && c.location.ts) fact(facts, "Fix age", since(new Date(c.location.ts * 1000).toISOString()));
  fact(facts, "Where", c.location_label && c.location_label.address ? c.location_label.text : null);
  fact(facts, "Distance", fromHome(c));
  fact(facts, "Battery", c.battery ? words.reading(`${c.battery.pct}%`, c.battery.at) : null);
  fact(facts, "Heart rate", c.heart_rate != null ? words.reading(`${c.heart_rate} bpm`, c.heart_rate_at || c.opened_at) : null);
  fact(facts, "Network", c.net_profile);
  fact(facts, "Waiting", since(c.opened_at, c.claimed_at));
  fact(facts, "Centre", c.centre ? `${c.centre.name}${c.centre.phone ? ` (${c.centre.phone})` : ""}` : null);
  fact(facts, "Routed", c.routed_at ? `${since(c.opened_at, c.routed_at)} after the alarm` : null);
  fact(facts, "Call-back", words.callBack(c));  // requested until the watch confirms: never "in call"
  fact(facts, "Call", callState.text(c.timeline || []));  // what the watch reported (callstate.js)
  fact(facts, "Locate", words.locate(c));
  fact(facts, "Escalation", c.escalation_level ? `passed on ${c.escalation_level} time(s) unacknowledged` : null,
       c.escalation_level ? "medical" : null);
  fact(facts, "Device", c.device_id);

  const mine = c.claimed_by != null && pers.me && (c.claimed_by === pers.me.id || pers.me.role !== "operator");
  const open = c.status !== "resolved";
  $("claim").disabled = c.claimed_by != null || !open;
  $("claim").firstChild.textContent = c.claimed_by == null ? "Acknowledge " :
    (pers.me && c.claimed_by === pers.me.id ? "Acknowledged by you " : `Taken by ${operatorName(c.claimed_by)} `);
  for (const id of ["call", "locate", "notify", "send-message", "dispatch", "resolve"]) $(id).disabled = !(mine && open);

  const contacts = $("contacts");
  contacts.replaceChildren();
  const { tried } = words.contacts(c);
  for (const k of (w.contacts || [])) {
    const tag = words.contactTag(tried.get(k.id));
    const li = el("li", tried.has(k.id) ? "notified" : null);
    li.append(el("span", "name", `${k.name}${k.relation ? ` (${k.relation})` : ""}`), el("a", "phone", k.phone_display || k.phone));
    li.lastChild.href = `tel:${k.phone}`;
    if (tag) li.append(el("span", "tag", tag));
    contacts.append(li);
  }
  const nb = words.notifyButton(c);
  $("notify").firstChild.textContent = nb.text;
  if (!nb.enabled) $("notify").disabled = true;

  const commands = $("commands");
  commands.replaceChildren();
  for (const cmd of (c.commands || [])) {
    const label = cmd.type === "alert_ack" ? `“${cmd.stage}” shown on the watch` : (cmd.type === "call" ? "call-back" : cmd.type);
    const done = { acked: "acknowledged by the watch", sent: "sent, not yet acknowledged", failed: "the watch could not do it",
                   expired: "not acknowledged in time" }[cmd.status] || cmd.status;
    commands.append(el("li", `cmd-${cmd.status}`, `${label}: ${done}`));
  }

  const tl = $("timeline");
  tl.replaceChildren();
  for (const e of (c.timeline || []).slice().reverse()) {
    const what = e.action === "call_state" ? callState.eventText(e.detail || {}, e.at) : words.event(e, c);
    tl.append(el("li", `ev-${e.action}`, `${new Date(e.at).toLocaleTimeString()} · ${words.actor(e.actor, pers.me)} · ` + what));
  }
  renderMap(c);
}

function renderMap(c) {
  const w = c.wearer || {};
  const caption = [where(c), fromHome(c)].filter(Boolean).join(" · ");
  $("map-caption").textContent = caption;
  if (typeof L === "undefined") return;
  if (!state.map) {
    state.map = L.map("map", { zoomControl: true, attributionControl: !!state.config.tile_url });
    if (state.config.tile_url) {
      L.tileLayer(state.config.tile_url, { maxZoom: 19, attribution: state.config.tile_attribution }).addTo(state.map);
    }
    state.layers = L.layerGroup().addTo(state.map);
  }
  state.layers.clearLayers();
  const points = [];
  const trail = (c.trail || []).map((p) => [p.lat, p.lon]);
  if (trail.length > 1) L.polyline(trail, { color: "#4da3ff", weight: 3 }).addTo(state.layers);
  if (w.home_lat != null) {
    L.circleMarker([w.home_lat, w.home_lon], { radius: 7, color: "#3ecf8e", fillOpacity: 0.9 })
      .bindTooltip("home").addTo(state.layers);
    points.push([w.home_lat, w.home_lon]);
  }
  if (c.location) {
    const p = [c.location.lat, c.location.lon];
    if (c.location.acc) {  // the fix's accuracy: the wearer is somewhere in this circle
      L.circle(p, { radius: c.location.acc, color: "#ff4d4f", weight: 1, fillOpacity: 0.15 })
        .bindTooltip(`accurate to about ${words.about(c.location.acc)} m`).addTo(state.layers);
    }
    L.circleMarker(p, { radius: 8, color: "#ff4d4f", fillOpacity: 1 }).bindTooltip("wearer").addTo(state.layers);
    points.push(p);
  }
  const key = `${c.id}:${points.map((p) => p.join(",")).join(";")}`;
  if (points.length && state.mapKey !== key) {
    state.mapKey = key;
    if (points.length === 1) state.map.setView(points[0], 16);
    else state.map.fitBounds(points, { padding: [30, 30], maxZoom: 17 });
  }
  state.map.invalidateSize();
}

async function select(id) {
  state.selected = id;
  queueView.selected(id);
  renderQueue();
  renderDetail();
  // A read that was under way while the case changed (an action's answer, a live
  // event) may hold the case as it was before: applying it would undo what the
  // operator sees (e.g. an acknowledgement, and with it the action buttons). Such a
  // read is dropped and the case read again.
  const seen = state.changes.get(id) || 0;
  try {
    const c = await pers.api(`/api/cases/${id}`);
    if ((state.changes.get(id) || 0) !== seen) { refreshSelected(); return; }
    upsert(c);
    renderDetail();
  } catch (e) { showError(e); }
}

function changed(id) { state.changes.set(id, (state.changes.get(id) || 0) + 1); }

function showError(e) {
  const p = $("action-error");
  p.textContent = e.message; p.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { p.hidden = true; }, 8000);
}

function upsert(c) {
  const old = state.cases.get(c.id);
  // Live events carry the case without its timeline; keep what we had and refetch.
  if (old && !c.timeline) {
    for (const k of ["timeline", "trail", "commands"]) if (old[k]) c[k] = old[k];
    if (old.wearer && old.wearer.contacts && c.wearer && !c.wearer.contacts) c.wearer.contacts = old.wearer.contacts;
  }
  state.cases.set(c.id, c);
}

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/ws`);
  ws.onopen = () => { state.retry = 500; document.body.dataset.connection = "live"; $("conn").textContent = "live"; };
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "snapshot") {
      const keep = state.cases;
      state.cases = new Map();
      for (const c of ev.cases) { if (keep.has(c.id)) state.cases.set(c.id, keep.get(c.id)); upsert(c); }
      const wanted = /^#case-(\d+)$/.exec(location.hash);  // a link from the supervisor's board
      if (wanted && state.cases.has(Number(wanted[1]))) { state.selected = Number(wanted[1]); }
      if (state.selected != null && state.cases.has(state.selected)) select(state.selected);
      document.body.dataset.synced = "yes";  // the queue shows the server's state (tests wait on it)
    } else if (ev.type === "case") {
      const isNew = !state.cases.has(ev.case.id);
      const partial = !ev.case.timeline;  // live events omit the timeline: fetch it for the open case
      changed(ev.case.id);
      upsert(ev.case);
      if (ev.case.id === state.selected && partial) refreshSelected();
      if (isNew && state.selected == null) { state.selected = ev.case.id; refreshSelected(); }  // its contacts and timeline too
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
  state.ws = ws;
}

let refreshTimer = null;
function refreshSelected() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { if (state.selected != null) select(state.selected); }, 150);
}

async function act(path, body) {
  if (state.selected == null) return;
  try {
    const c = await pers.api(`/api/cases/${state.selected}/${path}`,
                             {method: "POST", body: body === undefined ? undefined : JSON.stringify(body)});
    changed(c.id);
    upsert(c);
    renderQueue();
    renderDetail();
    return c;
  } catch (e) { showError(e); }
}

const actions = {
  claim: () => act("claim"),
  call: () => act("call", {}),
  locate: () => act("locate"),
  notify: () => act("notify-next-contact"),
  message: async () => {
    const text = $("message-text").value.trim();
    if (!text) { $("message-text").focus(); return; }
    if (await act("message", {text})) $("message-text").value = "";
  },
  dispatch: () => act("dispatch", {service: $("dispatch-service").value, reference: $("dispatch-ref").value || null}),
  note: async () => {
    const text = $("note").value.trim();
    if (!text) { $("note").focus(); return; }
    if (await act("notes", {text})) { $("note").value = ""; $("note").dispatchEvent(new Event("input")); }
  },
  resolve: async () => {
    const outcome = $("outcome").value;
    if (!outcome) { showError(new Error("choose an outcome first")); $("outcome").focus(); return; }
    if (await act("resolve", {outcome, note: $("note").value || null})) { $("note").value = ""; $("note").dispatchEvent(new Event("input")); $("outcome").value = ""; }
  },
};

// A short beep every two seconds while an SOS or fall waits unclaimed. Browsers
// allow sound only after the operator has interacted with the page; the flash
// works regardless.
let audio = null;
function beep() {
  if (document.body.dataset.alarm !== "on") return;
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.2;
    o.connect(g); g.connect(audio.destination); o.start(); o.stop(audio.currentTime + 0.25);
    document.body.dataset.sound = audio.state === "running" ? "on" : "blocked";  // suspended until a gesture
  } catch (e) { document.body.dataset.sound = "blocked"; }
}

function onKey(ev) {
  if (["INPUT", "SELECT", "TEXTAREA"].includes(ev.target.tagName) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const map = { a: actions.claim, c: actions.call, l: actions.locate, n: actions.notify, r: actions.resolve,
                m: () => $("message-text").focus() };
  if (map[ev.key]) { ev.preventDefault(); map[ev.key](); return; }
  if (ev.key === "j" || ev.key === "k") {
    const ids = sortedCases().map((c) => c.id);
    if (!ids.length) return;
    const i = ids.indexOf(state.selected);
    select(ids[ev.key === "j" ? Math.min(i + 1, ids.length - 1) : Math.max(i - 1, 0)]);
  }
}

async function main() {
  const me = await pers.whoami();
  $("operator-name").textContent = `${me.display_name} (${me.role})`;
  $("supervisor-link").hidden = me.role === "operator";
  $("admin-link").hidden = me.role !== "admin";
  try {
    for (const op of await pers.api("/api/operators")) state.operators.set(op.id, op);
    state.config = await pers.api("/api/console/config");
  } catch (e) { /* names fall back to ids */ }
  $("claim").addEventListener("click", actions.claim);
  $("call").addEventListener("click", actions.call);
  $("locate").addEventListener("click", actions.locate);
  $("notify").addEventListener("click", actions.notify);
  $("send-message").addEventListener("click", actions.message);
  $("dispatch").addEventListener("click", actions.dispatch);
  $("add-note").addEventListener("click", actions.note);
  $("resolve").addEventListener("click", actions.resolve);
  $("message-text").addEventListener("keydown", (e) => { if (e.key === "Enter") actions.message(); });
  $("note").addEventListener("keydown", (e) => { if (e.key === "Enter") actions.note(); });
  $("logout").addEventListener("click", pers.logout);
  document.addEventListener("keydown", onKey);
  connect();
  setInterval(() => {
    renderQueue();
    if (state.selected != null) {
      // Only the ticking figures change every second; do not rebuild the map.
      const c = state.cases.get(state.selected);
      if (c) renderDetail();
    }
  }, 1000);
  setInterval(beep, 2000);
}

main().catch(() => {});
