"use strict";
// The queue's order and how each alarm looks. An alarm centre answers the
// oldest unanswered alarm first: every unclaimed case comes before the claimed
// ones, life-threatening kinds (SOS, fall) before a geofence alarm before a
// technical one (battery, offline, not worn), and within a kind the oldest first.
// The waiting time is read against the answer targets (10 s, 40 s) in words as
// well as colour, and each kind has its own icon and label, not only a colour.
// The icons are plain symbols (in DejaVu and the usual system fonts), not emoji,
// which a console PC without an emoji font would show as empty boxes.
// console.js calls order(), decorate() and rendered(); other pages' helpers
// (attention.js, draft.js, ...) subscribe with queueView.listen().

const queueView = (() => {
  const KIND = {
    sos: { icon: "⚠", label: "SOS", group: "alarm" },
    fall: { icon: "↓", label: "Fall", group: "alarm" },
    geofence: { icon: "⚑", label: "Left safe zone", group: "geofence" },
    inactivity: { icon: "⌛", label: "No movement", group: "geofence" },
    checkin: { icon: "?", label: "No answer to check-in", group: "welfare" },
    low_battery: { icon: "⚡", label: "Low battery", group: "technical" },
    offline: { icon: "✕", label: "Watch offline", group: "technical" },
    not_worn: { icon: "○", label: "Watch not worn", group: "technical" },
    missed_dose: { icon: "℞", label: "Missed dose", group: "care" },
  };
  const RANK = { alarm: 0, geofence: 1, welfare: 2, technical: 3, care: 4 };
  const TARGETS = [10, 40];  // seconds: the answer targets of the telecare standards
  const listeners = { rendered: [], selected: [] };

  function kindOf(kind) {
    return KIND[kind] || { icon: "?", label: String(kind).replace(/_/g, " "), group: "technical" };
  }

  function waitedS(c) {
    const end = c.claimed_at ? Date.parse(c.claimed_at) : Date.now();
    return Math.max(0, (end - Date.parse(c.opened_at)) / 1000);
  }

  // "ok" under 10 s, "warn" from 10 to 40 s, "late" past 40 s.
  function band(seconds) {
    if (seconds < TARGETS[0]) return "ok";
    return seconds <= TARGETS[1] ? "warn" : "late";
  }

  function bandText(seconds, answered) {
    const b = band(seconds);
    if (answered) return b === "ok" ? "answered within 10 s" : (b === "warn" ? "answered within 40 s" : "answered after 40 s");
    return b === "ok" ? "within 10 s" : (b === "warn" ? "past 10 s" : "past 40 s");
  }

  function order(cases) {
    const rank = (c) => [c.claimed_by == null ? 0 : 1, RANK[kindOf(c.kind).group], Date.parse(c.opened_at), c.id];
    return cases.slice().sort((a, b) => {
      const ra = rank(a), rb = rank(b);
      for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i] - rb[i];
      return 0;
    });
  }

  // Fills a queue card's kind (icon and words) and waiting time (figure, words and band).
  function decorate(li, c) {
    const k = kindOf(c.kind);
    const [kind, , waiting] = li.firstChild.children;
    kind.textContent = `${k.icon} ${k.label}`;
    kind.setAttribute("aria-label", k.label);
    const s = waitedS(c);
    const answered = c.claimed_at != null;
    waiting.textContent = `${pers.since(c.opened_at, c.claimed_at)} · ${bandText(s, answered)}`;
    waiting.dataset.band = band(s);
    li.dataset.group = k.group;
    li.dataset.band = band(s);
  }

  return {
    KIND, kindOf, band, bandText, waitedS, order, decorate,
    listen(event, fn) { listeners[event].push(fn); },
    rendered(open) { for (const fn of listeners.rendered) fn(open); },
    selected(id) { for (const fn of listeners.selected) fn(id); },
  };
})();
