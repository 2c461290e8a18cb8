"use strict";
// The administration page's Security tab: login throttles (see and clear) and the
// audit log (search by user, action and time, a page at a time). Loaded before
// admin.js, whose helpers ($, el, cell, val, submit, pageError) it uses when called.

async function loadThrottles() {
  const rows = await pers.api("/api/supervisor/login-throttles");
  const tbody = $("throttles-table").tBodies[0];
  tbody.replaceChildren();
  for (const t of rows) {
    const tr = el("tr", t.retry_after_s > 0 ? "bad" : null);
    tr.dataset.throttleId = t.id;
    cell(tr, t.kind === "account" ? t.username : "any account");
    cell(tr, t.client);
    cell(tr, t.failures);
    cell(tr, t.refused);
    cell(tr, t.retry_after_s > 0 ? `${t.retry_after_s} s more` : "no");
    const b = el("button", null, "Clear");
    b.type = "button";
    b.setAttribute("aria-label", `Clear the throttle on ${t.kind === "account" ? t.username + " from " : ""}${t.client}`);
    b.addEventListener("click", async () => {
      try {
        await pers.api(`/api/supervisor/login-throttles/${t.id}`, {method: "DELETE"});
        await Promise.all([loadThrottles(), loadAudit()]);
      } catch (e) { pageError(e); }
    });
    cell(tr, "").append(b);
    tbody.append(tr);
  }
  $("throttles-none").hidden = rows.length > 0;
}

const AUDIT_PAGE = 50;
function auditQuery() {
  const q = new URLSearchParams({limit: AUDIT_PAGE, offset: adm.auditOffset || 0});
  for (const [id, key] of [["a-user", "user"], ["a-action", "action"]]) if (val(id)) q.set(key, val(id));
  for (const [id, key] of [["a-from", "from"], ["a-to", "to"]]) if (val(id)) q.set(key, `${val(id)}Z`);
  return q;
}

async function loadAudit() {
  const page = await pers.api(`/api/supervisor/audit?${auditQuery()}`);
  const tbody = $("audit-table").tBodies[0];
  tbody.replaceChildren();
  for (const a of page.items) {
    const tr = el("tr");
    cell(tr, a.at.replace("T", " ").replace("Z", ""));
    cell(tr, a.actor);
    cell(tr, a.action, a.action.startsWith("login.") || a.action === "session.revoked" ? "bad" : null);
    cell(tr, a.target || "–");
    cell(tr, a.detail ? JSON.stringify(a.detail) : "");
    tbody.append(tr);
  }
  $("audit-total").textContent = page.total;
  $("audit-newer").disabled = page.offset === 0;
  $("audit-older").disabled = page.offset + page.items.length >= page.total;
}

async function searchAudit(ev) {
  ev.preventDefault();
  adm.auditOffset = 0;
  await submit($("audit-form"), loadAudit);
}

async function pageAudit(step) {
  adm.auditOffset = Math.max(0, (adm.auditOffset || 0) + step * AUDIT_PAGE);
  try { await loadAudit(); } catch (e) { pageError(e); }
}

function bindSecurity() {
  $("audit-form").addEventListener("submit", searchAudit);
  $("audit-newer").addEventListener("click", () => pageAudit(-1));
  $("audit-older").addEventListener("click", () => pageAudit(1));
}
