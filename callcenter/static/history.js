"use strict";
// Closed cases: search by wearer, day and outcome, and each case's outcome report
// (response times, calls, notifications, operator actions, timeline) with a
// print view (the browser's print dialog also saves it as PDF) and a CSV export.
// The report opened is in the URL (#case-<id>), so it can be linked and reloaded.

const hist = { outcomes: {} };
const $h = (id) => document.getElementById(id);
const WORDS = {
  opened: "alarm opened", routed: "routed to a call centre", alert_joined: "pressed again", claimed: "acknowledged",
  wearer_cancelled: "wearer says OK", command_acked: "watch confirmed", call_back: "call back requested",
  in_call: "in call", call_ended: "call ended", locate: "locate requested", message: "message sent",
  contact_notified: "contact notified", contact_not_reached: "contact not reached",
  call_state: "call reported by the watch", dispatched: "dispatch recorded", note: "note", resolved: "resolved",
  escalated: "escalated to another centre", supervisors_alerted: "supervisors alerted", reminder: "reminder",
  notification_delivery: "notification delivery", alarm_flagged: "watch sent bad data",
  keysafe_viewed: "key-safe code viewed", unrouted: "no call centre available",
};
const KINDS = { sos: "SOS", fall: "Fall", geofence: "Left safe zone", low_battery: "Low battery",
                offline: "Watch offline", not_worn: "Watch not worn", missed_dose: "Missed dose",
                checkin: "No answer to check-in", inactivity: "No movement" };

function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }
function secs(s) { return s == null ? "–" : (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`); }

function detailText(e) {
  const d = e.detail || {};
  if (e.action === "contact_notified" || e.action === "contact_not_reached") {
    const how = (d.reached || []).map((r) => r.channel).join(", ");
    const why = d.error || (d.failed || []).map((f) => `${f.channel}: ${f.reason}`).join("; ");
    return `${d.contact || d.name || ""} ${d.phone || ""}${how ? ` by ${how}` : ""}${!how && why ? ` (${why})` : ""}`.trim();
  }
  if (e.action === "call_state") return `${d.state || ""}${d.end ? ` (${d.end.replace("_", " ")})` : ""}${d.dur != null ? ` after ${secs(d.dur)}` : ""}`;
  if (e.action === "dispatched") return `${d.service || ""}${d.reference ? ` ref ${d.reference}` : ""}`;
  return d.text || d.note || d.outcome || d.number || d.reference || d.status || "";
}

function eventLine(e) {
  const extra = detailText(e);
  return `${when(e.at)} · ${e.actor.replace(/^operator:/, "")} · ${WORDS[e.action] || e.action.replace(/_/g, " ")}` +
         (extra ? ` · ${extra}` : "");
}

function fill(list, events, none) {
  list.replaceChildren();
  for (const e of events) list.append(pers.el("li", null, eventLine(e)));
  if (!events.length) list.append(pers.el("li", "muted", none));
}

function fact(dl, label, value) {
  dl.append(pers.el("dt", null, label), pers.el("dd", null, value == null || value === "" ? "–" : String(value)));
}

async function openReport(id) {
  try {
    const r = await pers.api(`/api/cases/${id}/report`);
    const c = r.case;
    $h("report-title").textContent = `Outcome report · case ${c.id} · ${c.wearer_name || c.device_id}`;
    const facts = $h("report-facts");
    facts.replaceChildren();
    fact(facts, "Alarm", KINDS[c.kind] || c.kind);
    fact(facts, "Watch", c.device_id);
    fact(facts, "Opened", when(c.opened_at));
    fact(facts, "Acknowledged", when(c.claimed_at));
    fact(facts, "By", c.claimed_by);
    fact(facts, "Resolved", when(c.resolved_at));
    fact(facts, "Outcome", hist.outcomes[c.outcome] || c.outcome);
    const times = $h("report-times");
    times.replaceChildren();
    fact(times, "Answered after", secs(r.response_times.to_claim_s));
    fact(times, "First call after", secs(r.response_times.to_first_call_s));
    fact(times, "Resolved after", secs(r.response_times.to_resolution_s));
    fill($h("report-calls"), r.calls, "No call.");
    fill($h("report-notifications"), r.notifications, "No notification.");
    fill($h("report-actions"), r.operator_actions, "No operator action.");
    fill($h("report-timeline"), r.timeline, "Nothing recorded.");
    $h("csv").href = `/api/cases/${c.id}/report.csv`;
    $h("report").hidden = false;
    if (location.hash !== `#case-${c.id}`) history.replaceState(null, "", `/history#case-${c.id}`);
  } catch (e) { $h("search-error").textContent = `Report unavailable: ${e.message}`; $h("search-error").hidden = false; }
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams();
  for (const [key, id] of [["wearer", "q-wearer"], ["from", "q-from"], ["to", "q-to"], ["outcome", "q-outcome"]]) {
    if ($h(id).value) q.set(key, $h(id).value);
  }
  try {
    const r = await pers.api(`/api/history/cases?${q}`);
    $h("search-error").hidden = true;
    const tbody = $h("results").tBodies[0];
    tbody.replaceChildren();
    for (const c of r.items) {
      const tr = pers.el("tr");
      for (const text of [when(c.opened_at), c.wearer_name || c.device_id, KINDS[c.kind] || c.kind,
                          hist.outcomes[c.outcome] || c.outcome, c.claimed_by || "–", secs(c.time_to_claim_s)]) {
        tr.append(pers.el("td", null, text));
      }
      const open = pers.el("button", null, `Report ${c.id}`);
      open.type = "button";
      open.addEventListener("click", () => openReport(c.id));
      const td = pers.el("td");
      td.append(open);
      tr.append(td);
      tbody.append(tr);
    }
    $h("results-empty").hidden = r.items.length > 0;
  } catch (e) { $h("search-error").textContent = e.message; $h("search-error").hidden = false; }
}

async function main() {
  const me = await pers.whoami();
  $h("operator-name").textContent = `${me.display_name} (${me.role})`;
  $h("logout").addEventListener("click", pers.logout);
  for (const o of $h("q-outcome").options) if (o.value) hist.outcomes[o.value] = o.textContent;
  $h("search").addEventListener("submit", search);
  $h("print").addEventListener("click", () => window.print());
  await search();
  const wanted = /^#case-(\d+)$/.exec(location.hash);
  if (wanted) await openReport(Number(wanted[1]));
  document.body.dataset.ready = "yes";  // tests wait on it
}

main().catch(() => {});
