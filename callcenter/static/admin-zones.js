"use strict";
// Safe zones (geofences) of a wearer, drawn on the map: a circle (click its centre,
// type its radius) or a polygon (click its corners in order). The same figures are
// in plain fields, so a zone can be typed as well as drawn, and the server's
// refusals (a radius out of range, crossing edges, an empty schedule) are shown
// next to the field they are about. A schedule is read in the wearer's time zone.

const zones = (() => {
  const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const z = { map: null, layer: null, points: [] };
  const $ = (id) => document.getElementById(id);

  function shape() { return $("z-shape").value; }

  function readPoints() {
    return $("z-points").value.split("\n").map((l) => l.split(",").map((v) => Number(v.trim())))
      .filter((p) => p.length === 2 && p.every(Number.isFinite));
  }

  function draw() {
    if (!z.map) return;
    z.layer.clearLayers();
    if (shape() === "circle") {
      const lat = Number($("z-lat").value), lon = Number($("z-lon").value), r = Number($("z-radius").value);
      if ($("z-lat").value && $("z-lon").value && Number.isFinite(lat) && Number.isFinite(lon)) {
        L.circleMarker([lat, lon], { radius: 4 }).addTo(z.layer);
        if (r > 0) L.circle([lat, lon], { radius: r, color: "#f5a623" }).addTo(z.layer);
      }
    } else {
      const pts = readPoints();
      for (const p of pts) L.circleMarker(p, { radius: 4 }).addTo(z.layer);
      if (pts.length > 1) L.polygon(pts, { color: "#f5a623" }).addTo(z.layer);
    }
  }

  function onMapClick(e) {
    const lat = e.latlng.lat.toFixed(6), lon = e.latlng.lng.toFixed(6);
    if (shape() === "circle") {
      $("z-lat").value = lat;
      $("z-lon").value = lon;
    } else {
      const box = $("z-points");
      box.value = (box.value.trim() ? `${box.value.trim()}\n` : "") + `${lat}, ${lon}`;
    }
    draw();
  }

  function showShape() {
    const circle = shape() === "circle";
    for (const el of document.querySelectorAll(".z-circle")) el.hidden = !circle;
    for (const el of document.querySelectorAll(".z-polygon")) el.hidden = circle;
    draw();
  }

  function ensureMap(config) {
    if (z.map || typeof L === "undefined") return;
    z.map = L.map("zone-map", { attributionControl: !!(config && config.tile_url) }).setView([45.75, 4.85], 15);
    if (config && config.tile_url) {
      L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution }).addTo(z.map);
    }
    z.layer = L.layerGroup().addTo(z.map);
    z.map.on("click", onMapClick);
  }

  function wearer() { return adm.wearers.find((w) => String(w.id) === $("z-wearer").value); }

  function scheduleText(s) {
    if (!s) return "always";
    return s.map((w) => `${w.days.map((d) => DAYS[d]).join(" ")} ${w.from}–${w.to}`).join(", ");
  }

  async function load() {
    const w = wearer();
    const tbody = $("zones-table").tBodies[0];
    tbody.replaceChildren();
    if (!w) return;
    $("z-tz").value = w.timezone || "UTC";
    if (w.home_lat != null && z.map) z.map.setView([w.home_lat, w.home_lon], 15);
    for (const g of await pers.api(`/api/admin/wearers/${w.id}/geofences`)) {
      if (!g.active) continue;
      const tr = el("tr");
      tr.dataset.zoneId = g.id;
      cell(tr, g.name);
      cell(tr, g.shape === "circle" ? `circle, ${g.radius_m} m` : `polygon, ${g.points.length} points`);
      cell(tr, scheduleText(g.schedule));
      cell(tr, [g.alert_on_exit ? "leaving" : null, g.alert_on_enter ? "entering" : null].filter(Boolean).join(", ") || "none");
      const b = el("button", null, "Delete");
      b.type = "button";
      b.setAttribute("aria-label", `Delete the zone ${g.name}`);
      b.addEventListener("click", async () => {
        try { await pers.api(`/api/admin/geofences/${g.id}`, { method: "DELETE" }); await load(); }
        catch (e) { pageError(e); }
      });
      cell(tr, "").append(b);
      tbody.append(tr);
    }
  }

  function body() {
    const days = [...document.querySelectorAll("#z-days input:checked")].map((i) => Number(i.value));
    const out = { name: val("z-name"), shape: shape(), alert_on_exit: $("z-alert").value === "exit",
                  alert_on_enter: $("z-alert").value === "enter",
                  schedule: $("z-always").checked ? null : [{ days, from: val("z-from"), to: val("z-to") }] };
    if (out.shape === "circle") Object.assign(out, { lat: number(val("z-lat")), lon: number(val("z-lon")),
                                                     radius_m: number(val("z-radius")) });
    else out.points = readPoints();
    return out;
  }

  async function save(ev) {
    ev.preventDefault();
    const w = wearer();
    const form = $("zone-form");
    if (!w) { pageError(new Error("choose a wearer first")); return; }
    const saved = await submit(form, async () => {
      const tz = val("z-tz");
      if (tz && tz !== (w.timezone || "UTC")) {
        await pers.api(`/api/admin/wearers/${w.id}`, { method: "PATCH", body: JSON.stringify({ timezone: tz }) });
        w.timezone = tz;
      }
      await pers.api(`/api/admin/wearers/${w.id}/geofences`, { method: "POST", body: JSON.stringify(body()) });
    });
    if (saved) {
      $("z-name").value = "";
      $("z-points").value = "";
      await load();
      $("zone-saved").hidden = false;
    }
  }

  function refreshWearers() {
    const sel = $("z-wearer");
    const keep = sel.value;
    sel.replaceChildren();
    for (const w of adm.wearers) { const o = el("option", null, w.name); o.value = w.id; sel.append(o); }
    if (keep) sel.value = keep;
  }

  function bind(config) {
    const box = $("z-days");
    DAYS.forEach((d, i) => {
      const label = el("label", "day");
      const input = el("input");
      input.type = "checkbox";
      input.value = i;
      input.checked = i < 5;
      label.append(input, ` ${d}`);
      box.append(label);
    });
    $("z-shape").addEventListener("change", showShape);
    for (const id of ["z-lat", "z-lon", "z-radius", "z-points"]) $(id).addEventListener("input", draw);
    $("z-clear").addEventListener("click", () => { $("z-points").value = ""; draw(); });
    $("z-always").addEventListener("change", () => { $("z-when").hidden = $("z-always").checked; });
    $("z-wearer").addEventListener("change", () => load().catch(pageError));
    $("zone-form").addEventListener("submit", save);
    $("zone-form").addEventListener("input", () => { $("zone-saved").hidden = true; });
    $("tab-zones").addEventListener("click", () => {
      ensureMap(config);
      if (z.map) setTimeout(() => z.map.invalidateSize(), 0);  // the map was laid out hidden
    });
    if (location.hash === "#zones") ensureMap(config);
    showShape();
  }

  return { bind, load, refreshWearers };
})();
