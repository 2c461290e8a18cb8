"use strict";
// A reload (a crash, a mis-click on F5, a laptop swap mid-call) must not lose
// the operator's place: the open case is in the URL (#case-<id>, which the
// queue opens again once the server's snapshot is in), and the note being typed
// is kept per case in this browser's localStorage until it is added or the case
// resolved (console.js clears the field and fires "input").

(() => {
  const KEY = (id) => `openpers.note-draft.case-${id}`;
  const note = document.getElementById("note");
  let current = null;

  function store(id, text) {
    try {
      if (text) localStorage.setItem(KEY(id), text); else localStorage.removeItem(KEY(id));
    } catch (e) { /* storage full or refused: the draft lives only in the field */ }
  }

  function load(id) {
    try { return localStorage.getItem(KEY(id)) || ""; } catch (e) { return ""; }
  }

  function opened(id) {
    if (id == null || id === current) return;
    if (current != null) store(current, note.value);
    current = id;
    note.value = load(id);
    if (location.hash !== `#case-${id}`) history.replaceState(null, "", `/#case-${id}`);
  }

  queueView.listen("selected", opened);
  // A new alarm opens by itself when no case is open (console.js sets state.selected).
  queueView.listen("rendered", () => opened(state.selected));

  note.addEventListener("input", () => { if (current != null) store(current, note.value); });
})();
