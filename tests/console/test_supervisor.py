"""The supervisor and admin pages in real headless Chromium (Debian's), driven by
Playwright, against the real cloud, broker and database (the same stack as
tests/console/test_operator.py, whose helpers these tests reuse; each test on SQLite and
on PostgreSQL)."""
import json
import time

import paho.mqtt.client as mqtt
import playwright.sync_api as playwright_api
import pytest

from cloud.seed import DEMO_OPERATOR, DEMO_SUPERVISOR
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in  # noqa: F401 (browser: a fixture)

expect = playwright_api.expect
ADMIN = ("admin", "admin-demo-pw")


def add_admin(stack):
    stack.services.accounts.create_operator(stack.seed.tenant_id, ADMIN[0], ADMIN[1], role="admin",
                                            display_name="Alex (admin)")


def open_page(browser, stack, who, path):
    page = log_in(browser, stack.url, who)
    page.goto(stack.url + path)
    return page


def device_client(stack, device_id, secret, will=False):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=False)
    c.username_pw_set(device_id, secret)
    if will:
        c.will_set(f"pers/v1/{device_id}/presence", json.dumps({"online": False}), qos=1, retain=True)
    connected = []
    c.on_connect = lambda cl, u, f, rc, p=None: connected.append(rc)
    c.tls_set(ca_certs=str(stack.broker.tls.cafile))  # a watch's path: TLS, as deployed
    c.connect(stack.settings.mqtt_host, stack.settings.mqtt_tls_port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not connected and time.monotonic() < deadline:
        time.sleep(0.05)
    return c, connected


def test_supervisor_sees_the_sla_and_the_board_change_live(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    op = log_in(browser, stack.url, DEMO_OPERATOR)  # her open console records her presence
    sup = open_page(browser, stack, DEMO_SUPERVISOR, "/supervisor")
    sup.wait_for_selector("body[data-connection=live]")
    expect(sup.locator("#sla-alarms")).to_have_text("0")
    expect(sup.locator("#sla-10-pct")).to_have_text("–")
    expect(sup.locator("#board-count")).to_have_text("0")
    claire = sup.locator("#operators tr", has_text="Claire (night shift)")
    expect(claire).to_contain_text("online")
    expect(sup.locator("#operators tr", has_text="Nina (night shift)")).to_contain_text("never")

    watch = DeviceSide(stack)
    watch.sos()
    row = sup.locator("#board tbody tr.kind-sos")
    expect(row).to_contain_text("Jeanne Martin", timeout=10000)  # no reload
    expect(row).to_contain_text("nobody yet")
    expect(row).to_contain_text("Lyon Alarm Centre")
    expect(sup.locator("#sla-pending")).to_have_text("1", timeout=10000)  # waiting, not yet counted
    expect(sup.locator("#sla-alarms")).to_have_text("0")
    waited = row.locator("td.waiting").inner_text()
    expect(row.locator("td.waiting")).not_to_have_text(waited, timeout=5000)  # the waiting time ticks

    op.wait_for_selector("#queue li.case.kind-sos", timeout=10000).click()
    op.wait_for_selector("#claim:not([disabled])")
    op.keyboard.press("a")
    op.wait_for_selector("#claim:disabled")

    # The SLA figures move without a reload: one alarm, claimed within 10 s.
    expect(sup.locator("#sla-alarms")).to_have_text("1", timeout=10000)
    expect(sup.locator("#sla-pending")).to_have_text("0")
    expect(sup.locator("#sla-10-pct")).to_have_text("100%")
    expect(sup.locator("#sla-10-count")).to_have_text("1 of 1")
    expect(sup.locator("#sla-10")).to_have_attribute("data-met", "true")
    expect(sup.locator("#sla-operators tbody")).to_contain_text("Claire (night shift)")
    expect(sup.locator("#sla-days tbody tr")).to_have_count(1)
    expect(row).to_contain_text("Claire (night shift)")
    expect(row).to_contain_text("claimed")
    expect(claire.locator("td").nth(4)).to_have_text("1")  # open cases she holds
    assert sup.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded
    sup.screenshot(path=str(ARTIFACTS / "console-supervisor.png"))

    # The case view shows the routing facts and the wearer's initials (no photo in the seed).
    facts = op.inner_text("#detail-facts")
    assert "Lyon Alarm Centre" in facts and "m from home" in facts, facts
    assert op.inner_text("#avatar") == "JM"

    # The board links each case to the queue's case view (keyboard: Tab to the link, Enter).
    row.locator("a").focus()
    sup.keyboard.press("Enter")
    sup.wait_for_selector("#detail:not([hidden])", timeout=10000)
    expect(sup.locator("#detail-title")).to_contain_text("Jeanne Martin")
    expect(sup.locator("#claim")).to_contain_text("Taken by Claire (night shift)")
    watch.close()


def test_admin_provisions_a_device_and_sees_the_secret_once(stack, browser):
    add_admin(stack)
    page = open_page(browser, stack, ADMIN, "/admin")
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#devices-table tbody tr")).to_have_count(1)  # the demo watch
    assert page.locator("#secret-box").is_hidden()

    # The server issues the device id (a tenant cannot claim another's watch): no id field.
    expect(page.locator("#dev-id")).to_have_count(0)
    page.select_option("#dev-wearer", label="Jeanne Martin")
    page.click("#provision")
    expect(page.locator("#secret-box")).to_be_visible()
    assert "shown once" in page.inner_text("#secret-box")
    dev_id = page.inner_text("#secret-device")
    assert dev_id and dev_id != stack.seed.device_id
    secret = page.inner_text("#secret-value")
    assert len(secret) >= 16
    row = page.locator(f"#devices-table tr[data-device-id='{dev_id}']")
    expect(row).to_contain_text("Jeanne Martin")
    expect(row).to_contain_text("unknown")
    page.screenshot(path=str(ARTIFACTS / "console-admin.png"))
    # The secret is real: the broker accepts it (its password file was rewritten and reloaded).
    client, rc = device_client(stack, dev_id, secret)
    assert rc and rc[0] == 0, rc
    client.loop_stop()
    client.disconnect()

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.locator("#secret-box").is_hidden()
    assert secret not in page.content()
    expect(page.locator(f"#devices-table tr[data-device-id='{dev_id}']")).to_have_count(1)

    # Rotating shows a new secret, once.
    page.once("dialog", lambda d: d.accept())
    page.locator(f"#devices-table tr[data-device-id='{dev_id}'] button.rotate").click()
    expect(page.locator("#secret-box")).to_be_visible()
    new_secret = page.inner_text("#secret-value")
    assert new_secret and new_secret != secret
    expect(page.locator(f"#devices-table tr[data-device-id='{dev_id}']")).to_contain_text("rotated")

    # Wearers: an empty name and a bad contact phone are shown next to their fields.
    page.click("#tab-wearers")
    page.fill("#w-c0-name", "Paul")
    page.fill("#w-c0-phone", "call me")
    page.click("#add-wearer")
    expect(page.locator("#w-name + .field-error")).to_contain_text("at least 1 character")
    expect(page.locator("#w-c0-phone + .field-error")).to_contain_text("'call me' is not a phone number")
    page.fill("#w-name", "Lucien Petit")
    page.fill("#w-c0-phone", "+33 6 33 33 33 33")  # as people write it: stored in E.164
    page.fill("#w-c1-name", "Aline")
    page.fill("#w-c1-phone", "+33644444444")
    page.click("#add-wearer")
    new_row = page.locator("#wearers-table tr", has_text="Lucien Petit")
    expect(new_row).to_contain_text("Paul 06 33 33 33 33")  # read aloud as in France
    assert new_row.locator("li").all_inner_texts() == ["Paul 06 33 33 33 33", "Aline 06 44 44 44 44"]  # cascade order
    expect(page.locator("#w-name + .field-error")).to_have_count(0)
    # Editing changes the cascade order: Aline first now.
    new_row.locator("button.edit").click()
    expect(page.locator("#w-name")).to_have_value("Lucien Petit")
    page.fill("#w-c0-name", "Aline")
    page.fill("#w-c0-phone", "+33644444444")
    page.fill("#w-c1-name", "Paul")
    page.fill("#w-c1-phone", "+33633333333")
    page.click("#add-wearer")
    expect(new_row.locator("li").first).to_have_text("Aline 06 44 44 44 44")
    assert new_row.locator("li").all_inner_texts() == ["Aline 06 44 44 44 44", "Paul 06 33 33 33 33"]
    page.screenshot(path=str(ARTIFACTS / "console-admin-wearers.png"))

    # The wearer's photo shows in the operator's case view (a data: URL; the CSP allows only those and same-origin).
    png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
           "RU5ErkJggg==")
    csrf = page.evaluate("pers.csrf")
    r = page.request.patch(f"{stack.url}/api/admin/wearers/{stack.seed.wearer_id}", data={"photo_url": png},
                           headers={"X-CSRF-Token": csrf})
    assert r.status == 200, r.text()
    watch = DeviceSide(stack)
    watch.sos()
    page.goto(stack.url + "/")
    page.wait_for_selector("#queue li.case.kind-sos", timeout=10000).click()
    expect(page.locator("#avatar img[alt='Photo of Jeanne Martin']")).to_be_visible()
    expect(page.locator("#avatar")).to_have_attribute("data-photo", "shown")
    watch.close()

    # Every admin action is in the audit log.
    audit = page.request.get(stack.url + "/api/admin/audit?limit=50").json()["items"]
    actions = [a["action"] for a in audit if a["actor"] == "operator:admin"]
    assert {"device.provisioned", "device.secret_rotated", "wearer.created"} <= set(actions), actions


def test_operator_is_refused_the_supervisor_and_admin_pages_and_apis(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    assert page.locator("#supervisor-link").is_hidden() and page.locator("#admin-link").is_hidden()
    csrf = page.evaluate("pers.csrf")
    for path in ("/supervisor", "/admin"):
        r = page.goto(stack.url + path)
        assert r.status == 403, path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        expect(page.locator("#refused")).to_contain_text("Not allowed")
    for path in ("/api/supervisor/sla", "/api/supervisor/operators", "/api/supervisor/devices",
                 "/api/admin/devices", "/api/admin/wearers", "/api/admin/operators", "/api/admin/tenant"):
        assert page.request.get(stack.url + path).status == 403, path
    r = page.request.post(stack.url + "/api/admin/devices", data={"id": "864000000000077"},
                          headers={"X-CSRF-Token": csrf})
    assert r.status == 403
    with stack.services.sm() as s:
        from cloud.store.models import Device
        assert s.get(Device, "864000000000077") is None

    # A supervisor has the supervisor page, not the admin page.
    sup = log_in(browser, stack.url, DEMO_SUPERVISOR)
    assert sup.locator("#supervisor-link").is_visible() and sup.locator("#admin-link").is_hidden()
    r = sup.goto(stack.url + "/supervisor")
    assert r.status == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    assert sup.goto(stack.url + "/admin").status == 403
    assert sup.request.get(stack.url + "/api/admin/devices").status == 403
    # No session at all: to the login page.
    anon = browser.new_context().new_page()
    anon.goto(stack.url + "/supervisor")
    assert anon.url == stack.url + "/login"


@pytest.fixture
def quick_offline_stack(stack_factory):
    """The stack of tests/conftest.py, with a one-second grace before a suspect
    watch is declared offline and escalation after 2 s unclaimed, so the real
    presence and escalation paths run within a test."""
    return stack_factory(offline_grace_s=1, escalate_unclaimed_s=2)


def test_offline_and_low_battery_devices_show_on_the_supervisor_page(quick_offline_stack, browser):
    from cloud.domain.accounts import provision_device
    stack = quick_offline_stack
    sup = open_page(browser, stack, DEMO_SUPERVISOR, "/supervisor")
    sup.wait_for_selector("body[data-connection=live]")
    expect(sup.locator("#devices-empty")).to_be_visible()

    # The demo watch reports a low battery.
    watch = DeviceSide(stack)
    watch.client.publish(f"pers/v1/{watch.id}/status", json.dumps(
        {"v": 1, "mid": "5.1", "ts": int(time.time()), "batt": {"pct": 9}, "fw": "1.2.0"}), qos=1).wait_for_publish(5)
    # A second watch comes online, then its link drops: the broker publishes its last will,
    # and after the grace the cloud declares it offline.
    dev = provision_device(stack.services.sm, stack.services.clock, stack.seed.tenant_id, device_id="864000000000123",
                           actor="test", broker=stack.services.broker_auth)
    quiet, rc = device_client(stack, dev.device_id, dev.secret, will=True)
    assert rc == [0], rc
    quiet.publish(f"pers/v1/{dev.device_id}/presence", json.dumps({"online": True}), qos=1, retain=True
                  ).wait_for_publish(5)
    time.sleep(0.5)
    quiet.socket().close()  # no DISCONNECT packet: the broker sends the will
    quiet.loop_stop()

    low = sup.locator(f"#devices tr[data-device-id='{watch.id}']")
    expect(low).to_contain_text("9% low", timeout=25000)
    expect(low).to_contain_text("Jeanne Martin")
    expect(low).to_contain_text("1.2.0")
    off = sup.locator("#devices tr[data-device-id='864000000000123']")
    expect(off).to_contain_text("offline", timeout=25000)
    expect(off).to_contain_text("unassigned")
    expect(sup.locator("#devices-count")).to_have_text("2")
    assert sup.evaluate("performance.getEntriesByType('navigation').length") == 1
    sup.screenshot(path=str(ARTIFACTS / "console-supervisor-devices.png"))

    # An SOS nobody claims: the escalation reaches the supervisor's page.
    watch.sos()
    expect(sup.locator("#escalations")).to_contain_text("Jeanne Martin", timeout=15000)
    expect(sup.locator("#escalations")).to_contain_text("escalated to level 1")
    expect(sup.locator("#board tbody tr.kind-sos")).to_contain_text("level 1")
    watch.close()
