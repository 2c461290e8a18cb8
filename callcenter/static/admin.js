"use strict";
// Administration of one tenant: devices (provision, rotate the secret), wearers
// and their contacts, operators, call centres, the tenant itself. Every call goes
// through /api/admin/* (admin role, CSRF header, audited on the server); the
// server's validation errors are shown next to the field they are about.

const $ = (id) => document.getElementById(id);
const { el, since } = pers;
const adm = { wearers: [], centres: [], contactRows: 3 };

function cell(tr, text, cls) {
  const td = el("td", cls || null, text == null ? "" : String(text));
  tr.append(td);
  return td;
}

function pageError(e) {
  const p = $("page-error");
  p.textContent = e ? e.message : "";
  p.hidden = !e;
}

function val(id) { return $(id).value.trim(); }
function optional(v) { return v === "" ? undefined : v; }
function number(v) { if (v === "") return undefined; const n = Number(v); return Number.isFinite(n) ? n : v; }
function list(v) { return v.split(",").map((x) => x.trim()).filter(Boolean); }

async function submit(form, fn) {
  pers.clearFieldErrors(form);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await fn();
    return true;
  } catch (e) {
    pers.showFieldErrors(form, e);
    return false;
  } finally { button.disabled = false; }
}

// --- tabs -----------------------------------------------------------------------------------------
const TABS = ["devices", "wearers", "zones", "reminders", "welfare", "operators", "centres", "tenant", "security"];
function showTab(name, focus) {
  for (const t of TABS) {
    const on = t === name;
    $(`tab-${t}`).setAttribute("aria-selected", String(on));
    $(`tab-${t}`).tabIndex = on ? 0 : -1;
    $(`sec-${t}`).hidden = !on;
  }
  if (focus) $(`tab-${name}`).focus();
  history.replaceState(null, "", `#${name}`);
}

// --- devices ------------------------------------------------------------------------------------------
function showSecret(r) {
  $("secret-device").textContent = r.id;
  $("secret-value").textContent = r.secret;
  $("secret-box").hidden = false;
  $("copy-secret").focus();
}

async function loadDevices() {
  const page = await pers.api("/api/admin/devices?limit=500");
  const names = new Map(adm.wearers.map((w) => [w.id, w.name]));
  const tbody = $("devices-table").tBodies[0];
  tbody.replaceChildren();
  for (const d of page.items) {
    const tr = el("tr");
    tr.dataset.deviceId = d.id;
    cell(tr, d.id);
    cell(tr, d.protocol || "openpers");
    cell(tr, d.wearer_id == null ? "unassigned" : (names.get(d.wearer_id) || `wearer #${d.wearer_id}`));
    cell(tr, d.presence, d.presence === "offline" || d.presence === "suspect" ? "bad" : (d.presence === "online" ? "ok" : null));
    cell(tr, d.batt_pct == null ? "–" : `${d.batt_pct}%`, d.batt_pct != null && d.batt_pct <= 20 ? "bad" : null);
    cell(tr, d.vsim_profile ? `${d.vsim_profile}${d.country ? ` (${d.country})` : ""}` : (d.country ? `own SIM (${d.country})` : "–"));
    cell(tr, d.fw || "–");
    cell(tr, d.cfg_version == null ? "–" : `v${d.cfg_version}`);
    cell(tr, d.last_seen ? `${since(d.last_seen)} ago` : "never");
    const td = cell(tr, d.secret_rotated_at ? `rotated ${since(d.secret_rotated_at)} ago ` : "");
    const b = el("button", "rotate", "Rotate secret");
    b.type = "button";
    b.setAttribute("aria-label", `Rotate the secret of ${d.id}`);
    b.addEventListener("click", () => rotate(d.id));
    td.append(b);
    tbody.append(tr);
  }
  $("devices-total").textContent = page.total;
  if (window.loadVsimStock) window.loadVsimStock();  // admin-vsim.js
}

async function rotate(id) {
  if (!window.confirm(`Rotate the secret of ${id}? The watch cannot connect until it is given the new one.`)) return;
  try {
    showSecret(await pers.api(`/api/admin/devices/${encodeURIComponent(id)}/rotate`, {method: "POST"}));
    await loadDevices();
  } catch (e) { pageError(e); }
}

async function provision(ev) {
  ev.preventDefault();
  const form = $("provision-form");
  const body = {};
  if (val("dev-wearer")) body.wearer_id = Number(val("dev-wearer"));
  await submit(form, async () => {
    const r = await pers.api("/api/admin/devices", {method: "POST", body: JSON.stringify(body)});
    form.reset();
    showSecret(r);
    await loadDevices();
  });
}

