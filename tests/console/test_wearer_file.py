"""The wearer's file in real headless Chromium against the real stack: an admin
writes it and the watch's numbers through the API, assigns and re-assigns the
watch; the operator reads it in the case; the key-safe code is shown only to the
operator holding the open case, on an explicit action, and every view is in the
audit log (each test on SQLite and on PostgreSQL)."""
from __future__ import annotations

import re

import playwright.sync_api as playwright_api
from sqlalchemy import select

from cloud.seed import DEMO_OPERATOR, DEMO_SECOND_OPERATOR
from cloud.store.models import AuditEntry, CaseEvent
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in  # noqa: F401 (browser: a fixture)
from tests.console.test_supervisor import ADMIN, add_admin

expect = playwright_api.expect
FILE = {"languages": "French, Occitan", "gp": "Dr Lefèvre, +33 4 78 00 00 00", "allergies": "Penicillin",
        "medication": "Metformin 500 mg twice a day", "mobility": "Walks with a frame; stairs are hard",
        "key_holders": "Marc Bernard (neighbour, flat 3)", "key_safe_code": "4821"}
ICCID = "89330123456789012342"  # 89 (telecom), France (33), Luhn check digit 2


def api(page, method, path, body=None):
    """One API call from the page's own session (cookie and CSRF token): status and body."""
    return page.evaluate("""async ([method, path, body]) => {
        const r = await fetch(path, {method, credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRF-Token": pers.csrf},
          body: body === null ? undefined : JSON.stringify(body)});
        return [r.status, await r.json().catch(() => null)];
    }""", [method, path, body])


def keysafe_views(stack):
    with stack.services.sm() as s:
        return s.execute(select(AuditEntry.actor, AuditEntry.target).where(AuditEntry.action == "keysafe_viewed")).all()


def test_the_operator_reads_the_file_and_the_key_safe_code_only_in_a_case_she_holds(stack, browser):
    add_admin(stack)
    admin = log_in(browser, stack.url, ADMIN)
    status, out = api(admin, "PUT", f"/api/admin/wearers/{stack.seed.wearer_id}/file", FILE)
    assert status == 200 and out["key_safe"] is True and "key_safe_code" not in out, out
    status, out = api(admin, "PUT", f"/api/admin/devices/{stack.seed.device_id}/numbers",
                      {"phone_number": "+33 6 12 34 56 78", "sim_number": ICCID})
    assert (status, out["phone_number"], out["sim_number"]) == (200, "+33612345678", ICCID), out
    status, out = api(admin, "PUT", f"/api/admin/devices/{stack.seed.device_id}/numbers", {"sim_number": "0611"})
    assert status == 422 and "ICCID" in str(out), out

    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    page.locator("#queue li").first.click()
    file = page.get_by_role("region", name="Wearer's file")
    for text in ("+33612345678", ICCID, "French, Occitan", "Dr Lefèvre", "Penicillin", "Metformin 500 mg",
                 "Walks with a frame", "Marc Bernard (neighbour, flat 3)"):
        expect(file).to_contain_text(text, timeout=10000)
    expect(page.get_by_text("4821")).to_have_count(0)  # not in the file, not anywhere on the page
    show = page.get_by_role("button", name="Show key-safe code")
    expect(show).to_be_disabled()  # not before the operator holds the case
    case_id = int(re.search(r"#case-(\d+)", page.url).group(1))
    status, _ = api(page, "POST", f"/api/cases/{case_id}/key-safe")
    assert status == 409 and keysafe_views(stack) == []

    page.keyboard.press("a")
    expect(show).to_be_enabled(timeout=10000)
    show.click()
    expect(file.get_by_role("status")).to_have_text("Key-safe code: 4821 (this view is recorded)")
    page.screenshot(path=str(ARTIFACTS / "console-wearer-file.png"))
    assert keysafe_views(stack) == [("operator:operator", f"wearer:{stack.seed.wearer_id}")]
    expect(page.locator("#timeline")).to_contain_text("Key-safe code viewed", timeout=10000)

    # Another operator of the same centre, who does not hold the case: refused, nothing audited.
    other = log_in(browser, stack.url, DEMO_SECOND_OPERATOR)
    status, out = api(other, "POST", f"/api/cases/{case_id}/key-safe")
    assert status == 409 and "4821" not in str(out)
    # Closed: not even its operator.
    page.get_by_label("Outcome").select_option("wearer_ok")
    page.keyboard.press("r")
    expect(page.get_by_text("Key-safe code: 4821")).to_have_count(0, timeout=10000)
    status, _ = api(page, "POST", f"/api/cases/{case_id}/key-safe")
    assert status == 409
    assert len(keysafe_views(stack)) == 1
    with stack.services.sm() as s:
        assert s.scalars(select(CaseEvent.action).where(CaseEvent.action == "keysafe_viewed")).all() == \
            ["keysafe_viewed"]
    watch.close()


