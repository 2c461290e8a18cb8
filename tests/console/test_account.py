"""One's own password, from the account page in Debian's Chromium against the real
service: a wrong current password changes nothing and says so; the right one
changes it, signs out the operator's console open elsewhere (its live feed closes
and it goes to the login page) and keeps this one; the new password signs in."""
import playwright.sync_api as playwright_api
import pytest

from cloud.seed import DEMO_OPERATOR
from tests.console.test_operator import browser, log_in  # noqa: F401 (browser: a fixture)

expect = playwright_api.expect
NEW = "a-new-long-password"


# The revocation's path across replicas (PostgreSQL) is tested in tests/cloud/api/test_sessions.py.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_an_operator_changes_their_password_and_their_other_console_is_signed_out(stack, browser):
    elsewhere = log_in(browser, stack.url, DEMO_OPERATOR)   # the console on another desk
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    page.get_by_role("link", name="Claire").click()        # the operator's name leads to the account
    page.wait_for_url(stack.url + "/account")
    form = page.get_by_role("form", name="Change your password")
    form.get_by_label("Current password").fill("not-my-password")
    form.get_by_label("New password (8 characters or more)").fill(NEW)
    form.get_by_label("New password again").fill(NEW)
    form.get_by_role("button", name="Change the password").click()
    expect(form.get_by_role("alert")).to_have_text("The current password is not right. Nothing was changed.")
    expect(elsewhere.locator("body")).to_have_attribute("data-connection", "live")

    form.get_by_label("Current password").fill(DEMO_OPERATOR[1])
    form.get_by_label("New password again").fill(NEW + "x")
    form.get_by_role("button", name="Change the password").click()
    expect(form.get_by_role("alert")).to_have_text("The two new passwords differ.")

    form.get_by_label("New password again").fill(NEW)
    form.get_by_role("button", name="Change the password").click()
    expect(form.get_by_role("status")).to_have_text("Your password is changed. 1 other session was signed out.")
    elsewhere.wait_for_url(stack.url + "/login", timeout=15000)   # its feed closed with the session
    assert page.request.get(stack.url + "/api/me").status == 200     # this one goes on
    assert elsewhere.request.get(stack.url + "/api/me").status == 401

    fresh = log_in(browser, stack.url, (DEMO_OPERATOR[0], NEW))
    expect(fresh.locator("#operator-name")).to_contain_text("Claire")
