"""What an alarm centre's operator needs from the queue, in real headless Chromium
(Debian's) against the real cloud, broker and database: the order and look of the
alarms, the waiting time read against the answer targets, the page title, desktop
notifications and sound, a loud disconnect, and a reload that loses nothing.
Each test on SQLite and on PostgreSQL (the stack fixture)."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import paho.mqtt.client as mqtt
import playwright.sync_api as playwright_api
from sqlalchemy import update

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AlertCase
from hwsim.provision import provision_fleet
from tests.console.test_operator import ARTIFACTS, CHROMIUM_ARGS, DeviceSide, browser, log_in  # noqa: F401

expect = playwright_api.expect


class Watch:
    """A provisioned watch's MQTT identity that raises one alert of a given kind."""

    def __init__(self, stack, device_id, secret):
        self.id = device_id
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=False)
        self.client.username_pw_set(device_id, secret)
        self.client.tls_set(ca_certs=str(stack.broker.tls.cafile))  # a watch's path: TLS, as deployed
        self.client.connect(stack.settings.mqtt_host, stack.settings.mqtt_tls_port)
        self.client.loop_start()
        self.seq = 0

    def alert(self, kind):
        self.seq += 1
        now = int(time.time())
        body = {"v": 1, "mid": f"1.{self.seq}", "ts": now, "kind": kind, "trigger": "button",
                "loc": {"lat": 45.7650, "lon": 4.8370, "acc": 12.0, "src": "gnss", "ts": now}}
        self.client.publish(f"pers/v1/{self.id}/alert", json.dumps(body), qos=1).wait_for_publish(5)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def watches(stack, n, prefix="q"):
    creds = provision_fleet(stack.settings, n, prefix=prefix)
    time.sleep(0.5)  # Mosquitto re-reads its password file on SIGHUP
    return [Watch(stack, d, s) for d, s in creds]


def backdate(stack, device_id, seconds):
    """The case of ``device_id`` opened ``seconds`` ago: what a waiting alarm looks like
    after that long, without waiting that long."""
    with stack.services.sm() as s:
        opened = stack.services.clock.now() - timedelta(seconds=seconds)
        s.execute(update(AlertCase).where(AlertCase.device_id == device_id)
                  .values(opened_at=opened, routed_at=opened))
        s.commit()


def queue_texts(page):
    return page.locator("#queue li").all_inner_texts()


def card(page, device_id):
    return page.locator("#queue li", has_text=device_id)


def test_oldest_unanswered_first_kinds_in_words_and_a_new_alarm_does_not_steal_the_open_case(stack, browser):
    sos, battery, fall, late = watches(stack, 4)
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sos.alert("sos")
    battery.alert("low_battery")
    fall.alert("fall")
    for w in (sos, battery, fall):
        expect(card(page, w.id)).to_be_visible(timeout=10000)
    backdate(stack, sos.id, 50)
    backdate(stack, battery.id, 120)
    backdate(stack, fall.id, 20)
    page.reload()
    page.wait_for_selector("body[data-synced=yes]")
    # The alarms before the technical alert however old it is; within the alarms, the oldest first.
    expect(page.locator("#queue li").first).to_contain_text(sos.id)
    texts = queue_texts(page)
    assert [next(w.id for w in (sos, battery, fall) if w.id in t) for t in texts] == [sos.id, fall.id, battery.id]
    # The kind in words and an icon, the waiting time against the targets in words.
    assert "⚠ SOS" in texts[0] and "past 40 s" in texts[0], texts
    assert "Fall" in texts[1] and "past 10 s" in texts[1], texts
    assert "⚡ Low battery" in texts[2] and "past 40 s" in texts[2], texts
    expect(page).to_have_title("(3) OpenPERS")

    card(page, fall.id).click()
    expect(page.locator("#detail-title")).to_contain_text(fall.id)
    page.keyboard.press("a")
    expect(page.locator("#claim")).to_be_disabled()
    # Claimed: the fall goes below what still waits, and its time says how fast it was answered.
    expect(page.locator("#queue li").last).to_contain_text(fall.id)
    expect(card(page, fall.id)).to_contain_text("answered within 40 s")
    expect(page).to_have_title("(2) OpenPERS")

    late.alert("sos")
    expect(card(page, late.id)).to_contain_text("within 10 s", timeout=10000)
    # The new SOS waits behind the older one; the operator's open case stays the fall.
    texts = queue_texts(page)
    assert sos.id in texts[0] and late.id in texts[1] and battery.id in texts[2] and fall.id in texts[3], texts
    expect(page.locator("#detail-title")).to_contain_text(fall.id)
    expect(page).to_have_title("(3) OpenPERS")
    page.screenshot(path=str(ARTIFACTS / "console-queue-order.png"))
    assert errors == []
    for w in (sos, battery, fall, late):
        w.close()


