"use strict";
// A wearer's welfare alarms (cloud/domain/welfare.py): the daily check-in time and
// how long to wait for the answer, the night hours, the inactivity and not-worn
// limits. Saved with PUT /api/admin/wearers/{id}/welfare; the server's refusals
// are shown next to their field, and the check-in time goes to the watch.

const welfareForm = (() => {
  const $ = (id) => document.getElementById(id);

  function wearer() { return adm.wearers.find((w) => String(w.id) === $("wf-wearer").value); }

  function refreshWearers() {
    const sel = $("wf-wearer");
    const keep = sel.value;
    sel.replaceChildren();
    for (const w of adm.wearers) { const o = el("option", null, w.name); o.value = w.id; sel.append(o); }
    if (keep) sel.value = keep;
  }

  async function load() {
    refreshWearers();
    const w = wearer();
    if (!w) return;
    const got = await pers.api(`/api/admin/wearers/${w.id}/welfare`);
    const s = got.settings || {};
    $("wf-checkin").value = s.checkin_at || "";
    $("wf-window").value = s.checkin_window_min || 30;
    $("wf-night-from").value = s.night_from || "22:00";
    $("wf-night-to").value = s.night_to || "07:00";
    $("wf-inactivity").value = s.inactivity_h == null ? "" : s.inactivity_h;
    $("wf-not-worn").value = s.not_worn_min == null ? "" : s.not_worn_min;
  }

  async function save(ev) {
    ev.preventDefault();
    const w = wearer();
    if (!w) { pageError(new Error("choose a wearer first")); return; }
    const body = { checkin_at: optional(val("wf-checkin")) || null, checkin_window_min: number(val("wf-window")),
                   night_from: val("wf-night-from"), night_to: val("wf-night-to"),
                   inactivity_h: number(val("wf-inactivity")) ?? null, not_worn_min: number(val("wf-not-worn")) ?? null };
    const saved = await submit($("welfare-form"), async () => {
      await pers.api(`/api/admin/wearers/${w.id}/welfare`, { method: "PUT", body: JSON.stringify(body) });
    });
    if (saved) $("welfare-saved").hidden = false;
  }

  function bind() {
    $("wf-wearer").addEventListener("change", () => load().catch(pageError));
    $("welfare-form").addEventListener("submit", save);
    $("welfare-form").addEventListener("input", () => { $("welfare-saved").hidden = true; });
  }

  return { bind, load, refreshWearers };
})();
