"use strict";
// A call as the watch's modem reported it: the case's "call_state" timeline
// events (cloud/domain/ingest/callstate.py), in plain words. The case view
// shows the last of them and nothing else: a call-back request says nothing
// about the call itself.

const callState = (() => {
  function duration(s) {
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h) return `${h} h ${m} min ${sec} s`;
    return m ? `${m} min ${sec} s` : `${sec} s`;
  }

  // When the watch saw it (its own clock, if it had one), else when it arrived.
  function clock(d, at) {
    const when = d.watch_ts != null ? new Date(d.watch_ts * 1000) : new Date(at);
    return when.toLocaleTimeString("en-GB");
  }

  const ENDED = { busy: "Busy", no_answer: "Not answered", missed: "Not answered", failed: "Call failed" };

  // One event's words: "Watch dialling 112…", "Ringing", "Connected at 14:02:10"...
  function eventText(d, at) {
    switch (d.state) {
      case "dialing": return `Watch dialling ${d.number || ""}…`.replace(" …", "…");
      case "alerting": return "Ringing";
      case "incoming": return `Watch ringing: call from ${d.number || "a hidden number"}`;
      case "active": return `Connected at ${clock(d, at)}`;
      case "ended":
        if (d.end === "completed") return d.dur != null ? `Call ended after ${duration(d.dur)}` : "Call ended";
        return ENDED[d.end] || "Call ended";
      default: return `Call: ${d.state}`;
    }
  }

  // The call's current state on the case: the last event the watch reported, or null.
  function text(events) {
    const last = events.filter((e) => e.action === "call_state").pop();
    return last ? eventText(last.detail || {}, last.at) : null;
  }

  // True when the last call the watch reported is connected and not yet ended.
  function connected(events) {
    const last = events.filter((e) => e.action === "call_state").pop();
    return !!last && (last.detail || {}).state === "active";
  }

  return { text, eventText, duration, connected };
})();
