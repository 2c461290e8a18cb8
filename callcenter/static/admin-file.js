"use strict";
// Admin: the wearer's file (languages, GP, allergies, medication, mobility, who
// has keys, the key-safe code, which is written here but never shown back), and
// a watch's assignment to a wearer with its phone and SIM numbers. Two forms
// added to the Wearers and Devices tabs; errors are shown next to their field.

(() => {
  const FILE = [["languages", "Languages"], ["gp", "GP (name, phone)"], ["allergies", "Allergies"],
                ["medication", "Medication"], ["mobility", "Mobility"], ["key_holders", "Who has keys"],
                ["key_safe_code", "Key-safe code"]];

  function field(form, name, label, input) {
    input.id = `${form.id}-${name}`;
    input.dataset.field = name;
    const l = pers.el("label", null, label);
    l.htmlFor = input.id;
    const box = pers.el("div", "field");
    box.append(input);
    form.append(l, box);
    return input;
  }

  function makeForm(id, title, section) {
    const h = pers.el("h3", null, title);
    h.id = `${id}-title`;
    const form = pers.el("form", "admin-form");
    form.id = id;
    form.noValidate = true;
    form.setAttribute("aria-labelledby", h.id);
    section.append(h, form);
    return form;
  }

  function finish(form, label) {
    const buttons = pers.el("div", "buttons");
    const save = pers.el("button", "primary", label);
    save.type = "submit";
    buttons.append(save);
    const err = pers.el("p", "form-error error");
    err.hidden = true;
    err.setAttribute("role", "alert");
    const done = pers.el("p", "muted");
    done.setAttribute("role", "status");
    form.append(buttons, err, done);
    return done;
  }

  async function options(select, path, text) {
    const r = await pers.api(path);
    const keep = select.value;  // read after the wait: the user may have chosen meanwhile
    select.replaceChildren(pers.el("option", null, "Choose…"));
    select.firstChild.value = "";
    for (const item of r.items) {
      const o = pers.el("option", null, text(item));
      o.value = item.id;
      select.append(o);
    }
    select.value = keep;
  }

  function fileForm() {
    const form = makeForm("file-form", "Wearer's file", document.getElementById("sec-wearers"));
    const who = field(form, "wearer_id", "Wearer", pers.el("select"));
    const inputs = {};
    for (const [name, label] of FILE) inputs[name] = field(form, name, label, pers.el("input"));
    inputs.key_safe_code.type = "password";
    inputs.key_safe_code.autocomplete = "off";
    const done = finish(form, "Save the file");
    const wearers = () => options(who, "/api/admin/wearers?limit=500", (w) => w.name).catch(() => {});
    wearers();
    who.addEventListener("focus", wearers);
    const fields = () => Object.values(inputs);
    who.addEventListener("change", async () => {
      const id = who.value;
      if (!id) return;
      // The fields wait for the wearer's file: typed before it arrives, a value would
      // be overwritten by the file and lost.
      for (const input of fields()) input.disabled = true;
      try {
        const f = await pers.api(`/api/admin/wearers/${id}/file`);
        // Two quick choices send two requests; an answer for a wearer no longer
        // chosen must not fill the form (it would be saved onto the other one).
        if (who.value !== id) return;
        for (const [name] of FILE) inputs[name].value = name === "key_safe_code" ? "" : (f[name] || "");
        inputs.key_safe_code.placeholder = f.key_safe ? "set (type to change)" : "none";
        for (const input of fields()) input.disabled = false;
      } catch (err) {
        if (who.value === id) for (const input of fields()) input.disabled = false;
        pers.showFieldErrors(form, err);
      }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      pers.clearFieldErrors(form);
      const body = {};
      for (const [name] of FILE) if (name !== "key_safe_code" || inputs[name].value) body[name] = inputs[name].value;
      try {
        await pers.api(`/api/admin/wearers/${who.value}/file`, { method: "PUT", body: JSON.stringify(body) });
        inputs.key_safe_code.value = "";
        done.textContent = "The wearer's file is saved.";
      } catch (err) { pers.showFieldErrors(form, err); }
    });
  }

  function watchForm() {
    const form = makeForm("watch-form", "Assign a watch, its numbers", document.getElementById("sec-devices"));
    const device = field(form, "device_id", "Watch", pers.el("select"));
    const who = field(form, "wearer_id", "Wearer", pers.el("select"));
    const phone = field(form, "phone_number", "Watch phone", pers.el("input"));
    const sim = field(form, "sim_number", "SIM number (ICCID)", pers.el("input"));
    phone.placeholder = "+33 6 12 34 56 78";
    const done = finish(form, "Save the watch");
    const load = () => Promise.all([options(device, "/api/admin/devices?limit=500", (d) => d.id),
                                    options(who, "/api/admin/wearers?limit=500", (w) => w.name)]).catch(() => {});
    load();
    device.addEventListener("focus", load);
    who.addEventListener("focus", load);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      pers.clearFieldErrors(form);
      try {
        const numbers = {};
        if (phone.value) numbers.phone_number = phone.value;
        if (sim.value) numbers.sim_number = sim.value;
        await pers.api(`/api/admin/devices/${encodeURIComponent(device.value)}/numbers`,
                       { method: "PUT", body: JSON.stringify(numbers) });
        await pers.api(`/api/admin/devices/${encodeURIComponent(device.value)}`,
                       { method: "PATCH", body: JSON.stringify({ wearer_id: who.value ? Number(who.value) : null }) });
        done.textContent = `${device.value} is assigned to ${who.value ? who.selectedOptions[0].textContent : "nobody"}.`;
      } catch (err) { pers.showFieldErrors(form, err); }
    });
  }

  fileForm();
  watchForm();
})();
