"use strict";
// When the map's tiles cannot load (no network to the tile server, the server
// down, none configured), the map area says so in words and still gives what
// the operator reads out to an ambulance: the coordinates and the address.
// console.js builds the map; this watches its tile images load or fail.

(() => {
  const box = pers.el("p", "map-status");
  box.id = "map-status";
  box.setAttribute("role", "status");
  box.hidden = true;
  let failed = false;

  function address(c) {
    const label = c.location_label || {};
    if (label.address) return `Address: ${label.address}`;
    const home = c.wearer && c.wearer.home_address;
    return home ? `Home address: ${home}${label.text ? ` (${label.text})` : ""}` : "Address unknown";
  }

  function render() {
    const c = state.cases.get(state.selected);
    const noMap = typeof L === "undefined";
    const noTiles = !state.config.tile_url;
    if (!c || !(failed || noMap || noTiles)) { box.hidden = true; return; }
    const why = noMap ? "Map unavailable (the map could not load)" :
      (noTiles ? "No map background configured" : "Map offline: the map tiles could not be loaded");
    const pos = c.location ? `Position ${c.location.lat.toFixed(5)}, ${c.location.lon.toFixed(5)}` +
      (c.location.acc != null ? ` (accuracy about ${Math.round(c.location.acc)} m)` : "") : "Position unknown";
    box.textContent = `${why}. ${pos}. ${address(c)}.`;
    box.hidden = false;
  }

  // Tile images report their own failure; listen on the map's box (capture: error and load do
  // not bubble), so the first tiles, requested before any layer event could be hooked, count too.
  const map = document.getElementById("map");
  map.addEventListener("error", (e) => { if (e.target.tagName === "IMG") { failed = true; render(); } }, true);
  map.addEventListener("load", (e) => { if (e.target.tagName === "IMG") { failed = false; render(); } }, true);

  const caption = document.getElementById("map-caption");
  caption.insertAdjacentElement("afterend", box);
  queueView.listen("rendered", render);
})();
