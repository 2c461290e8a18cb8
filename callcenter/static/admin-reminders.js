"use strict";
// Medication reminders of a wearer: times in the wearer's local time, the days,
// the text the watch shows, whether the wearer must confirm and within how many
// minutes. Saving sends them to every watch of the wearer in a new config
// (PUT /api/admin/wearers/{id}/reminders). Below: adherence over the last 7 and
// 30 days and the latest doses, as the cloud stored them (a dose is confirmed on
// the watch's word, or missed: the watch said so or nothing came in time).

const reminders = (() => {
  const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const $ = (id) => document.getElementById(id);

  function wearer() { return adm.wearers.find((w) => String(w.id) === $("m-wearer").value); }

  function row(r) {
    const tr = el("tr");
    tr.dataset.id = r.id || "";
    const time = el("input");
    Object.assign(time, { type: "time", value: r.at || "08:00", className: "m-at" });
    time.setAttribute("aria-label", "Time");
    cell(tr, "").append(time);
    const days = cell(tr, "", "m-days");
    DAYS.forEach((d, i) => {
      const label = el("label", "day");
      const input = el("input");
      Object.assign(input, { type: "checkbox", value: i, checked: !r.days || r.days.includes(i) });
      label.append(input, ` ${d}`);
      days.append(label);
    });
    const text = el("input");
    Object.assign(text, { value: r.text || "", maxLength: 60, className: "m-text", placeholder: "Take your pills" });
    text.setAttribute("aria-label", "Text on the watch");
    cell(tr, "").append(text);
    const confirm = el("input");
    Object.assign(confirm, { type: "checkbox", checked: r.confirm !== false && r.confirm !== undefined, className: "m-confirm" });
    confirm.setAttribute("aria-label", "The wearer must confirm");
    cell(tr, "").append(confirm);
    const win = el("input");
    Object.assign(win, { type: "number", min: 1, max: 720, value: r.window_min || 30, className: "m-window" });
    win.setAttribute("aria-label", "Minutes to confirm");
    cell(tr, "").append(win);
    const del = el("button", null, "Remove");
    del.type = "button";
    del.addEventListener("click", () => tr.remove());
    cell(tr, "").append(del);
    return tr;
  }

  function read() {
    return [...$("m-table").tBodies[0].rows].map((tr) => {
      const days = [...tr.querySelectorAll(".m-days input:checked")].map((i) => Number(i.value));
      const out = { at: tr.querySelector(".m-at").value, text: tr.querySelector(".m-text").value.trim(),
                    confirm: tr.querySelector(".m-confirm").checked,
                    window_min: Number(tr.querySelector(".m-window").value) || 30 };
      if (tr.dataset.id) out.id = tr.dataset.id;
      if (days.length < 7) out.days = days;
      return out;
    });
  }

  function figures(a) {
    return `${a.due} due, ${a.confirmed} confirmed, ${a.missed} missed`;
  }

  async function load() {
    const w = wearer();
    const tbody = $("m-table").tBodies[0];
    tbody.replaceChildren();
    $("m-doses").tBodies[0].replaceChildren();
    if (!w) return;
    const page = await pers.api(`/api/admin/wearers/${w.id}/reminders`);
    for (const r of page.reminders) tbody.append(row(r));
    $("m-tz").textContent = page.timezone || "UTC";
    $("m-adherence-7").textContent = figures(page.adherence["7"]);
    $("m-adherence-30").textContent = figures(page.adherence["30"]);
    for (const d of page.doses) {
      const tr = el("tr", `dose-${d.status}`);
      cell(tr, `${d.day} ${new Date(d.due_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`);
      cell(tr, d.text || d.reminder_id);
      cell(tr, d.status === "confirmed" ? (d.late_report ? "confirmed (reported late)" : "confirmed") : "missed");
      cell(tr, d.notified_to ? (d.notified_to === "family" ? "family told" : "centre told") : "");
      $("m-doses").tBodies[0].append(tr);
    }
  }

  async function save(ev) {
    ev.preventDefault();
    const w = wearer();
    if (!w) { pageError(new Error("choose a wearer first")); return; }
    $("m-saved").hidden = true;
    const saved = await submit($("m-form"), () => pers.api(`/api/admin/wearers/${w.id}/reminders`,
      { method: "PUT", body: JSON.stringify({ reminders: read() }) }));
    if (saved) { await load(); $("m-saved").hidden = false; }
  }

  function refreshWearers() {
    const sel = $("m-wearer");
    const keep = sel.value;
    sel.replaceChildren();
    for (const w of adm.wearers) { const o = el("option", null, w.name); o.value = w.id; sel.append(o); }
    if (keep) sel.value = keep;
  }

  function bind() {
    $("m-add").addEventListener("click", () => $("m-table").tBodies[0].append(row({ confirm: true })));
    $("m-wearer").addEventListener("change", () => load().catch(pageError));
    $("m-form").addEventListener("submit", save);
    $("m-form").addEventListener("input", () => { $("m-saved").hidden = true; });
  }

  return { bind, load, refreshWearers };
})();
