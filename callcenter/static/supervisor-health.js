"use strict";
// The supervisor's "queue now": how many alarms wait and the longest wait (from
// the live feed's open cases, ticking), what each operator holds, and today's
// share of alarms answered within 10 s and 40 s (the SLA API for today only).
// Reads supervisor.js's live state (sup, opName); no second feed.

(() => {
  const $id = (id) => document.getElementById(id);

  function fmtWait(s) {
    return s < 60 ? `${Math.floor(s)} s` : `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  }

  function render() {
    const open = [...sup.cases.values()].filter((c) => c.status !== "resolved");
    const waiting = open.filter((c) => c.claimed_by == null);
    const now = Date.now();
    const longest = waiting.reduce((m, c) => Math.max(m, (now - Date.parse(c.opened_at)) / 1000), 0);
    $id("health-waiting").textContent = String(waiting.length);
    $id("health-longest").textContent = waiting.length ? fmtWait(longest) : "nobody waiting";
    $id("health-longest-box").dataset.band = !waiting.length ? "ok" : (longest < 10 ? "ok" : (longest <= 40 ? "warn" : "late"));
    const held = new Map();
    for (const c of open) {
      if (c.claimed_by == null) continue;
      const h = held.get(c.claimed_by) || { n: 0, oldest: now };
      h.n += 1;
      h.oldest = Math.min(h.oldest, Date.parse(c.claimed_at || c.opened_at));
      held.set(c.claimed_by, h);
    }
    const tbody = $id("health-operators").tBodies[0];
    tbody.replaceChildren();
    for (const [id, h] of [...held.entries()].sort((a, b) => b[1].n - a[1].n)) {
      const tr = pers.el("tr");
      tr.append(pers.el("td", null, opName(id)), pers.el("td", null, String(h.n)),
                pers.el("td", null, `${fmtWait((now - h.oldest) / 1000)} ago`));
      tbody.append(tr);
    }
    $id("health-operators-empty").hidden = held.size > 0;
  }

  function share(t, key, id) {
    const w = t[key];
    $id(id).textContent = w && w.pct != null ? `${w.pct}%` : "–";
    $id(`${id}-count`).textContent = w ? `${w.count} of ${t.alarms}` : "";
    $id(`${id}-box`).dataset.met = !w || w.pct == null ? "none" : String(w.met);
  }

  async function loadToday() {
    const today = new Date().toISOString().slice(0, 10);  // the API's days are UTC days
    try {
      const r = await pers.api(`/api/supervisor/sla?from=${today}&to=${today}`);
      share(r.total, "within_10s", "today-10");
      share(r.total, "within_40s", "today-40");
      $id("today-pending").textContent = r.total.pending ? `${r.total.pending} still waiting, not yet counted` : "";
    } catch (e) { /* keep the last figures; the SLA panel reports the error */ }
  }

  render();
  loadToday();
  setInterval(render, 1000);
  setInterval(loadToday, 3000);
})();
