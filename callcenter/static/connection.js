"use strict";
// A lost live feed is said loudly: a banner across the page, the page marked as
// stale, and how old its data is, ticking, until the feed is back AND the
// server's snapshot has replaced what the page showed (body[data-synced=yes],
// set by the page's own feed handler). Works on any page that keeps
// body[data-connection] and body[data-synced] (the queue and the supervisor).

(() => {
  const banner = pers.el("div", "offline-banner");
  banner.id = "offline-banner";
  banner.setAttribute("role", "alert");
  banner.hidden = true;
  let lostAt = null;  // when the page last knew its data was current
  let timer = null;

  function text() {
    const age = pers.since(new Date(lostAt).toISOString());
    const at = new Date(lostAt).toLocaleTimeString();
    const doing = document.body.dataset.connection === "live" ? "Reconnected, reloading the queue…" : "Reconnecting…";
    return `Live feed lost: what you see may be out of date. Data is ${age} old (last live at ${at}). ${doing} ` +
           "New alarms will not appear until the feed is back.";
  }

  function update() {
    const conn = document.body.dataset.connection;
    if (conn === "lost" && lostAt == null) {
      lostAt = Date.now();
      document.body.dataset.synced = "no";  // the next snapshot, and only it, makes the page current again
    }
    const stale = lostAt != null && !(conn === "live" && document.body.dataset.synced === "yes");
    if (!stale) {
      lostAt = null;
      banner.hidden = true;
      delete document.body.dataset.stale;
      clearInterval(timer); timer = null;
      return;
    }
    document.body.dataset.stale = "yes";
    banner.hidden = false;
    banner.textContent = text();
    if (!timer) timer = setInterval(() => { banner.textContent = text(); }, 1000);
  }

  document.body.prepend(banner);
  new MutationObserver(update).observe(document.body, { attributes: true, attributeFilter: ["data-connection", "data-synced"] });
})();
