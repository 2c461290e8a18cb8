"use strict";
// The wearer's file in the open case: what the operator reads out to an
// ambulance or a neighbour (the watch's numbers, languages, GP, allergies,
// medication, mobility, who has keys). The key-safe code is not in it: the
// operator who holds the open case asks for it ("Show key-safe code"), the
// server records that view in the audit log, and it is hidden again when the
// operator moves to another case or the case is closed.

(() => {
  const LABELS = [["phone_number", "Watch phone"], ["sim_number", "SIM number"], ["languages", "Languages"],
                  ["gp", "GP"], ["allergies", "Allergies"], ["medication", "Medication"], ["mobility", "Mobility"],
                  ["key_holders", "Who has keys"]];
  const box = pers.el("section", "wearer-file");
  box.id = "wearer-file";
  box.setAttribute("aria-labelledby", "wearer-file-title");
  const title = pers.el("h3", null, "Wearer's file");
  title.id = "wearer-file-title";
  const facts = pers.el("dl", "facts");
  const button = pers.el("button", null, "Show key-safe code");
  button.id = "show-keysafe";
  button.type = "button";
  const code = pers.el("p", "keysafe");
  code.id = "keysafe";
  code.setAttribute("role", "status");
  box.append(title, facts, button, code);
  let shown = null;   // the case id whose file is on screen
  let file = null;

  function mine(c) {
    return c && pers.me && c.claimed_by === pers.me.id && c.status !== "resolved";
  }

  function renderFile() {
    facts.replaceChildren();
    if (!file) return;
    for (const [key, label] of LABELS) {
      if (file[key]) facts.append(pers.el("dt", null, label), pers.el("dd", null, file[key]));
    }
    if (!facts.children.length) facts.append(pers.el("dd", "muted", "Nothing on file."));
  }

  function renderButton(c) {
    const has = file && file.key_safe;
    button.hidden = !has;
    button.disabled = !mine(c);
    button.title = mine(c) ? "The code is shown to you and the view is recorded" :
      "Acknowledge the case first: only its operator may see the key-safe code";
    if (!mine(c)) code.textContent = "";
  }

  async function load(id) {
    shown = id;
    file = null;
    code.textContent = "";
    renderFile();
    try {
      const f = await pers.api(`/api/cases/${id}/wearer-file`);
      if (shown === id) { file = f; renderFile(); renderButton(state.cases.get(id)); }
    } catch (e) { facts.replaceChildren(pers.el("dd", "error", `Wearer's file unavailable: ${e.message}`)); }
  }

  button.addEventListener("click", async () => {
    const id = shown;
    try {
      const r = await pers.api(`/api/cases/${id}/key-safe`, { method: "POST" });
      if (shown === id) code.textContent = `Key-safe code: ${r.code} (this view is recorded)`;
      refreshSelected();  // the view is on the timeline now
    } catch (e) { code.textContent = `Key-safe code not shown: ${e.message}`; }
  });

  document.querySelector("#detail .grid").insertAdjacentElement("afterend", box);
  queueView.listen("rendered", () => {
    const id = state.selected;
    if (id == null) return;
    if (id !== shown) load(id);
    renderButton(state.cases.get(id));
  });
})();
