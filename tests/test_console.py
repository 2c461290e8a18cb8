"""The operator console in real headless Chromium (Debian's), driven by Playwright."""
import json
import os
import queue
import shutil
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud.seed import DEMO_OPERATOR, DEMO_OTHER_OPERATOR

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: run scripts/install-system-deps.sh chromium")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def watch(stack) -> tuple[mqtt.Client, queue.Queue]:
    """A device-side MQTT client with the demo watch's credentials (the console
    test is about the console; the firmware path is tested in test_end_to_end)."""
    inbox: queue.Queue = queue.Queue()
    dev_id = stack.seed.device_id
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dev_id, clean_session=False)
    c.username_pw_set(dev_id, stack.seed.device_secret)
    c.on_message = lambda cl, u, m: inbox.put(json.loads(m.payload))
    c.connect(stack.settings.mqtt_host, stack.settings.mqtt_port)
    c.loop_start()
    c.subscribe(f"pers/v1/{dev_id}/cmd", qos=1).__class__  # noqa: B018
    return c, inbox


def log_in(page, url, who):
    page.goto(url + "/login")
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("#login-button")
    page.wait_for_url(url + "/")
    page.wait_for_selector("body[data-connection=live]")


def test_sos_appears_live_and_operator_acknowledges(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    log_in(page, stack.url, DEMO_OPERATOR)
    assert page.inner_text("#case-count") == "0"

    dev, inbox = watch(stack)
    sos = {"v": 1, "mid": "1.1", "ts": None, "kind": "sos", "trigger": "button",
           "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss"}, "batt": {"pct": 64}, "vitals": {"hr": 92}}
    dev.publish(f"pers/v1/{stack.seed.device_id}/alert", json.dumps(sos), qos=1)

    card = page.wait_for_selector("#queue li.case.kind-sos", timeout=10000)  # no reload
    assert "Jeanne Martin" in card.inner_text() and "45.76400" in card.inner_text()
    assert page.get_attribute("body", "data-alarm") == "on"
    page.screenshot(path=str(ARTIFACTS / "console-queue.png"))

    card.click()
    page.wait_for_selector("#detail:not([hidden])")
    page.click("#claim")
    page.wait_for_selector("#claim:disabled")
    assert page.get_attribute("body", "data-alarm") == "off"
    page.wait_for_function("document.querySelector('#timeline').innerText.includes('claimed')")
    page.screenshot(path=str(ARTIFACTS / "console-case.png"))

    stages = []
    while "operator" not in stages:
        cmd = inbox.get(timeout=10)
        stages.append(cmd.get("stage"))
    assert stages[0] == "received"

    # Another tenant's operator sees nothing.
    other = browser.new_context().new_page()
    log_in(other, stack.url, DEMO_OTHER_OPERATOR)
    other.wait_for_timeout(500)
    assert other.inner_text("#case-count") == "0"
    dev.loop_stop()
    ctx.close()


def test_wrong_password_shows_an_error(stack, browser):
    page = browser.new_context().new_page()
    page.goto(stack.url + "/login")
    page.fill("#username", "operator")
    page.fill("#password", "wrong")
    page.click("#login-button")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "wrong username or password" in page.inner_text("#login-error")
