"use strict";
// Getting the operator's attention when the console is not in front: the page
// title counts the alarms waiting ("(2) OpenPERS"), a desktop notification
// announces each new one (once the operator has allowed them), and the alarm
// sound (console.js's beep) repeats until someone acknowledges. The header says
// whether the sound is really playing: a browser that blocks audio until the
// first click is shown as such, never as "sounding".

(() => {
  const notified = new Set();  // case ids already announced on the desktop
  let first = true;            // the first render is the snapshot: announce only what arrives after
  const bar = pers.el("span", "attention");
  bar.id = "sound-status";
  bar.setAttribute("role", "status");
  const allow = pers.el("button", null, "Allow desktop alerts");
  allow.id = "allow-notifications";
  allow.type = "button";
  allow.hidden = true;

  function install() {
    const header = document.querySelector("header.top");
    const spacer = header.querySelector(".spacer");
    header.insertBefore(bar, spacer);
    header.insertBefore(allow, spacer);
    allow.hidden = !("Notification" in window) || Notification.permission !== "default";
    allow.addEventListener("click", async () => {
      await Notification.requestPermission();
      allow.hidden = Notification.permission !== "default";
    });
    // Browsers start audio only after a gesture: the first click anywhere unblocks the beep.
    document.addEventListener("click", () => {
      if (typeof audio !== "undefined" && audio && audio.state === "suspended") audio.resume();
    });
    new MutationObserver(soundStatus).observe(document.body, { attributes: true, attributeFilter: ["data-sound", "data-alarm"] });
    soundStatus();
  }

  function soundStatus() {
    const alarm = document.body.dataset.alarm === "on";
    const sound = document.body.dataset.sound;
    bar.dataset.state = alarm ? sound : "quiet";
    if (!alarm) bar.textContent = "";
    else if (sound === "on") bar.textContent = "Alarm sounding until acknowledged";
    else if (sound === "blocked") bar.textContent = "Alarm sound blocked by the browser: click the page to allow it";
    else bar.textContent = "Alarm waiting";
  }

  function announce(c) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && document.hasFocus()) return;
    const k = queueView.kindOf(c.kind);
    const who = c.wearer ? c.wearer.name : c.device_id;
    const n = new Notification(`${k.label}: ${who}`, { body: "Waiting for an operator in OpenPERS", tag: `case-${c.id}`,
                                                       requireInteraction: true });
    n.onclick = () => { window.focus(); location.hash = `case-${c.id}`; n.close(); };
  }

  queueView.listen("rendered", (open) => {
    const waiting = open.filter((c) => c.claimed_by == null);
    document.title = waiting.length ? `(${waiting.length}) OpenPERS` : "OpenPERS";
    for (const c of waiting) {
      if (notified.has(c.id)) continue;
      notified.add(c.id);
      if (!first) announce(c);
    }
    if (document.body.dataset.synced === "yes") first = false;
  });

  install();
})();