def test_title_notification_and_sound_until_acknowledged(stack, browser):
    """With the console in the background, a new alarm shows in the title, raises a
    desktop notification (permission granted) and sounds until it is acknowledged."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.grant_permissions(["notifications"], origin=stack.url)
    # Record what the page asks the browser to show (the real Notification still runs).
    context.add_init_script("""
      window.__shown = [];
      const Real = window.Notification;
      window.Notification = class extends Real {
        constructor(title, opts) { super(title, opts); window.__shown.push(title); }
      };
      window.Notification.requestPermission = Real.requestPermission.bind(Real);
      Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
    """)
    page = context.new_page()
    page.goto(stack.url + "/login")
    page.fill("#username", DEMO_OPERATOR[0])
    page.fill("#password", DEMO_OPERATOR[1])
    page.click("#login-button")
    page.wait_for_selector("body[data-synced=yes]")
    expect(page).to_have_title("OpenPERS")
    # Playwright tells every page it has the focus; let the browser say which one really has it.
    context.new_cdp_session(page).send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    other = context.new_page()  # another tab in front: the console is in the background
    other.goto(stack.url + "/login")
    other.bring_to_front()
    page.wait_for_function("() => !document.hasFocus()")

    watch = DeviceSide(stack)
    watch.sos()
    expect(page).to_have_title("(1) OpenPERS", timeout=10000)
    page.wait_for_function("() => window.__shown.length === 1")
    assert page.evaluate("window.__shown") == ["SOS: Jeanne Martin"]
    status = page.get_by_role("status").filter(has_text="Alarm sounding")
    expect(status).to_have_text("Alarm sounding until acknowledged", timeout=5000)
    # It keeps sounding: the beep repeats (each one a real oscillator in the page's AudioContext).
    page.evaluate("window.__beeps = 0; const o = AudioContext.prototype.createOscillator;"
                  "AudioContext.prototype.createOscillator = function () { window.__beeps++; return o.call(this); }; 0")
    page.wait_for_function("() => window.__beeps >= 2", timeout=10000)

    page.bring_to_front()
    page.locator("#queue li").first.click()
    page.keyboard.press("a")
    expect(page).to_have_title("OpenPERS", timeout=10000)
    expect(page.get_by_text("Alarm sounding")).to_have_count(0)
    beeps = page.evaluate("window.__beeps")
    # Acknowledged: no beep in the next two beep periods (waited for, not slept).
    page.wait_for_function("() => new Promise(r => setTimeout(() => r(true), 4500))", timeout=10000)
    assert page.evaluate("window.__beeps") == beeps
    assert page.evaluate("window.__shown.length") == 1  # one notification per alarm
    watch.close()
    context.close()


def test_a_lost_feed_is_said_on_the_whole_page_until_resynchronised(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    expect(page.get_by_role("alert").filter(has_text="Live feed lost")).to_have_count(0)
    stack.stop_cloud()
    banner = page.get_by_role("alert").filter(has_text="Live feed lost")
    expect(banner).to_be_visible(timeout=10000)
    expect(banner).to_contain_text(re.compile(r"Data is \d+s old \(last live at "))
    expect(banner).to_contain_text(re.compile(r"Data is ([3-9]|\d\d)s old"), timeout=10000)  # it ticks
    page.screenshot(path=str(ARTIFACTS / "console-disconnected.png"))
    watch = DeviceSide(stack)
    watch.sos()  # held by the broker for the cloud's persistent session
    stack.start_cloud()
    expect(banner).to_be_hidden(timeout=30000)
    # Back and resynchronised: the alarm raised during the outage is in the queue.
    expect(page.locator("#queue li", has_text="Jeanne Martin")).to_be_visible(timeout=10000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded
    watch.close()


def test_the_open_case_and_the_unsent_note_survive_a_reload(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    page.locator("#queue li").first.click()
    page.keyboard.press("a")
    expect(page.locator("#claim")).to_be_disabled()
    expect(page).to_have_url(re.compile(r"/#case-\d+$"))
    page.fill("#note", "Neighbour Mr Blanc has a key, calling him")
    page.reload()
    page.wait_for_selector("body[data-synced=yes]")
    expect(page.locator("#detail-title")).to_contain_text("Jeanne Martin")
    expect(page.get_by_label("Note")).to_have_value("Neighbour Mr Blanc has a key, calling him")
    page.click("#add-note")
    expect(page.locator("#timeline")).to_contain_text("Neighbour Mr Blanc", timeout=10000)
    expect(page.get_by_label("Note")).to_have_value("")
    page.reload()  # an added note is no longer a draft
    page.wait_for_selector("body[data-synced=yes]")
    expect(page.locator("#detail-title")).to_contain_text("Jeanne Martin")
    expect(page.get_by_label("Note")).to_have_value("")
    watch.close()


def test_the_map_says_when_its_tiles_cannot_load_and_still_gives_the_position(stack_factory, browser):
    from tests.conftest import free_port
    # A tile server on a loopback port where nothing listens: every tile fails.
    stack = stack_factory(map_tile_url=f"http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png")
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    page.locator("#queue li").first.click()
    status = page.get_by_role("status").filter(has_text="Map offline")
    expect(status).to_contain_text("the map tiles could not be loaded", timeout=15000)
    expect(status).to_contain_text("Position 45.76500, 4.83700 (accuracy about 12 m)")
    expect(status).to_contain_text("12 rue de la République")
    page.screenshot(path=str(ARTIFACTS / "console-map-offline.png"))
    watch.close()