// --- wearers --------------------------------------------------------------------------------------------
function contactRows(n = 3) {
  const box = $("w-contacts");
  for (let i = box.querySelectorAll(".contact-row").length; i < n; i++) {
    const row = el("div", "actions contact-row");
    for (const [key, label, extra] of [["name", "Name", {}], ["relation", "Relation", {}],
                                        ["phone", "Phone", {placeholder: "+33 6 11 11 11 11"}]]) {
      const wrap = el("div", "field");
      const input = el("input");
      input.id = `w-c${i}-${key}`;
      input.dataset.field = `contacts.${i}.${key}`;
      input.setAttribute("aria-label", `Contact ${i + 1} ${label.toLowerCase()}`);
      input.placeholder = extra.placeholder || label;
      wrap.append(input);
      if (key === "name") row.append(el("span", "muted", `${i + 1}.`));
      row.append(wrap);
    }
    box.append(row);
  }
  adm.contactRows = Math.max(adm.contactRows, n);
}

// Editing fills the same form; saving PATCHes the wearer (contacts replaced, in the order shown).
function editWearer(w) {
  const form = $("wearer-form");
  form.reset();
  pers.clearFieldErrors(form);
  contactRows(Math.max(3, w.contacts.length + 1));
  adm.editing = w.id;
  $("w-name").value = w.name || "";
  $("w-birth").value = w.birth_date || "";
  $("w-lang").value = w.language || "";
  $("w-address").value = w.home_address || "";
  $("w-lat").value = w.home_lat ?? "";
  $("w-lon").value = w.home_lon ?? "";
  $("w-notes").value = w.medical_notes || "";
  $("w-photo").value = w.photo_url || "";
  w.contacts.forEach((c, i) => {
    $(`w-c${i}-name`).value = c.name;
    $(`w-c${i}-relation`).value = c.relation || "";
    $(`w-c${i}-phone`).value = c.phone;
  });
  $("wearer-form-title").textContent = `Edit ${w.name}`;
  $("add-wearer").textContent = "Save wearer";
  $("cancel-wearer").hidden = false;
  $("w-name").focus();
}

function stopEditing() {
  adm.editing = null;
  $("wearer-form").reset();
  pers.clearFieldErrors($("wearer-form"));
  $("wearer-form-title").textContent = "Add a wearer";
  $("add-wearer").textContent = "Add wearer";
  $("cancel-wearer").hidden = true;
}

async function loadWearers() {
  const page = await pers.api("/api/admin/wearers?limit=500");
  adm.wearers = page.items;
  const tbody = $("wearers-table").tBodies[0];
  tbody.replaceChildren();
  for (const w of page.items) {
    const tr = el("tr");
    tr.dataset.wearerId = w.id;
    cell(tr, w.name);
    cell(tr, w.age == null ? "–" : w.age);
    cell(tr, w.home_address || (w.home_lat != null ? `${w.home_lat}, ${w.home_lon}` : "–"));
    const td = cell(tr, "");
    const ol = el("ol", "contacts-admin");
    for (const c of w.contacts) ol.append(el("li", null, `${c.name}${c.relation ? ` (${c.relation})` : ""} ${c.phone_display || c.phone}`));
    if (!w.contacts.length) td.textContent = "none";
    else td.append(ol);
    const edit = el("button", "edit", "Edit");
    edit.type = "button";
    edit.setAttribute("aria-label", `Edit ${w.name}`);
    edit.addEventListener("click", () => editWearer(w));
    cell(tr, "").append(edit);
    tbody.append(tr);
  }
  $("wearers-total").textContent = page.total;
  const sel = $("dev-wearer");
  const keep = sel.value;
  sel.replaceChildren(el("option", null, "none yet"));
  sel.firstChild.value = "";
  for (const w of page.items) { const o = el("option", null, w.name); o.value = w.id; sel.append(o); }
  sel.value = keep;
  zones.refreshWearers();
  reminders.refreshWearers();
  welfareForm.refreshWearers();
}

