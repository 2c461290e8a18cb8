"use strict";
// One's own password. The server checks the current one (a wrong one counts as a
// failed login, and is throttled like one) and ends every other session of this
// operator: a console left open on another desk goes to the login page. The
// sentence shown says what the server answered, never more.

(async () => {
  const $a = (id) => document.getElementById(id);
  const me = await pers.whoami();
  $a("account-who").textContent = `${me.display_name} (${me.username}, ${me.role})`;
  const form = $a("password-form"), err = $a("password-error"), done = $a("password-done");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    done.textContent = "";
    const current = $a("current").value, fresh = $a("new-password").value;
    const fail = (text) => { err.textContent = text; err.hidden = false; };
    if (fresh.length < 8) return fail("The new password needs 8 characters or more.");
    if (fresh !== $a("repeat").value) return fail("The two new passwords differ.");
    try {
      const r = await pers.api("/api/auth/password", { method: "POST",
        body: JSON.stringify({ current_password: current, new_password: fresh }) });
      form.reset();
      const n = r.other_sessions_ended;
      done.textContent = "Your password is changed. " + (n ? `${n} other session${n > 1 ? "s were" : " was"} signed out.`
                                                          : "You had no other session open.");
    } catch (e) {
      if (e.status === 403) fail("The current password is not right. Nothing was changed.");
      else if (e.status === 429) fail("Too many wrong passwords. Wait a moment, then try again.");
      else fail(`Nothing was changed: ${e.message}`);
    }
  });
})();
