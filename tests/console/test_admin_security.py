"""Accounts that can be taken away, seen from the browsers (Debian's Chromium via
Playwright) against the real service: an administrator deactivates an operator and
the operator's open console leaves for the login page; the Security tab shows a
stranger's login throttle, clears it, and finds it all in the audit log."""
import httpx
import playwright.sync_api as playwright_api

from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR
from tests.console.test_operator import ARTIFACTS, browser, log_in  # noqa: F401 (browser: a fixture)

expect = playwright_api.expect
STRANGER = "127.0.0.2"  # a loopback address of its own: the server sees another client


def test_a_deactivated_operators_open_console_goes_to_the_login_page(stack, browser):
    console = log_in(browser, stack.url, DEMO_OPERATOR)
    console.wait_for_selector("body[data-connection=live]")
    admin = log_in(browser, stack.url, DEMO_ADMIN)
    admin.goto(stack.url + "/admin#operators")
    admin.wait_for_selector("body[data-ready=true]")
    admin.get_by_role("button", name=f"Deactivate {DEMO_OPERATOR[0]}").click()
    expect(admin.locator("#operators-table tr", has_text="Claire")).to_contain_text("deactivated")
    console.wait_for_url(stack.url + "/login", timeout=15000)  # the live feed closed (4401)
    r = console.request.get(stack.url + "/api/cases")
    assert r.status == 401


def test_the_security_tab_shows_and_clears_a_strangers_throttle_and_audits_it(stack_factory, browser):
    stack = stack_factory(login_backoff_base_s=600)  # the throttle still waits when the page shows it
    with httpx.Client(base_url=stack.url, transport=httpx.HTTPTransport(local_address=STRANGER)) as stranger:
        codes = [stranger.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": f"guess-{i}"})
                 .status_code for i in range(6)]
    assert codes[:4] == [401] * 4 and 429 in codes[4:]
    page = log_in(browser, stack.url, DEMO_ADMIN)
    page.goto(stack.url + "/admin#security")
    page.wait_for_selector("body[data-ready=true]")
    row = page.locator("#throttles-table tbody tr", has_text=DEMO_OPERATOR[0])
    expect(row).to_contain_text(STRANGER)
    expect(row).to_contain_text("s more")
    page.screenshot(path=str(ARTIFACTS / "console-admin-security.png"))
    page.get_by_role("button", name=f"Clear the throttle on {DEMO_OPERATOR[0]} from {STRANGER}").click()
    expect(row).to_have_count(0)
    page.fill("#a-user", DEMO_OPERATOR[0])
    page.fill("#a-action", "login")
    page.click("#audit-search")
    table = page.locator("#audit-table tbody")
    expect(table.locator("tr", has_text="login.throttled")).to_have_count(1)
    expect(table.locator("tr", has_text="login.failed")).to_have_count(4)
    page.fill("#a-user", "")
    page.fill("#a-action", "login.throttle_cleared")
    page.click("#audit-search")
    expect(table.locator("tr")).to_have_count(1)
    expect(table).to_contain_text(STRANGER)


def test_the_login_page_says_how_long_a_throttle_waits(stack_factory, browser):
    stack = stack_factory(login_backoff_base_s=600)
    page = browser.new_page()
    page.goto(stack.url + "/login")
    statuses = []
    for i in range(5):
        page.fill("#username", DEMO_OPERATOR[0])
        page.fill("#password", f"guess-{i}")
        with page.expect_response("**/api/auth/login") as answer:
            page.click("#login-button")
        statuses.append(answer.value.status)
    assert statuses == [401] * 4 + [429]
    wait = int(answer.value.headers["retry-after"])
    assert 500 < wait <= 600  # the 600 s backoff, less the time the machine took
    expect(page.locator("#login-error")).to_have_text(f"Too many failed attempts from here. Try again in {wait} s.")
