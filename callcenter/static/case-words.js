"use strict";
// What the console says about a case, in the operator's words, and only what an
// event backs: the one place that turns event kinds, statuses and readings into
// text (console.js renders it). Nothing here claims what the server has not
// recorded: a call-back is "requested" until the watch confirms it, a contact is
// "reached" only on a delivery that succeeded, a distance is never finer than
// the fix it comes from.

const words = (() => {
  const KIND = { sos: "SOS", fall: "Fall", low_battery: "Low battery", geofence: "Left a safe zone",
                 offline: "Watch offline", not_worn: "Watch not worn", cancel: "Cancelled",
                 missed_dose: "Missed medication dose",
                 checkin: "No answer to check-in", inactivity: "No movement" };
  const STATUS = { new: "new", routed: "waiting for an operator", claimed: "acknowledged",
                   in_call: "call-back requested", resolved: "closed" };
  const OUTCOME = { false_alarm: "false alarm", wearer_ok: "wearer OK", contact_came: "a contact came",
                    ambulance: "ambulance", police: "police", no_answer_dispatched: "no answer, help sent",
                    other: "other" };
  const SOURCE = { gnss: "satellite (GNSS)", cell: "cell tower", last: "last known position" };
  const COMMAND = { call: "call-back", locate: "position request", message: "message", alert_ack: "alarm receipt",
                    config: "settings", vsim: "network profiles" };
  const STAGE = { received: "alarm received", operator: "an operator is with you", closed: "alarm closed" };
  const SERVICE = { ambulance: "Ambulance", police: "Police", fire: "Fire brigade", doctor: "Doctor",
                    neighbour: "Neighbour" };

  const clock = (iso) => {
    if (!iso) return "";
    const d = new Date(iso);
    return [d.getHours(), d.getMinutes()].map((n) => String(n).padStart(2, "0")).join(":");
  };
  const clockSec = (iso) => `${clock(iso)}:${String(new Date(iso).getSeconds()).padStart(2, "0")}`;
  const about = (m) => {  // 747 -> 750, 12.4 -> 12: a figure no finer than it means
    if (m < 10) return Math.max(1, Math.round(m));
    const step = 10 ** (String(Math.floor(m)).length - 2);
    return Math.round(m / step) * step;
  };
  const secs = (s) => (s >= 120 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);
  const commandWord = (type, stage) => (type === "alert_ack" && stage ? `“${STAGE[stage] || stage}” shown`
                                                                          : COMMAND[type] || "command");
  const channelList = (list) => list.map((r) => ({ webhook: "web hook", email: "e-mail", sms: "SMS" }[r.channel]
                                                   || r.channel)).join(" and ");

  const forwardWhat = (d) => (d.qualifier === 3 ? "End of alarm" : d.event === "test" ? "Test report" : "Alarm");

  function contactLine(d) {
    if (d.reached === undefined) return `${d.name || d.contact} (delivery not recorded)`;
    const name = d.contact || d.name;
    const failed = (d.failed || []).map((f) => `${f.channel} failed: ${f.reason}`);
    if ((d.reached || []).length) {
      return `${name} reached by ${channelList(d.reached)}${failed.length ? ` (${failed.join("; ")})` : ""}`;
    }
    return `${name} NOT reached: ${d.error || failed.join("; ") || "no channel delivered"}`;
  }

  // Event kind -> the operator's words. A kind missing here is shown as "other event".
  const EVENT = {
    opened: (d) => d.kind === "missed_dose" ? `Missed dose: "${d.text || d.reminder}" due at ${clock(d.due)} not confirmed` : `Alarm received: ${KIND[d.kind] || d.kind || "alarm"}${d.trigger ? ` (${d.trigger.replace(/_/g, " ")})` : ""}`,
    routed: (d, c) => `Passed to ${c.centre && c.centre.id === d.centre_id ? c.centre.name : "a call centre"}`,
    unrouted: () => "No call centre could be found for this alarm",
    alert_joined: (d) => `Button pressed again (press ${d.press_count || "?"})`,
    claimed: () => "Acknowledged",
    wearer_cancelled: () => "The wearer cancelled the alarm on the watch",
    command_acked: (d) => (d.ok === false ? `The watch could not do the ${commandWord(d.type, d.stage)}${d.err ? `: ${d.err}` : ""}`
                                          : `The watch confirmed the ${commandWord(d.type, d.stage)}`),
    command_expired: (d) => `The watch did not confirm the ${commandWord(d.type, d.stage)} in time`,
    call_back: (d) => `Call-back requested: the watch is asked to dial ${d.number}`,
    call_ended: () => "Call ended",
    locate: () => "Position requested from the watch",
    keysafe_viewed: () => "Key-safe code viewed",
    message: (d) => `Message sent to the watch: “${d.text}”`,
    contact_notified: (d) => contactLine(d),
    contact_not_reached: (d) => contactLine(d),
    notification_delivery: () => "Notification result recorded",
    cascade: () => "No action for a while: the next contact is notified automatically",
    dispatched: (d) => `${SERVICE[d.service] || d.service} called${d.reference ? `, reference ${d.reference}` : ""}`,
    note: (d) => `Note: ${d.text}`,
    resolved: (d) => `Closed: ${OUTCOME[d.outcome] || d.outcome}${d.note ? `. Note: ${d.note}` : ""}`,
    escalated: (d) => `Not acknowledged after ${secs(d.unclaimed_s || 0)}: passed to a backup call centre`,
    escalation_exhausted: (d) => `Not acknowledged after ${secs(d.unclaimed_s || 0)}, and no backup call centre is left`,
    supervisors_alerted: (d) => ((d.supervisors || []).length ? `Supervisors alerted: ${d.supervisors.join(", ")}`
                                                              : "No supervisor to alert"),
    reminder: (d) => `Reminder: nothing done on this case for ${secs(d.idle_s || 0)}`,
    alarm_flagged: () => "The watch sent some unusable data (see the warnings)",
    rate_limited: () => "Many presses in a short time: counted together",
    located_by_cell: (d) => `Position from the cell tower${d.acc ? `, accurate to about ${about(d.acc)} m` : ""}`,
    clock_skew: (d) => `The watch's clock is off by ${secs(Math.abs(d.skew_s || 0))}`,
    back_online: () => "The watch is back online",
    geofence_joined: (d) => `${d.event === "enter" ? "Entered" : "Left"} ${d.geofence || "a safe zone"} during this alarm`,
    back_inside: (d) => `Back inside ${d.geofence} at ${d.at_local}`,
    offline_joined: () => "The watch went offline during this alarm",
    // Medication (cloud/domain/reminders.py): the dose's text and due time, in UTC from the server.
    missed_dose: (d) => `Missed dose: "${d.text || d.reminder}" due at ${clock(d.due)} not confirmed`,
    missed_dose_joined: (d) => `Missed dose: "${d.text || d.reminder}" due at ${clock(d.due)} not confirmed`,
    dose_confirmed_late: (d) => `The watch has since reported the dose due at ${clock(d.due)} confirmed in time`,
    // Welfare (cloud/domain/welfare.py): what the watch said of its wearer.
    checkin_answered: (d) => `The wearer answered “I'm OK” on the watch at ${clock(d.at)}`,
    moving_again: (d) => `The wearer moves again (at ${clock(d.at)})`,
    worn_again: (d) => `The watch is worn again (at ${clock(d.at)})`,
    battery_low: (d) => `Battery ${d.pct} %: the first contact is told to charge it today`,
    checkin_joined: (d) => `No answer to the ${d.checkin_at} check-in during this alarm`,
    inactivity_joined: (d) => `No movement since ${d.since_local} during this alarm`,
    not_worn_joined: (d) => `Watch not worn since ${d.since_local} during this alarm`,
    // Forwarding to an alarm centre's own receiver (SIA DC-09, docs/forwarding.md).
    forward_sent: (d) => `${forwardWhat(d)} sent to the alarm receiver ${d.receiver}${d.via === "backup" ? " (backup)" : ""}`,
    forward_acked: (d) => `The alarm receiver ${d.receiver} acknowledged the ${forwardWhat(d).toLowerCase()}` +
                          `${d.via === "backup" ? " (through its backup)" : ""}`,
    forward_failed: (d) => `The alarm receiver ${d.receiver} did NOT acknowledge the ${forwardWhat(d).toLowerCase()}: ` +
                           `${d.reason}${d.retrying ? " (still trying; supervisors alerted)" : " (given up; supervisors alerted)"}`,
  };

  function actor(a, me) {
    if (a === "system") return "system";
    if (a.startsWith("device:")) return "watch";
    if (a.startsWith("operator:")) {
      const u = a.slice(9);
      return me && me.username === u ? "you" : u;
    }
    return a;
  }

  function event(e, c) {
    const f = EVENT[e.action];
    const text = f ? f(e.detail || {}, c) : (/_joined$/.test(e.action) ? "Another alert joined this alarm" : "Other event");
    return text;
  }

  // The latest command of a kind the operator asked for, with its event and what followed.
  function lastRequest(c, action) {
    const ev = (c.timeline || []).filter((e) => e.action === action).pop();
    if (!ev) return null;
    const cmd = (c.commands || []).find((k) => k.cid === (ev.detail || {}).cid);
    return { ev, cmd };
  }

  function ackWords(cmd) {
    if (!cmd) return "";
    if (cmd.status === "acked") return `; the watch acknowledged at ${clockSec(cmd.acked_at)}`;
    if (cmd.status === "failed") return "; the watch could not do it";
    if (cmd.status === "expired") return "; the watch did not answer in time";
    return "; sent to the watch, not yet acknowledged";
  }

  function callBack(c) {
    const r = lastRequest(c, "call_back");
    if (!r) return null;
    return `Call-back requested at ${clockSec(r.ev.at)} (to ${r.ev.detail.number})${ackWords(r.cmd)}`;
  }

  function locate(c) {
    const r = lastRequest(c, "locate");
    if (!r) return null;
    let text = `Requested at ${clockSec(r.ev.at)}${ackWords(r.cmd)}`;
    const after = Date.parse(r.ev.at);
    const fix = (c.trail || []).find((p) => (p.ref && p.ref === r.ev.detail.cid) || (!p.ref && Date.parse(p.at) >= after));
    if (fix) text += `; new position at ${clockSec(fix.at)}${fix.acc ? ` (about ${about(fix.acc)} m)` : ""}`;
    else if (r.cmd && ["failed", "expired"].includes(r.cmd.status)) text += "; no new position";
    else text += "; waiting for the new position";
    return text;
  }

  function position(c) {
    if (!c.location) return "position unknown";
    const l = c.location;
    const acc = l.acc ? `, accurate to about ${about(l.acc)} m` : "";
    return `${l.lat.toFixed(5)}, ${l.lon.toFixed(5)} (${SOURCE[l.src] || l.src}${acc})`;
  }

  // A geofence case: which zone, what happened, and the return if there was one
  // ("Left School at 14:31 · back inside at 14:52"), in the zone's own time.
  function zone(c) {
    const z = c.zone;
    if (!z) return null;
    const text = `${z.event === "enter" ? "Entered" : "Left"} ${z.name} at ${clock(z.at)}`;
    return z.back_inside_at ? `${text} · back inside at ${clock(z.back_inside_at)}` : text;
  }

  const reading = (value, at) => (value == null ? null : `${value} at ${clock(at)}`);

  // contact id -> what the latest attempt says; and the next contact to try.
  function contacts(c) {
    const tried = new Map();
    for (const e of (c.timeline || [])) {
      if (e.action === "contact_notified" || e.action === "contact_not_reached") tried.set(e.detail.contact_id, e);
    }
    const list = (c.wearer || {}).contacts;
    return { tried, list, next: list ? list.find((k) => !tried.has(k.id)) : undefined };
  }

  function notifyButton(c) {
    const { list, next } = contacts(c);
    if (list === undefined) return { text: "Loading contacts… ", enabled: false };
    if (!list.length) return { text: "No contacts to notify ", enabled: false };
    if (!next) return { text: "Every contact tried ", enabled: false };
    return { text: `Notify ${next.name} ${next.phone_display || next.phone} `, enabled: true };
  }

  function contactTag(e) {
    if (!e) return null;
    const d = e.detail || {};
    if (e.action === "contact_notified" && d.reached !== undefined) {
      return `reached by ${channelList(d.reached)} at ${clock(e.at)}`;
    }
    if (e.action === "contact_notified") return "delivery not recorded";
    return `not reached: ${d.error || (d.failed || []).map((f) => `${f.channel} failed`).join(", ")}`;
  }

  return { KIND, STATUS, clock, about, event, actor, callBack, locate, position, zone, reading, contacts, notifyButton,
           contactTag, kind: (k) => KIND[k] || k, status: (s) => STATUS[s] || s };
})();