async function addWearer(ev) {
  ev.preventDefault();
  const form = $("wearer-form");
  const contacts = [];
  for (let i = 0; i < adm.contactRows; i++) {
    const c = {name: val(`w-c${i}-name`), relation: optional(val(`w-c${i}-relation`)), phone: val(`w-c${i}-phone`)};
    if (c.name || c.phone || c.relation) contacts.push(c);
  }
  const body = {name: val("w-name"), birth_date: optional(val("w-birth")), language: optional(val("w-lang")),
                home_address: optional(val("w-address")), home_lat: number(val("w-lat")), home_lon: number(val("w-lon")),
                medical_notes: optional(val("w-notes")), photo_url: optional(val("w-photo")), contacts};
  await submit(form, async () => {
    if (adm.editing != null) {
      for (const k of ["birth_date", "language", "home_address", "home_lat", "home_lon", "medical_notes", "photo_url"]) {
        if (body[k] === undefined) body[k] = null;  // a cleared field clears the value
      }
      await pers.api(`/api/admin/wearers/${adm.editing}`, {method: "PATCH", body: JSON.stringify(body)});
      stopEditing();
    } else {
      await pers.api("/api/admin/wearers", {method: "POST", body: JSON.stringify(body)});
      form.reset();
    }
    await loadWearers();
  });
}

// --- operators ------------------------------------------------------------------------------------------
async function loadOperators() {
  const page = await pers.api("/api/admin/operators?limit=500");
  const centres = new Map(adm.centres.map((c) => [c.id, c.name]));
  const tbody = $("operators-table").tBodies[0];
  tbody.replaceChildren();
  for (const o of page.items) {
    const tr = el("tr", o.active ? null : "inactive");
    tr.dataset.operatorId = o.id;
    cell(tr, o.username);
    cell(tr, o.display_name);
    cell(tr, o.role);
    cell(tr, o.centre_id == null ? "–" : (centres.get(o.centre_id) || `#${o.centre_id}`));
    cell(tr, o.last_seen_at ? `${since(o.last_seen_at)} ago` : "never");
    const td = cell(tr, o.active ? "active " : "deactivated ");
    if (!pers.me || o.id !== pers.me.id) {
      const b = el("button", null, o.active ? "Deactivate" : "Reactivate");
      b.type = "button";
      b.setAttribute("aria-label", `${o.active ? "Deactivate" : "Reactivate"} ${o.username}`);
      b.addEventListener("click", async () => {
        try {
          await pers.api(`/api/admin/operators/${o.id}`, {method: "PATCH", body: JSON.stringify({active: !o.active})});
          await loadOperators();
        } catch (e) { pageError(e); }
      });
      td.append(b);
    }
    tbody.append(tr);
  }
}

async function addOperator(ev) {
  ev.preventDefault();
  const form = $("operator-form");
  const body = {username: val("o-username"), display_name: optional(val("o-display")), password: $("o-password").value,
                role: val("o-role"), centre_id: val("o-centre") ? Number(val("o-centre")) : undefined};
  await submit(form, async () => {
    await pers.api("/api/admin/operators", {method: "POST", body: JSON.stringify(body)});
    form.reset();
    await loadOperators();
  });
}

// --- centres and tenant -----------------------------------------------------------------------------------
async function loadCentres() {
  adm.centres = await pers.api("/api/admin/centres");
  const tbody = $("centres-table").tBodies[0];
  tbody.replaceChildren();
  for (const c of adm.centres) {
    const tr = el("tr");
    tr.dataset.centreId = c.id;
    cell(tr, c.rank == null ? "not in contract" : c.rank + 1);
    cell(tr, c.name);
    cell(tr, c.phone || "–");
    cell(tr, c.countries.length ? c.countries.join(", ") : "everywhere");
    cell(tr, c.languages.length ? c.languages.join(", ") : "any");
    cell(tr, c.hours.length ? c.hours.map((h) => `${h.from}–${h.to}`).join(", ") : "24/7");
    tbody.append(tr);
  }
  const sel = $("o-centre");
  sel.replaceChildren(el("option", null, "none"));
  sel.firstChild.value = "";
  for (const c of adm.centres) { const o = el("option", null, c.name); o.value = c.id; sel.append(o); }
}

async function addCentre(ev) {
  ev.preventDefault();
  const form = $("centre-form");
  const body = {name: val("c-name"), phone: optional(val("c-phone")), countries: list(val("c-countries")),
                languages: list(val("c-languages")), timezone: optional(val("c-tz"))};
  await submit(form, async () => {
    await pers.api("/api/admin/centres", {method: "POST", body: JSON.stringify(body)});
    form.reset();
    await loadCentres();
  });
}

async function loadTenant() {
  const t = await pers.api("/api/admin/tenant");
  $("t-name").value = t.name || "";
  $("t-webhook").value = t.webhook_url || "";
  $("t-missed").value = t.missed_dose_to || "family";
}

async function saveTenant(ev) {
  ev.preventDefault();
  const form = $("tenant-form");
  $("tenant-saved").hidden = true;
  const body = {name: val("t-name"), webhook_url: val("t-webhook") || null, missed_dose_to: $("t-missed").value};
  if (await submit(form, () => pers.api("/api/admin/tenant", {method: "PATCH", body: JSON.stringify(body)}))) {
    $("tenant-saved").hidden = false;
  }
}