def test_an_admin_assigns_and_reassigns_a_watch(stack, browser):
    add_admin(stack)
    admin = log_in(browser, stack.url, ADMIN)
    status, paul = api(admin, "POST", "/api/admin/wearers", {"name": "Paul Durand"})
    assert status == 201, paul
    status, out = api(admin, "PATCH", f"/api/admin/devices/{stack.seed.device_id}", {"wearer_id": paul["id"]})
    assert status == 200 and out["wearer_id"] == paul["id"], out
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    expect(page.locator("#queue li").first).to_contain_text("Paul Durand", timeout=10000)
    status, out = api(admin, "PATCH", f"/api/admin/devices/{stack.seed.device_id}",
                      {"wearer_id": stack.seed.wearer_id})
    assert status == 200 and out["wearer_id"] == stack.seed.wearer_id, out
    watch.close()


def test_the_admin_page_writes_the_file_and_assigns_the_watch_with_its_numbers(stack, browser):
    add_admin(stack)
    admin = log_in(browser, stack.url, ADMIN)
    status, paul = api(admin, "POST", "/api/admin/wearers", {"name": "Paul Durand"})
    admin.goto(stack.url + "/admin")
    admin.get_by_role("tab", name="Wearers and contacts").click()
    form = admin.get_by_role("form", name="Wearer's file")
    form.get_by_label("Wearer").select_option(label="Jeanne Martin")
    form.get_by_label("Allergies").fill("Penicillin")
    form.get_by_label("Key-safe code").fill("4821")
    form.get_by_role("button", name="Save the file").click()
    expect(form.get_by_role("status")).to_have_text("The wearer's file is saved.")
    form.get_by_label("Wearer").select_option(label="Paul Durand")
    form.get_by_label("Wearer").select_option(label="Jeanne Martin")
    expect(form.get_by_label("Allergies")).to_have_value("Penicillin", timeout=15000)
    expect(form.get_by_label("Key-safe code")).to_have_value("")  # written, never shown back
    expect(form.get_by_label("Key-safe code")).to_have_attribute("placeholder", "set (type to change)")

    admin.get_by_role("tab", name="Devices").click()
    watch_form = admin.get_by_role("form", name="Assign a watch, its numbers")
    watch_form.get_by_label("Watch", exact=True).select_option(stack.seed.device_id)
    watch_form.get_by_label("Wearer").select_option(label="Paul Durand")
    watch_form.get_by_label("SIM number (ICCID)").fill("8933 0123 4567 8901 2343")  # a wrong check digit
    watch_form.get_by_role("button", name="Save the watch").click()
    expect(watch_form.get_by_role("alert").filter(has_text="ICCID")).to_be_visible()
    watch_form.get_by_label("SIM number (ICCID)").fill("8933 0123 4567 8901 2342")
    watch_form.get_by_label("Watch phone").fill("+33 6 12 34 56 78")
    watch_form.get_by_role("button", name="Save the watch").click()
    expect(watch_form.get_by_role("status")).to_have_text(f"{stack.seed.device_id} is assigned to Paul Durand.")
    status, out = api(admin, "GET", f"/api/admin/wearers/{paul['id']}/file")
    assert (status, out["phone_number"], out["sim_number"]) == (200, "+33612345678", ICCID), out
