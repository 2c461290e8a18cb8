"use strict";
// Shared by the console pages: the API client (session cookie + CSRF header),
// and small DOM and time helpers.

const pers = {
  csrf: null,
  me: null,

  async api(path, options = {}) {
    const headers = Object.assign({"Content-Type": "application/json"}, options.headers || {});
    if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = pers.csrf;
    const res = await fetch(path, Object.assign({credentials: "same-origin"}, options, {headers}));
    if (res.status === 401) { window.location.assign("/login"); throw new Error("not logged in"); }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const detail = data && data.detail;
      let text = typeof detail === "string" ? detail : `request failed (HTTP ${res.status})`;
      if (Array.isArray(detail) && detail.length) {
        text = detail.map((d) => `${pers.fieldOf(d) || "request"}: ${d.msg}`).join("; ");
      }
      const err = new Error(text);
      err.status = res.status;
      err.detail = detail;
      throw err;
    }
    return data;
  },

  async whoami() {
    pers.me = await pers.api("/api/me");
    pers.csrf = pers.me.csrf_token;
    return pers.me;
  },

  async logout() {
    try { await pers.api("/api/auth/logout", {method: "POST"}); } finally { window.location.assign("/login"); }
  },

  // A FastAPI validation error's location as a dotted field path: ["body","contacts",0,"phone"] -> "contacts.0.phone".
  fieldOf(d) {
    const loc = (d && d.loc) || [];
    return loc.slice(loc[0] === "body" || loc[0] === "query" ? 1 : 0).join(".");
  },

  // Shows the errors of a failed form submission next to the offending fields
  // (elements with data-field="name" inside the form); the rest in the form's
  // .form-error. Returns true when something was shown.
  showFieldErrors(form, err) {
    pers.clearFieldErrors(form);
    const general = [];
    const list = Array.isArray(err.detail) ? err.detail : [];
    for (const d of list) {
      const name = pers.fieldOf(d);
      const input = name && form.querySelector(`[data-field="${CSS.escape(name)}"]`);
      if (!input) { general.push(`${name || "request"}: ${d.msg}`); continue; }
      const msg = pers.el("span", "field-error", d.msg.replace(/^Value error, /, ""));
      msg.id = `${form.id || "f"}-err-${name.replace(/\W/g, "-")}`;
      msg.setAttribute("role", "alert");
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", msg.id);
      input.insertAdjacentElement("afterend", msg);
    }
    if (!list.length) general.push(err.message);
    const box = form.querySelector(".form-error");
    if (box && general.length) { box.textContent = general.join("; "); box.hidden = false; }
    const first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
    return true;
  },

  clearFieldErrors(form) {
    form.querySelectorAll(".field-error").forEach((e) => e.remove());
    form.querySelectorAll("[aria-invalid]").forEach((e) => { e.removeAttribute("aria-invalid"); e.removeAttribute("aria-describedby"); });
    const box = form.querySelector(".form-error");
    if (box) { box.textContent = ""; box.hidden = true; }
  },

  el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  },

  since(iso, until) {
    const end = until ? Date.parse(until) : Date.now();
    const s = Math.max(0, Math.floor((end - Date.parse(iso)) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
  },

  metres(aLat, aLon, bLat, bLon) {
    // Haversine is plenty for "N m from home" on a screen; the cloud uses geodesics.
    const r = 6371000, rad = Math.PI / 180;
    const dLat = (bLat - aLat) * rad, dLon = (bLon - aLon) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(aLat * rad) * Math.cos(bLat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * r * Math.asin(Math.sqrt(h));
  },
};
