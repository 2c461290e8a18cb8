"""The call the watch reports, in real Chromium against the real cloud: the case
shows what the watch's modem said of the call (dialling, ringing, connected,
ended with its duration, busy), on the case and in the timeline, in words, and
nothing of a call the watch has not reported yet."""
from __future__ import annotations

import json
import re
import time

import playwright.sync_api as playwright_api

from cloud.seed import DEMO_OPERATOR
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in, timeline_has  # noqa: F401 (browser: a fixture)

expect = playwright_api.expect
CENTRE = "+33400000000"


def report(watch: DeviceSide, mid: str, call: dict, ts: int | None = None) -> None:
    """A status with the call's part, as the firmware sends one (firmware/app/calls.py)."""
    body = {"v": 1, "mid": mid, "ts": ts, "batt": {"pct": 63}, "call": {"dir": "out", "number": CENTRE, **call}}
    watch.client.publish(f"pers/v1/{watch.id}/status", json.dumps(body), qos=1).wait_for_publish(5)


def call_fact(page):
    return page.locator("#detail-facts dd").nth(
        page.locator("#detail-facts dt").all_inner_texts().index("Call"))


def test_the_case_shows_the_call_as_the_watch_reports_it(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    watch = DeviceSide(stack)
    watch.sos()
    page.wait_for_selector("#queue li.case.kind-sos", timeout=10000).click()
    page.wait_for_selector("#detail:not([hidden])")
    page.keyboard.press("a")
    page.wait_for_selector("#claim:disabled")

    page.click("#call")
    cid = watch.wait_command(lambda c: c["type"] == "call")["cid"]
    timeline_has(page, "Call-back requested")
    facts = page.locator("#detail-facts")
    # Requested is not connected: nothing of the call until the watch reports it.
    assert "Connected" not in facts.inner_text() and "In call" not in facts.inner_text()
    badges = page.locator("#detail-badges .status")
    expect(badges).to_have_text("call-back requested")

    report(watch, "1.50", {"state": "dialing", "cid": cid})
    expect(facts).to_contain_text(f"Watch dialling {CENTRE}…", timeout=10000)
    report(watch, "1.51", {"state": "alerting", "cid": cid})
    expect(call_fact(page)).to_have_text("Ringing", timeout=10000)
    connected_at = int(time.time())
    report(watch, "1.52", {"state": "active", "cid": cid}, ts=connected_at)
    expect(call_fact(page)).to_have_text(re.compile(r"^Connected at \d\d:\d\d:\d\d$"), timeout=10000)
    shown = call_fact(page).inner_text()
    assert shown == "Connected at " + page.evaluate("t => new Date(t * 1000).toLocaleTimeString('en-GB')",
                                                    connected_at)
    timeline_has(page, shown)
    expect(badges).to_have_text("in a call (the watch reports it connected)")
    page.screenshot(path=str(ARTIFACTS / "console-call-connected.png"))

    report(watch, "1.53", {"state": "ended", "cid": cid, "end": "completed", "dur": 134}, ts=connected_at + 134)
    expect(call_fact(page)).to_have_text("Call ended after 2 min 14 s", timeout=10000)
    expect(badges).to_have_text("acknowledged")  # the call ended: the case is back to claimed
    timeline = page.locator("#timeline")
    for words in (f"Watch dialling {CENTRE}…", "Ringing", shown, "Call ended after 2 min 14 s"):
        expect(timeline).to_contain_text(words)
    page.screenshot(path=str(ARTIFACTS / "console-call-ended.png"))

    # A second call-back to a busy line: it rings, then busy, never connected.
    page.click("#call")
    cid2 = watch.wait_command(lambda c: c["type"] == "call" and c["cid"] != cid)["cid"]
    report(watch, "1.54", {"state": "dialing", "cid": cid2})
    expect(call_fact(page)).to_contain_text("Watch dialling", timeout=10000)
    report(watch, "1.55", {"state": "ended", "cid": cid2, "end": "busy"})
    expect(call_fact(page)).to_have_text("Busy", timeout=10000)
    # A third, never answered: the network gives up.
    page.click("#call")
    cid3 = watch.wait_command(lambda c: c["type"] == "call" and c["cid"] not in (cid, cid2))["cid"]
    report(watch, "1.56", {"state": "dialing", "cid": cid3})
    expect(call_fact(page)).to_contain_text("Watch dialling", timeout=10000)
    report(watch, "1.57", {"state": "ended", "cid": cid3, "end": "no_answer"})
    expect(call_fact(page)).to_have_text("Not answered", timeout=10000)
    expect(page.locator("#timeline")).to_contain_text("Busy")
    assert errors == []
    watch.close()
