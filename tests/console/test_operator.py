"""The operator console in real headless Chromium (Debian's), driven by Playwright,
against the real cloud, broker and database (each test on SQLite and on PostgreSQL,
where the live feed goes through the LISTEN/NOTIFY relay)."""
import json
import os
import queue
import re
import shutil
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import playwright.sync_api as playwright_api  # a dev dependency: never skip the browser tests
import pytest

from cloud.seed import DEMO_OPERATOR, DEMO_OTHER_OPERATOR, DEMO_SECOND_OPERATOR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run scripts/install-system-deps.sh chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class DeviceSide:
    """The demo watch's MQTT identity. The console tests are about the console:
    the firmware's own path is covered by tests/system/test_end_to_end.py."""

    def __init__(self, stack):
        self.stack, self.id = stack, stack.seed.device_id
        self.inbox: queue.Queue = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.id, clean_session=False)
        self.client.username_pw_set(self.id, stack.seed.device_secret)
        self.client.on_message = lambda cl, u, m: self.inbox.put(json.loads(m.payload))
        self.client.tls_set(ca_certs=str(stack.broker.tls.cafile))  # a watch's path: TLS, as deployed
        self.client.connect(stack.settings.mqtt_host, stack.settings.mqtt_tls_port)
        self.client.loop_start()
        self.client.subscribe(f"pers/v1/{self.id}/cmd", qos=1)
        self.seq = 0

    def sos(self, kind="sos"):
        self.seq += 1
        body = {"v": 1, "mid": f"1.{self.seq}", "ts": int(time.time()), "kind": kind, "trigger": "button",
                "loc": {"lat": 45.7650, "lon": 4.8370, "acc": 12.0, "src": "gnss", "ts": int(time.time())},
                "batt": {"pct": 64}, "vitals": {"hr": 92}, "net": {"profile": "fr-1", "op": "20801"}}
        self.client.publish(f"pers/v1/{self.id}/alert", json.dumps(body), qos=1).wait_for_publish(5)

    def wait_command(self, match, timeout=10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                cmd = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if match(cmd):
                return cmd
        raise AssertionError("the watch never received the expected command")

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def log_in(browser, url, who):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(url + "/login")
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("#login-button")
    page.wait_for_url(url + "/")
    page.wait_for_selector("body[data-connection=live]")
    return page


def timeline_has(page, text):
    playwright_api.expect(page.locator("#timeline")).to_contain_text(text, timeout=10000)


def test_operator_handles_an_sos_from_queue_to_resolution(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    assert page.inner_text("#case-count") == "0"
    watch = DeviceSide(stack)
    watch.sos()

    card = page.wait_for_selector("#queue li.case.kind-sos", timeout=10000)  # no reload
    assert "Jeanne Martin" in card.inner_text() and "45.76500" in card.inner_text()
    assert page.get_attribute("body", "data-alarm") == "on"
    page.wait_for_selector("body[data-sound=on]", timeout=5000)  # the beep is playing
    page.screenshot(path=str(ARTIFACTS / "console-queue.png"))

    card.click()
    page.wait_for_selector("#detail:not([hidden])")
    facts = page.inner_text("#detail-facts")
    for expected in ("85 years", "Type 2 diabetes", "12 rue de la République", "64%", "92 bpm", "fr-1",
                     "from home"):
        assert expected in facts, facts
    page.keyboard.press("a")  # acknowledge
    page.wait_for_selector("#claim:disabled")
    assert page.get_attribute("body", "data-alarm") == "off"
    timeline_has(page, "Acknowledged")
    watch.wait_command(lambda c: c.get("stage") == "operator")

    page.click("#call")
    call = watch.wait_command(lambda c: c["type"] == "call")
    assert call["number"] == "+33400000000"
    timeline_has(page, "Call-back requested")
    # The watch dials and acks: the call's progress shows in the console.
    watch.client.publish(f"pers/v1/{watch.id}/ack", json.dumps({"v": 1, "mid": "1.90", "cid": call["cid"],
                                                                 "ok": True}), qos=1)
    playwright_api.expect(page.locator("#commands")).to_contain_text("call-back: acknowledged by the watch",
                                                                    timeout=10000)

    assert "Sophie Martin" in page.inner_text("#notify")
    page.click("#notify")  # no notification channel in the demo: the console says nothing was sent
    playwright_api.expect(page.locator("#action-error")).to_contain_text("nothing was sent to Sophie Martin")
    timeline_has(page, "Sophie Martin NOT reached")
    page.select_option("#dispatch-service", "ambulance")
    page.fill("#dispatch-ref", "SAMU-69-4411")
    page.click("#dispatch")
    timeline_has(page, "Ambulance called, reference SAMU-69-4411")
    page.fill("#note", "Daughter on her way with the key")
    page.click("#add-note")
    timeline_has(page, "Daughter on her way")
    page.screenshot(path=str(ARTIFACTS / "console-case.png"))

    page.select_option("#outcome", "ambulance")
    page.click("#resolve")
    playwright_api.expect(page.locator("#case-count")).to_have_text("0", timeout=10000)
    watch.wait_command(lambda c: c.get("stage") == "closed")
    watch.close()


def test_two_operators_race_to_claim_and_only_one_wins(stack, browser):
    first = log_in(browser, stack.url, DEMO_OPERATOR)
    second = log_in(browser, stack.url, DEMO_SECOND_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    for page in (first, second):
        page.wait_for_selector("#queue li.case").click()
        page.wait_for_selector("#claim:not([disabled])")
    # Both click at (nearly) the same moment; the server decides.
    first.evaluate("document.getElementById('claim').click()")
    second.evaluate("document.getElementById('claim').click()")
    for page in (first, second):
        playwright_api.expect(page.locator("#claim")).to_have_text(
            re.compile(r"^(Acknowledged by you|Taken by)"), timeout=10000)
        playwright_api.expect(page.locator("#claim")).to_be_disabled()
    texts = sorted([first.inner_text("#claim"), second.inner_text("#claim")])
    assert texts[0].startswith("Acknowledged by you"), texts
    assert texts[1].startswith("Taken by"), texts
    loser = first if first.inner_text("#claim").startswith("Taken by") else second
    # The loser sees the winner's name, and either got a 409 or saw the claim first.
    assert "night shift" in loser.inner_text("#claim")
    watch.close()


def test_other_tenant_cannot_see_the_case(stack, browser):
    watch = DeviceSide(stack)
    watch.sos()
    own = log_in(browser, stack.url, DEMO_OPERATOR)
    own.wait_for_selector("#queue li.case")
    other = log_in(browser, stack.url, DEMO_OTHER_OPERATOR)
    other.wait_for_selector("body[data-synced=yes]")  # the snapshot is in: the queue is the server's
    assert other.inner_text("#case-count") == "0"
    # Asked for by its id from the other tenant's session, the case does not exist.
    case_id = own.eval_on_selector("#queue li.case", "li => li.dataset.caseId")
    assert other.evaluate("id => fetch('/api/cases/' + id).then(r => r.status)", case_id) == 404
    assert other.evaluate("() => fetch('/api/cases').then(r => r.json())") == []
    watch.close()


def test_connection_drop_and_resync(stack, browser):
    """The cloud's HTTP side goes away and comes back: the page notices, reconnects
    by itself and shows the case that arrived meanwhile, without a reload."""
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    stack.stop_cloud()
    page.wait_for_selector("body[data-connection=lost]", timeout=10000)
    watch = DeviceSide(stack)
    watch.sos()  # held by the broker for the cloud's persistent session
    stack.start_cloud()
    page.wait_for_selector("body[data-connection=live]", timeout=20000)
    page.wait_for_selector("#queue li.case.kind-sos", timeout=10000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded
    watch.close()


def test_wrong_password_shows_an_error(stack, browser):
    page = browser.new_context().new_page()
    page.goto(stack.url + "/login")
    page.fill("#username", "operator")
    page.fill("#password", "wrong")
    page.click("#login-button")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "wrong username or password" in page.inner_text("#login-error")
