"""What a broken watch sends reaches the operator as an alarm, in real Chromium, with
what was wrong said in words; the quarantine is visible to supervisors.

Before the contract bounded its numbers, one ``"acc": Infinity`` made the live
feed's snapshot unreadable to ``JSON.parse`` and the console showed no case at
all, and a fix time of 10^13 broke the case view ("Invalid time value")."""
from __future__ import annotations

import json

import playwright.sync_api as playwright_api

from cloud.seed import DEMO_OPERATOR, DEMO_SUPERVISOR
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in  # noqa: F401 (browser: a fixture)
from tests.console.test_supervisor import open_page

expect = playwright_api.expect


def test_an_alarm_with_a_broken_clock_and_position_shows_with_its_warnings(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    watch = DeviceSide(stack)
    # Written as a broken watch writes it: not JSON that Python's json.dumps would make.
    raw = ('{"v":1,"mid":"9.1","ts":1180591620717411303424,"kind":"sos","trigger":"button",'
           '"loc":{"lat":45.765,"lon":4.837,"acc":Infinity,"src":"gnss","ts":10000000000000},'
           '"batt":{"pct":NaN,"mv":3800},"vitals":{"hr":88}}')
    watch.client.publish(f"pers/v1/{watch.id}/alert", raw, qos=1).wait_for_publish(5)
    ack = watch.wait_command(lambda c: c.get("type") == "alert_ack" and c.get("ref") == "9.1")
    assert ack["stage"] == "received"

    card = page.locator("#queue li.case.kind-sos")
    expect(card).to_contain_text("Watch clock wrong", timeout=10000)
    expect(card).to_contain_text("Jeanne Martin")
    card.click()
    expect(page.locator("#detail-badges")).to_contain_text("Watch clock wrong")
    expect(page.locator("#detail-facts")).to_contain_text("88 bpm")
    expect(page.locator("#detail-facts")).to_contain_text("45.76500")  # the position, without its bad fields
    expect(page.locator("#timeline")).to_contain_text("The watch sent some unusable data")
    page.reload()  # the snapshot on a fresh connection: readable too
    expect(page.locator("#queue li.case.kind-sos")).to_contain_text("Watch clock wrong", timeout=10000)
    assert errors == [], errors
    page.screenshot(path=str(ARTIFACTS / "console-alarm-warnings.png"))
    watch.close()


def test_unreadable_bytes_on_the_alert_topic_open_a_case_and_show_in_the_quarantine(stack, browser):
    watch = DeviceSide(stack)
    watch.client.publish(f"pers/v1/{watch.id}/alert", b"SOS!!!", qos=1).wait_for_publish(5)
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    card = page.locator("#queue li.case.kind-sos")
    expect(card).to_contain_text("Alarm message unreadable", timeout=10000)
    expect(card).to_contain_text("Position unknown")

    sup = open_page(browser, stack, DEMO_SUPERVISOR, "/supervisor")
    row = sup.locator("#quarantine tbody tr")
    expect(row).to_contain_text("not_json", timeout=10000)
    expect(row).to_contain_text("SOS!!!")
    expect(row).to_contain_text(watch.id)
    case_id = json.loads(sup.evaluate("JSON.stringify([...document.querySelectorAll('#quarantine td')]"
                                      ".map(td => td.textContent))"))[4]
    assert case_id.startswith("#")
    watch.close()