// --- alarm receivers (SIA DC-09 forwarding, docs/forwarding.md) --------------------------------------
async function loadReceivers() {
  const items = await pers.api("/api/admin/receivers");
  const tbody = $("receivers-table").tBodies[0];
  tbody.replaceChildren();
  for (const r of items) {
    const tr = el("tr");
    tr.dataset.receiverId = r.id;
    cell(tr, r.name);
    cell(tr, `${r.protocol.toUpperCase()} ${r.host}:${r.port}`);
    cell(tr, r.fmt);
    cell(tr, `#${r.account} R${r.receiver_no || "–"} L${r.line_no}`);
    cell(tr, r.encrypted ? "AES" : "no");
    cell(tr, r.backup_host ? `${r.backup_host}:${r.backup_port || r.port}` : "–");
    cell(tr, r.enabled ? "forwarding" : "disabled");
    const actions = cell(tr, "");
    const test = el("button", null, "Send a test report");
    test.type = "button";
    test.disabled = !r.enabled;
    test.addEventListener("click", async () => {
      try { await pers.api(`/api/admin/receivers/${r.id}/test`, {method: "POST"}); test.textContent = "Test queued"; }
      catch (e) { pageError(e); }
    });
    const toggle = el("button", null, r.enabled ? "Disable" : "Enable");
    toggle.type = "button";
    toggle.addEventListener("click", async () => {
      try {
        await pers.api(`/api/admin/receivers/${r.id}`, {method: "PATCH", body: JSON.stringify({enabled: !r.enabled})});
        await loadReceivers();
      } catch (e) { pageError(e); }
    });
    actions.append(test, " ", toggle);
    tbody.append(tr);
  }
}

async function addReceiver(ev) {
  ev.preventDefault();
  const form = $("receiver-form");
  const body = {name: val("r-name"), host: val("r-host"), port: number(val("r-port")), protocol: val("r-protocol"),
                fmt: val("r-fmt"), account: val("r-account"), receiver_no: optional(val("r-receiver")),
                line_no: val("r-line") || "0", aes_key: optional(val("r-key")), key_encoding: val("r-key-enc"),
                backup_host: optional(val("r-backup-host")), backup_port: number(val("r-backup-port")),
                poll_s: number(val("r-poll")) || 0};
  await submit(form, async () => {
    await pers.api("/api/admin/receivers", {method: "POST", body: JSON.stringify(body)});
    form.reset();
    await loadReceivers();
  });
}

async function main() {
  const me = await pers.whoami();
  $("operator-name").textContent = me.display_name.includes(me.role) ? me.display_name : `${me.display_name} (${me.role})`;
  $("logout").addEventListener("click", pers.logout);
  TABS.forEach((t, i) => {
    const tab = $(`tab-${t}`);
    tab.addEventListener("click", () => showTab(t));
    tab.addEventListener("keydown", (e) => {  // arrow keys move between tabs (WAI-ARIA tabs pattern)
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        showTab(TABS[(i + (e.key === "ArrowDown" ? 1 : TABS.length - 1)) % TABS.length], true);
      }
    });
  });
  contactRows();
  $("provision-form").addEventListener("submit", provision);
  $("wearer-form").addEventListener("submit", addWearer);
  $("cancel-wearer").addEventListener("click", stopEditing);
  $("operator-form").addEventListener("submit", addOperator);
  $("centre-form").addEventListener("submit", addCentre);
  $("tenant-form").addEventListener("submit", saveTenant);
  $("receiver-form").addEventListener("submit", addReceiver);
  bindSecurity();
  zones.bind(await pers.api("/api/console/config").catch(() => null));
  reminders.bind();
  welfareForm.bind();
  $("hide-secret").addEventListener("click", () => { $("secret-value").textContent = ""; $("secret-box").hidden = true; });
  $("copy-secret").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("secret-value").textContent); $("copy-secret").textContent = "Copied"; }
    catch (e) { window.getSelection().selectAllChildren($("secret-value")); }
  });
  const first = (location.hash || "#devices").slice(1);
  showTab(TABS.includes(first) ? first : "devices");
  try {
    await Promise.all([loadCentres(), loadWearers(), loadTenant(), loadReceivers()]);
    await Promise.all([zones.load(), reminders.load(), welfareForm.load()]);
    await Promise.all([loadDevices(), loadOperators(), loadThrottles(), loadAudit()]);
    document.body.dataset.ready = "true";
  } catch (e) { pageError(e); }
}

main().catch(() => {});
