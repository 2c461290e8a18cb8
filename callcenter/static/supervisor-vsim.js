"use strict";
// Local SIM stock running low (cloud/domain/vsim_stock.py): the server warns once per
// country until the stock recovers; the page lists what is low now, and each new
// warning as the live feed reports it (supervisor.js passes "vsim_low" events here).

(() => {
  const box = () => document.getElementById("vsim-box");

  function line(w, at) {
    const li = pers.el("li", null, `${at} · ${w.country}: ${w.free} local SIM profile${w.free === 1 ? "" : "s"} ` +
                                   `left (warned at ${w.low_at}); load more with pers vsim add`);
    li.dataset.country = w.country;
    return li;
  }

  async function load() {
    try {
      const r = await pers.api("/api/supervisor/vsim-stock");
      const ol = document.getElementById("vsim-low");
      ol.replaceChildren(...r.warnings.map((w) => line(w, `since ${pers.since(w.raised_at)}`)));
      box().hidden = r.warnings.length === 0;
    } catch (e) { /* the live feed still reports new warnings */ }
  }

  window.vsimLow = (ev) => {
    const ol = document.getElementById("vsim-low");
    ol.querySelector(`li[data-country="${ev.country}"]`)?.remove();
    ol.prepend(line(ev, new Date().toLocaleTimeString()));
    box().hidden = false;
  };
  load();
  setInterval(load, 60000);  // a stock refilled clears its warning
})();
