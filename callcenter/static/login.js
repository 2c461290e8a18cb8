"use strict";
document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("login-error");
  err.hidden = true;
  const body = JSON.stringify({
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  });
  let res;
  try {
    res = await fetch("/api/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body, credentials: "same-origin"});
  } catch (e) {
    err.textContent = "The server cannot be reached."; err.hidden = false; return;
  }
  if (res.ok) { window.location.assign("/"); return; }
  const data = await res.json().catch(() => ({}));
  // A throttle says how long it waits (Retry-After, seconds): the sentence says the same.
  const wait = Number(res.headers.get("Retry-After"));
  err.textContent = res.status === 429
    ? `Too many failed attempts from here. Try again in ${wait > 0 ? `${wait} s` : "a moment"}.`
    : (data.detail && typeof data.detail === "string" ? data.detail : "Sign-in failed.");
  err.hidden = false;
});
