"use strict";
// The tenant's stock of local SIM profiles per country (/api/admin/vsim-stock):
// free, in use, expired, and the level at which the supervisors are warned.
// Which profile each watch uses is the devices table's "SIM profile" column.

window.loadVsimStock = async () => {
  const table = document.getElementById("vsim-stock");
  try {
    const r = await pers.api("/api/admin/vsim-stock");
    const tbody = table.tBodies[0];
    tbody.replaceChildren();
    for (const c of r.stock) {
      const tr = pers.el("tr");
      tr.dataset.country = c.country;
      tr.append(pers.el("td", null, c.country), pers.el("td", c.low ? "bad" : "ok", String(c.free)),
                pers.el("td", null, String(c.held)), pers.el("td", null, String(c.expired)),
                pers.el("td", null, String(c.low_at)));
      tbody.append(tr);
    }
    table.hidden = r.stock.length === 0;
    document.getElementById("vsim-empty").hidden = r.stock.length > 0;
  } catch (e) { /* the devices table reports the page's errors */ }
};
